"""kslim: network slimming for Keras 3."""

import pathlib
import re

from setuptools import find_packages, setup

_HERE = pathlib.Path(__file__).parent
_VERSION = re.search(
    r'^__version__ = "([^"]+)"', (_HERE / "kslim" / "__init__.py").read_text(), re.M
).group(1)

_EXPORT = ["ai-edge-litert>=1.2"]
_PLOTS = ["matplotlib>=3.7"]
_TFDS = ["tensorflow-datasets>=4.9"]
_HUB = ["keras-hub>=0.21"]  # KerasHub backbones and tasks, built from their constructors
_DOCS = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.29", "mkdocstrings-python>=1.16"]  # make docs

setup(
    name="kslim",
    version=_VERSION,
    description="Network slimming for Keras 3: sparsity training, exact channel pruning, TFLite export.",
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["kslim", "kslim.*"]),
    package_data={"kslim.data": ["*.npz"]},
    scripts=[str(p) for p in sorted((_HERE / "bin").glob("kslim-*"))],
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.12.0",
        "numpy>=1.24",
        "absl-py>=1.0",
    ],
    extras_require={
        "export": _EXPORT,
        "plots": _PLOTS,
        "tfds": _TFDS,
        "hub": _HUB,
        "docs": _DOCS,
        "all": _EXPORT + _PLOTS + _TFDS,
        "test": _EXPORT + _PLOTS + _TFDS + _HUB + ["pytest>=7", "jax>=0.4"],
    },
    license="Apache-2.0",
)
