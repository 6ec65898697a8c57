"""The public surface: what `import kslim` gives, and that no module is hidden by a same-named name."""

import importlib
import os
import pkgutil
import types

import kslim


def _modules():
    for info in pkgutil.walk_packages(kslim.__path__, "kslim."):
        yield importlib.import_module(info.name)


def test_no_module_is_hidden_by_a_function_or_class_of_the_same_name():
    hidden = []
    for module in _modules():
        parent_name, _, leaf = module.__name__.rpartition(".")
        parent = importlib.import_module(parent_name)
        value = getattr(parent, leaf, None)
        if value is not None and not isinstance(value, types.ModuleType):
            hidden.append(f"{module.__name__} (hidden by {type(value).__name__} {leaf})")
    assert not hidden, hidden


def test_every_name_in_all_exists():
    for module in [kslim] + [m for m in _modules() if hasattr(m, "__all__")]:
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_the_workflow_names_are_at_the_top():
    for name in ("attach", "detach", "scaling_factors", "plan", "prune", "Plan", "Budget", "profile",
                 "Profile", "slim", "SlimResult", "export", "measure", "add_channel_masks"):
        assert name in kslim.__all__, name
    assert isinstance(kslim.profile(kslim.models.get("mlp")), kslim.Profile)


def test_the_tests_cache_in_a_folder_of_their_own():
    from kslim.data import _cache
    from kslim.deploy import latency

    home = os.path.join(os.path.expanduser("~"), ".cache")
    for path in (latency.cache_path(), _cache.cache_dir()):
        assert not os.path.abspath(path).startswith(home), path
        assert os.path.basename(os.path.dirname(path) if path.endswith(".json") else path).startswith(
            "kslim-test-cache-"), path
