"""The docs stay true: their Python runs, their numbers come from results files, their flags are the commands'.

Every ```python block of README.md and of the pages under docs/ (the API reference aside) runs as written: the
blocks of a page in order, in one namespace per page, each page in a fresh temporary folder, all pages in one
subprocess (TensorFlow loads once). The only setup a reader does not see is a fixed random seed and a private
kslim cache folder.
"""

import functools
import importlib.util
import json
import linecache
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import traceback

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"
PAGES = ["README.md"] + sorted(
    str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if "reference" not in p.parts
)
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)


def python_blocks(text):
    """The ```python blocks of a Markdown text, as `(line, code)` with the block's first line number."""
    return [(text[: m.start(1)].count("\n") + 1, m.group(1)) for m in _FENCE.finditer(text)]


CODE_PAGES = [page for page in PAGES if python_blocks((ROOT / page).read_text())]


def _run_pages(pages, report):
    """Runs each page's blocks in order in one namespace; writes {page: {"seconds", "error"}} to `report`."""
    import keras

    results = {}
    for page in pages:
        text = (ROOT / page).read_text()
        start = time.perf_counter()
        error = None
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            keras.utils.set_random_seed(0)
            namespace = {"__name__": "__main__"}
            for line, code in python_blocks(text):
                code = "\n" * (line - 1) + code  # tracebacks give the page's own line numbers
                linecache.cache[page] = (len(code), None, code.splitlines(True), page)
                try:
                    exec(compile(code, page, "exec"), namespace)
                except BaseException:  # noqa: BLE001 - report every failure with its page and line
                    error = f"the block at {page}:{line} failed:\n{traceback.format_exc()}"
                    break
            os.chdir(ROOT)
        results[page] = {"seconds": round(time.perf_counter() - start, 1), "error": error}
        print(f"{page}: {results[page]['seconds']} s{' FAILED' if error else ''}", file=sys.stderr, flush=True)
    pathlib.Path(report).write_text(json.dumps(results))


@pytest.fixture(scope="module")
def page_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    report = folder / "report.json"
    env = dict(os.environ, KSLIM_CACHE_DIR=str(folder / "cache"), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, __file__, str(report), *CODE_PAGES], env=env, capture_output=True,
                          text=True, timeout=600)
    if not report.exists():
        pytest.fail(f"the docs runner failed:\n{done.stderr[-5000:]}")
    return json.loads(report.read_text())


def test_the_pages_with_python_are_the_ones_expected():
    assert {"README.md", "docs/guides/slim-your-model.md", "docs/guides/deploy.md"} <= set(CODE_PAGES), CODE_PAGES


@pytest.mark.parametrize("page", CODE_PAGES)
def test_every_python_block_of_the_page_runs_as_written(page, page_runs):
    assert page_runs[page]["error"] is None, page_runs[page]["error"]


def test_the_readme_is_at_most_250_lines():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail into docs/ (at most 250)"


_MEASURED = re.compile(r"(?<![\w.\-])(\d[\d,]*(?:\.\d+)?)\s?(%|x\b|s\b|ms\b|min\b|h\b|K\b|M\b|MiB\b)")


@functools.lru_cache(maxsize=None)
def _results_numbers():
    """Every number in benchmarks/results, as written there and rounded to 0-3 decimals (and as % / min / h)."""
    numbers = set()
    for path in RESULTS.iterdir():
        text = path.read_text()
        numbers.update(n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text))
        if path.suffix != ".json":
            continue
        stack = [json.loads(text)]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                for value in (item, 100 * item, item / 60, item / 3600, item / 1e3, item / 1e6):
                    numbers.update(f"{abs(value):.{d}f}" for d in range(4))
    return numbers


def _prose(text):
    """The text outside fenced code blocks (settings and printed output, not measurements, live there)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


@pytest.mark.parametrize("page", [page for page in PAGES if page != "docs/benchmarks.md"])
def test_every_measured_number_is_in_a_results_file(page):
    known = _results_numbers()
    missing = [m.group(0) for m in _MEASURED.finditer(_prose((ROOT / page).read_text()))
               if m.group(1).replace(",", "") not in known]
    assert not missing, (f"{page} states {missing}, found in no file of benchmarks/results/: "
                         "measure it with a script in benchmarks/ or leave it out")


def test_the_benchmarks_readme_is_what_its_generator_writes():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_readme.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + "(run python benchmarks/make_readme.py after changing results)"


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md", "benchmarks/README.md"])
def test_the_relative_links_of_the_pages_outside_the_site_point_to_files(page):
    # mkdocs build --strict checks the site's own links; these pages are read on GitHub.
    text = (ROOT / page).read_text()
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if not ((ROOT / page).parent / t).exists()]
    assert not missing, f"{page} links to missing files: {missing}"


def test_keras_style_examples_are_read_as_examples_by_the_api_pages():
    spec = importlib.util.spec_from_file_location("docs_griffe", DOCS / "hooks" / "griffe_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "Summary.\n\nArgs:\n    x: a value.\n\nExample:\n\n>>> f(1)\n2\n\nNote:\n    later."
    assert module.indent_examples(text) == (
        "Summary.\n\nArgs:\n    x: a value.\n\nExamples:\n    >>> f(1)\n    2\n\nNote:\n    later.")


_HISTORY = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b|\bissue \d+|re-measured on",
                      re.I)


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md", "benchmarks/README.md"] + PAGES[1:])
def test_the_user_docs_hold_no_commit_hashes_or_issue_numbers(page):
    found = sorted(set(m.group(0) for m in _HISTORY.finditer((ROOT / page).read_text())))
    assert not found, f"{page} cites {found}: say what changed and why, in words (history: CHANGELOG.md)"


def _flags_hook():
    spec = importlib.util.spec_from_file_location("docs_flags", DOCS / "hooks" / "flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("command", sorted(p.name for p in (ROOT / "bin").glob("kslim-*")))
def test_the_flags_page_lists_every_flag_the_command_defines(command):
    page = (DOCS / "reference" / "commands.md").read_text()
    assert f"<!-- flags: {command} -->" in page, f"docs/reference/commands.md has no table for {command}"
    table = _flags_hook().flags_table(command)
    done = subprocess.run([sys.executable, str(ROOT / "bin" / command), "--help"], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr
    defined = set(re.findall(r"^\s+--(?:\[no\])?(\w+):", done.stdout, re.M))
    assert defined, done.stdout
    listed = set(re.findall(r"^\| `--(\w+)`", table, re.M))
    assert listed == defined, f"{command}: --help has {sorted(defined - listed)} not on the page, " \
                              f"the page has {sorted(listed - defined)} not in --help"


if __name__ == "__main__":
    _run_pages(sys.argv[2:], sys.argv[1])
