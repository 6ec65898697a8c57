"""`list_ops`: the operators a `.tflite` file asks of the runtime."""

import functools
import os


def _schema():
    """LiteRT's flatbuffer schema, imported on first use: `ai-edge-litert` is an optional extra."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as error:
        raise ImportError(
            "Reading .tflite files needs the LiteRT runtime: pip install 'kslim[export]' "
            "(or ai-edge-litert)."
        ) from error
    return schema_py_generated


@functools.lru_cache(maxsize=None)
def _builtin_names():
    return {
        code: name
        for name, code in vars(_schema().BuiltinOperator).items()
        if not name.startswith("_") and isinstance(code, int)
    }


def builtin_ops():
    """The names of every TFLite builtin operator this runtime knows (`CUSTOM` excluded)."""
    return frozenset(name for name in _builtin_names().values() if name != "CUSTOM")


def list_ops(path_or_bytes):
    """Lists the operators a TFLite model uses, in the order they first run.

    Use it to prove that an exported model runs on the stock LiteRT runtime:
    every name in `builtin_ops()` is a builtin kernel, anything else is a custom
    op (TensorFlow "Flex" ops included) that a phone would need linked in.
    The list is read from the model's flatbuffer (operator codes and the
    operators of every subgraph), so it needs no interpreter and no
    TensorFlow.

    Args:
        path_or_bytes: str or os.PathLike, a `.tflite` file; or bytes, the
            content of one.

    Returns:
        A list of str: builtin names (`"CONV_2D"`, `"GATHER"`, ...) and, for a
        custom op, its custom code (`"FlexConv2D"`), each once.

    Raises:
        FileNotFoundError: if the path does not exist.
        ValueError: if the content is not a TFLite flatbuffer.

    Example:

    >>> ops = list_ops("slim.tflite")
    >>> set(ops) <= builtin_ops()
    True
    """
    if isinstance(path_or_bytes, (bytes, bytearray)):
        content, where = bytes(path_or_bytes), "the given bytes"
    else:
        where = os.fspath(path_or_bytes)
        if not os.path.isfile(where):
            raise FileNotFoundError(f"No TFLite file at '{where}'; check the path.")
        with open(where, "rb") as f:
            content = f.read()
    if len(content) < 8 or not _schema().Model.ModelBufferHasIdentifier(content, 0):
        raise ValueError(
            f"{where} is not a TFLite model (no 'TFL3' flatbuffer identifier); "
            "pass a file written by kslim.export(..., format='tflite')."
        )
    model = _schema().Model.GetRootAs(content, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes above 127 live only in `builtin_code`; older files only fill the deprecated byte.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == _schema().BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            codes.append(custom.decode() if custom else "CUSTOM")
        else:
            codes.append(_builtin_names().get(builtin, f"BUILTIN_{builtin}"))
    names = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            name = codes[subgraph.Operators(o).OpcodeIndex()]
            if name not in names:
                names.append(name)
    return names
