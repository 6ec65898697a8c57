"""Small real architectures of every family kslim supports, for tests and benchmarks."""

from kslim.testing.archs import ALL as ALL
from kslim.testing.archs import APPLICATIONS as APPLICATIONS
from kslim.testing.archs import CUSTOM as CUSTOM

__all__ = ["ALL", "APPLICATIONS", "CUSTOM"]
