"""The model registry: `register`, `list_models`, `get`."""



_REGISTRY = {}
_RECIPES = {}  # name -> the Recipe fields a model trains with, where the paper's do not train it


def register(fn=None, *, name=None, recipe=None):
    """Adds a model builder to the registry, under its function name or `name`.

    Use it as a decorator on a function `fn(num_classes=10, input_shape=None,
    **kwargs)` that returns a `keras.Model`; `get` then builds it by name.

    Args:
        fn: the builder function.
        name: str, the registry name; the function's `__name__` by default.
        recipe: optional dict of `kslim.recipe.Recipe` fields that the model
            needs instead of the paper's for its data (e.g. `{"lr": 0.01}`
            for a network without BatchNormalization, which diverges at the
            paper's 0.1); the commands train it with them unless told
            otherwise (`recipe_changes`).

    Returns:
        `fn`, unchanged (or a decorator, when called with only `name`).

    Raises:
        ValueError: if the name is already registered.

    Example:

    >>> @kslim.models.register
    ... def tiny(num_classes=10, input_shape=None):
    ...     ...
    """
    if fn is None:
        return lambda f: register(f, name=name, recipe=recipe)
    key = name or fn.__name__
    if key in _REGISTRY:
        raise ValueError(
            f"A model named '{key}' is already registered (by {_REGISTRY[key].__module__}); "
            "register yours under another name with register(fn, name=...)."
        )
    _REGISTRY[key] = fn
    if recipe:
        _RECIPES[key] = dict(recipe)
    return fn


def recipe_changes(name):
    """The `Recipe` fields registered for model `name` (an empty dict for the paper's recipe, or for a name
    that is not a zoo model)."""
    return dict(_RECIPES.get(name, {}))


def list_models():
    """Returns the sorted names of all registered models.

    Example:

    >>> "vgg19" in kslim.models.list_models()
    True
    """
    return sorted(_REGISTRY)


def builder(name):
    """The registered builder function of `name` (to inspect its arguments).

    Raises:
        ValueError: if `name` is not registered.
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown model name {name!r}; the registered models are: "
            f"{', '.join(list_models())}."
        )
    return _REGISTRY[name]


def get(name, num_classes=10, input_shape=None, **kwargs):
    """Builds a registered model by name.

    Args:
        name: str, a name from `list_models()` (`"vgg19"`, `"preresnet164"`,
            `"densenet40"`, `"resnet32"`, `"lenet5"`, `"lenet5_caffe"`,
            `"mlp"`, ...).
        num_classes: int, the number of logits.
        input_shape: tuple of int, the input shape without the batch axis;
            the model's default (CIFAR `(32, 32, 3)`, MNIST `(28, 28, 1)`)
            when None.
        **kwargs: the builder's own arguments (`widths`, `gamma_init`,
            `bn_momentum`, ...).

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: if `name` is not registered.

    Example:

    >>> model = kslim.models.get("vgg19", num_classes=10, gamma_init=0.5)
    """
    return builder(name)(num_classes=num_classes, input_shape=input_shape, **kwargs)
