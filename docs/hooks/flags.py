"""MkDocs hook: writes every command's flags into docs/reference/commands.md from the `bin/kslim-*` sources.

The page holds a marker, `<!-- flags: kslim-prune -->`, where each command's table goes. The
tables are read from the `flags.DEFINE_*` calls of the command (with `ast`, so nothing is imported
and no TensorFlow loads), so the page lists the flags the command defines, with their defaults
and help, and cannot fall behind it. tests/test_docs.py checks the tables against each command's
own `--help`.
"""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- flags: (kslim-[a-z]+) -->")
_KINDS = {"string": "string", "integer": "int", "float": "float", "bool": "bool", "enum": "one of", "list": "list"}


def _value(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def command_flags(name):
    """The flags `bin/<name>` defines: dicts of name, kind, default, help, required."""
    tree = ast.parse((ROOT / "bin" / name).read_text())
    found, required = [], set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr = node.func.attr
        if attr.startswith("DEFINE_"):
            kind = attr[len("DEFINE_"):]
            args = [_value(a) for a in node.args]
            flag = {"name": args[0], "default": args[1], "required": False}
            if kind == "enum":
                flag["kind"] = "one of " + ", ".join(f"`{v}`" for v in args[2])
                flag["help"] = args[3] if len(args) > 3 else ""
            else:
                flag["kind"] = _KINDS.get(kind, kind)
                flag["help"] = args[2] if len(args) > 2 else ""
            found.append(flag)
        elif attr == "mark_flag_as_required":
            required.add(_value(node.args[0]))
        elif attr == "mark_flags_as_required":
            required.update(_value(node.args[0]))
    for flag in found:
        flag["required"] = flag["name"] in required
    return found


def _default(flag):
    if flag["required"]:
        return "required"
    value = flag["default"]
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == []:
        return "empty"
    return f"`{value}`"


def flags_table(name):
    """A Markdown table of `bin/<name>`'s flags."""
    rows = ["| flag | type | default | what it does |", "|---|---|---|---|"]
    for flag in command_flags(name):
        text = " ".join(str(flag["help"]).split()).replace("|", "\\|")
        text = text.replace("<", "&lt;").replace(">", "&gt;")  # runs/slim-<model>-<data> is not a tag
        rows.append(f"| `--{flag['name']}` | {flag['kind']} | {_default(flag)} | {text} |")
    return "\n".join(rows)


def usage(name):
    """The command's module docstring: its usage text."""
    return ast.get_docstring(ast.parse((ROOT / "bin" / name).read_text())) or ""


def expand(markdown):
    """The page with every marker replaced by its command's usage and flags table."""
    def one(match):
        name = match.group(1)
        return f"```text\n{usage(name)}\n```\n\n{flags_table(name)}\n"

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if "<!-- flags: " not in markdown:
        return markdown
    return expand(markdown)
