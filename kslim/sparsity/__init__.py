"""The sparsity side: finding every channel's scaling factor and putting a penalty on it.

`attach` / `detach` set a penalty (`kslim.penalties`) on every scaling factor;
`scaling_factors` finds them; `kslim.callbacks` watches and steps them.
"""

from kslim.sparsity.attachment import attach as attach
from kslim.sparsity.attachment import detach as detach
from kslim.sparsity.factors import scaling_factors as scaling_factors

__all__ = ["attach", "detach", "scaling_factors"]
