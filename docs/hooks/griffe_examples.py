"""Griffe extension: reads kslim's Keras-style `Example:` sections as examples.

kslim's docstrings follow Keras: `Example:`, a blank line, then doctest lines at the docstring's
own indentation. Google style (what griffe parses) wants a section's lines indented under its
title, so those lines would render as Markdown (`>>>` is a nested quote). This indents them when
the API pages are built; the docstrings themselves stay as Keras writes them.
"""

import re

try:
    import griffe
except ImportError:  # tests/test_docs.py checks indent_examples without the docs extra installed
    griffe = None

_TITLE = re.compile(r"^(Example|Examples):\s*$")
_NEXT_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def indent_examples(text):
    """The docstring with the lines after an unindented `Example:` title indented under it."""
    lines = text.split("\n")
    out, inside = [], False
    for line in lines:
        if _TITLE.match(line):
            out.append("Examples:")
            inside = True
            continue
        if inside:
            if _NEXT_SECTION.match(line) and not line.startswith(">>>"):
                inside = False
                out.append(line)
                continue
            if not line.strip():
                if out and out[-1] != "Examples:":
                    out.append("")
                continue
            out.append(line if line.startswith("    ") else "    " + line)
            continue
        out.append(line)
    return "\n".join(out)


if griffe is not None:

    class KerasExamples(griffe.Extension):
        """Indents Keras-style example sections before griffe parses them."""

        def on_instance(self, *, obj, **kwargs):
            if obj.docstring is not None and "Example" in obj.docstring.value:
                obj.docstring.value = indent_examples(obj.docstring.value)
