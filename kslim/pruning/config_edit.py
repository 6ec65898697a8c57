"""Small tools for editing a functional or Sequential model config in place."""

import copy

import keras

from kslim._internal import keras_api

_KT = "__keras_tensor__"


def entry_name(entry):
    """The layer name of one entry of `config["layers"]`."""
    return entry.get("name") or entry["config"]["name"]


def keras_tensors(obj):
    """Yields every serialized keras tensor (a dict with `keras_history`) inside `obj`."""
    if isinstance(obj, dict):
        if obj.get("class_name") == _KT:
            yield obj
        else:
            for v in obj.values():
                yield from keras_tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from keras_tensors(v)


def _output_refs(config):
    refs = config.get("output_layers") or []
    return refs if refs and isinstance(refs[0], list) else [refs]


def redirect(config, mapping, skip=()):
    """Points every reference to layer `a` at `mapping[a]` (a keras_history triple).

    Args:
        config: a functional model config.
        mapping: dict layer name -> `[name, node_index, tensor_index]`.
        skip: layer names whose inbound nodes are left alone.
    """
    for entry in config["layers"]:
        if entry_name(entry) in skip:
            continue
        for tensor in keras_tensors(entry.get("inbound_nodes", [])):
            history = tensor["config"]["keras_history"]
            if history[0] in mapping:
                tensor["config"]["keras_history"] = list(mapping[history[0]])
    for ref in _output_refs(config):
        if ref and ref[0] in mapping:
            ref[:] = list(mapping[ref[0]])


def insert_after(config, source, new_entry, is_sequential):
    """Inserts `new_entry` so that it reads `source`'s output and every reader reads it.

    `source` must have at least one reader in the model.
    """
    entries = config["layers"]
    index = next(i for i, e in enumerate(entries) if entry_name(e) == source)
    name = entry_name(new_entry)
    if not is_sequential:
        tensor = next(
            t for t in keras_tensors(config["layers"]) if t["config"]["keras_history"][0] == source
        )
        tensor = copy.deepcopy(tensor)
        redirect(config, {source: [name, 0, 0]})
        new_entry["name"] = name
        new_entry["inbound_nodes"] = [{"args": [tensor], "kwargs": {}}]
    entries.insert(index + 1, new_entry)


def insert_before(config, target, new_entry, is_sequential):
    """Inserts `new_entry` between `target` and the single tensor it reads."""
    entries = config["layers"]
    index = next(i for i, e in enumerate(entries) if entry_name(e) == target)
    name = entry_name(new_entry)
    if not is_sequential:
        (tensor,) = list(keras_tensors(entries[index]["inbound_nodes"]))
        new_entry["name"] = name
        new_entry["inbound_nodes"] = [{"args": [copy.deepcopy(tensor)], "kwargs": {}}]
        tensor["config"]["keras_history"] = [name, 0, 0]
    entries.insert(index, new_entry)


def remove(config, names, is_sequential):
    """Removes single-input layers and points their readers at their input."""
    if not names:
        return
    if not is_sequential:
        source = {}
        for entry in config["layers"]:
            if entry_name(entry) in names:
                (tensor,) = list(keras_tensors(entry["inbound_nodes"]))
                source[entry_name(entry)] = tensor["config"]["keras_history"]
        redirect(config, source)
    config["layers"] = [e for e in config["layers"] if entry_name(e) not in names]


def editable(model):
    """`(config, is_sequential)` of `model`, without the build configs that would fix its old widths."""
    config = model.get_config()
    for entry in config["layers"]:
        entry.pop("build_config", None)
    return config, isinstance(model, keras.Sequential)


def replace(config, layers, is_sequential):
    """Puts each of `layers` (`{name: a new layer of that name}`) in place of the entry of that name,
    reading what the old layer read (its positional inputs; call keywords are dropped)."""
    for i, entry in enumerate(config["layers"]):
        layer = layers.get(entry_name(entry))
        if layer is None:
            continue
        new = keras.saving.serialize_keras_object(layer)
        if not is_sequential:
            new["name"] = layer.name
            new["inbound_nodes"] = [{"args": list(node["args"]), "kwargs": {}} for node in entry["inbound_nodes"]]
        config["layers"][i] = new


def unique_name(config, base):
    taken = {entry_name(e) for e in config["layers"]}
    name = base
    while name in taken:
        name += "_"
    return name


def rebuild(config, is_sequential):
    """A new model from an edited config of an in-memory model.

    The config comes from a live model, not from a file, so a `Lambda` layer
    in it is the user's own code: safe mode is turned off for this call only.
    """
    with keras_api.unsafe_deserialization():
        return (keras.Sequential if is_sequential else keras.Model).from_config(config)
