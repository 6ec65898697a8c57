"""`LayerHandler` and the registry: everything kslim knows about one kind of layer, in one place.

The channel graph, the planner's costs, the surgery, the compensation of pruned
constants, the mask rebalancing and `kslim.profile` all ask a layer's handler
instead of testing its class. kslim's built-in handlers are registered through
the same `register_handler` a user calls, so a custom layer stops being a
barrier once it has a handler of a few lines (see `register_handler`).

Roles (what `LayerHandler.classify` returns):
    "producer"     makes new channels from all of its input channels (Conv*, Dense, ...).
    "scale"        a per-channel layer whose weight scores each channel (BN gamma, ChannelMask).
    "per_channel"  passes each channel through on its own, maybe with per-channel weights.
    "merge"        ties the channels of its inputs element-wise (Add, Subtract, Average, ...).
    "multiply"     like "merge", but a zero in any input zeroes the output (Multiply).
    "concat"       concatenates its inputs' channels.
    "split"        splits its input's channels into runs, one per output (`ops.split`).
    "flatten"      unrolls (spatial, channel) into features.
    "reshape"      reshapes but keeps the channel axis last (else it flattens or is a barrier).
    "barrier"      anything else: its input channels are kept, its outputs are new.
"""

import numpy as np

ROLES = (
    "producer", "scale", "per_channel", "merge", "multiply", "concat", "split", "flatten", "reshape",
    "barrier",
)

_REGISTRY = {}


class LayerHandler:
    """What kslim knows about one kind of layer. Subclass it for a custom layer.

    The defaults describe a barrier: a layer kslim does not understand, whose
    input channels are all kept. A handler overrides what differs; most need
    only `classify` and, for layers with weights, `weight_axes`.

    The methods take the original (unpruned) layer; channel counts after
    pruning are passed in explicitly.
    """

    def classify(self, layer, rank):
        """Returns `(role, reason)`: one of `ROLES`, and why for a barrier (else None).

        Args:
            layer: the layer.
            rank: rank of the layer's first input tensor (batch axis included).
        """
        return "barrier", (
            f"kslim does not know how '{layer.name}' ({type(layer).__name__}) treats channels; "
            "register a handler with kslim.pruning.register_handler"
        )

    def weight_axes(self, layer, shapes):
        """Which axis of each weight follows the input or output channels.

        Args:
            layer: the original layer.
            shapes: the shapes of its weights, in `layer.weights` order.

        Returns:
            One dict per weight, `{axis: "in" | "out" | "in_expanded"}`
            ("in_expanded": input channel i owns entries i*m .. i*m+m-1 of
            that axis, with m the layer's `depth_multiplier`). The default, for
            per-channel layers: every weight whose last axis has the layer's
            channel count follows the output channels.
        """
        channels = layer.input.shape[-1]
        return [
            {-1: "out"} if len(s) and s[-1] == channels and channels != 1 else {} for s in shapes
        ]

    def slice_weights(self, layer, weights, in_keep, out_keep):
        """Slices a layer's weights to the kept input and output channels.

        Args:
            layer: the original layer.
            weights: its weights as NumPy arrays, in `layer.weights` order.
            in_keep: kept input channel positions, or None for all.
            out_keep: kept output channel positions, or None for all.

        Returns:
            The list of sliced NumPy arrays.
        """
        multiplier = getattr(layer, "depth_multiplier", 1)
        keeps = {
            "in": in_keep,
            "out": out_keep,
            "in_expanded": None if in_keep is None else _expand(in_keep, multiplier),
        }
        out = []
        for w, axes in zip(weights, self.weight_axes(layer, [w.shape for w in weights])):
            for axis, which in axes.items():
                if keeps[which] is not None:
                    w = np.take(w, keeps[which], axis=axis)
            out.append(w)
        return out

    def scale_outputs(self, layer, weights, factors):
        """Weights that make the layer's output channel j `factors[j]` times larger.

        Used to fold a `ChannelMask` into the linear producer before it. Only
        meaningful for a producer without a nonlinear activation.
        """
        out = []
        for w, axes in zip(weights, self.weight_axes(layer, [w.shape for w in weights])):
            for axis, which in axes.items():
                if which == "out":
                    shape = [1] * w.ndim
                    shape[axis] = -1
                    w = w * np.reshape(factors, shape)
            out.append(w)
        return out

    def count_params(self, layer, n_in, n_out):
        """Number of parameters of `layer` with `n_in` input and `n_out` output channels."""
        multiplier = getattr(layer, "depth_multiplier", 1)
        sizes = {"in": n_in, "out": n_out, "in_expanded": n_in * multiplier}
        shapes = [tuple(w.shape) for w in layer.weights]
        total = 0
        for shape, axes in zip(shapes, self.weight_axes(layer, shapes)):
            dims = list(shape)
            for axis, which in axes.items():
                dims[axis] = sizes[which]
            total += int(np.prod(dims, dtype=np.int64))
        return total

    def edits_config(self, layer):
        """Whether the layer's config holds per-channel values that `edit_config` slices."""
        return False

    def edit_config(self, layer, config, out_keep):
        """Edits the layer's config in place for the kept output channels `out_keep`.

        A producer sets its width (`filters`, `units`); a per-channel layer
        whose config holds per-channel values slices them. The default does
        nothing.
        """

    def macs(self, layer, x, y):
        """Multiply-accumulates of one sample through the layer.

        Args:
            layer: the layer.
            x, y: its input and output shapes (batch axis first); the channel
                counts are read from them, not from the layer, so that the
                planner can ask what a narrower layer would cost.
        """
        return 0

    def bias_delta(self, layer, weights, dropped, values):
        """What the dropped input channels, each a constant, added to each output channel.

        Only asked of producers. kslim adds it back as a bias so that the
        pruned model computes what the masked model computed.

        Args:
            layer: the producer.
            weights: its original weights (NumPy).
            dropped: the input positions that are removed.
            values: the constant value of every input position.

        Returns:
            A float64 vector over the layer's original output channels.
        """
        raise NotImplementedError(
            f"The handler of '{layer.name}' ({type(layer).__name__}) cannot fold the constant of "
            "pruned input channels; implement bias_delta, or prune with compensate=False."
        )

    def bias_index(self, layer):
        """Position of the layer's per-output-channel bias in its weights, or None.

        Compensation adds the constant of pruned input channels there.
        """
        return None

    def enable_bias(self, layer, config):
        """Edits the config in place so the rebuilt layer has a bias (appended last to its
        weights); returns False when the layer cannot have one."""
        return False

    def scaling_factor(self, layer):
        """Name of the layer's weight that scores each channel (`"gamma"`), or None."""
        return None

    def keeps_zero(self, layer):
        """Whether f(0) == 0 channel by channel (ReLU6, hard-swish, pooling, ...).

        A pruned channel that is exactly 0 stays 0 through such a layer, so a
        product with it is 0 and constant. Defaults to `homogeneous`, which
        implies it.
        """
        return self.homogeneous(layer)

    def homogeneous(self, layer):
        """Whether f(c * x) == c * f(x) for every c > 0 (ReLU, pooling, Flatten, ...).

        Rebalancing folded masks moves gain across such layers.
        """
        return False

    def rescalable(self, layer):
        """Whether this producer is linear in its kernel up to a homogeneous activation,
        with the kernel first and biases after, so that rebalancing may rescale it."""
        return False


def _expand(keep, multiplier):
    return [i * multiplier + k for i in keep for k in range(multiplier)]


_BARRIER = LayerHandler()


def register_handler(layer_class, handler=None):
    """Teaches kslim a layer class: its role in the channel graph, weights, config, cost.

    kslim registers its own handlers for the Keras layers through this same
    call. The handler of a layer is the one registered for the nearest class
    in its MRO, so a handler for `keras.layers.Conv2D` also serves a subclass
    of it unless the subclass has its own. Registering again replaces.

    Args:
        layer_class: a `keras.layers.Layer` subclass.
        handler: a `LayerHandler` instance (or subclass, which is
            instantiated). Without it, returns a decorator for a handler class.

    Returns:
        The handler (or the decorator).

    Raises:
        TypeError: if `layer_class` is not a class or `handler` is not a
            `LayerHandler`.

    Example:

    >>> class ScaleHandler(kslim.pruning.LayerHandler):
    ...     def classify(self, layer, rank):
    ...         return "per_channel", None     # y[..., c] = w[c] * x[..., c]
    >>> kslim.pruning.register_handler(MyScale, ScaleHandler())
    """
    if handler is None:
        return lambda cls: register_handler(layer_class, cls) and cls
    if not isinstance(layer_class, type):
        raise TypeError(
            f"register_handler: layer_class must be a layer class, got {layer_class!r}."
        )
    if isinstance(handler, type) and issubclass(handler, LayerHandler):
        handler = handler()
    if not isinstance(handler, LayerHandler):
        raise TypeError(
            f"register_handler: handler for {layer_class.__name__} must be a "
            f"kslim.pruning.LayerHandler, got {type(handler).__name__}."
        )
    _REGISTRY[layer_class] = handler
    return handler


def has_handler(layer):
    """Whether a handler is registered for `layer`'s class or one of its bases."""
    return any(cls in _REGISTRY for cls in type(layer).__mro__)


def get_handler(layer):
    """The handler registered for `layer`'s class (nearest in its MRO), or a barrier's."""
    for cls in type(layer).__mro__:
        handler = _REGISTRY.get(cls)
        if handler is not None:
            return handler
    return _BARRIER
