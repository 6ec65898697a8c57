"""MkDocs hook: a page that holds `<!-- include: PATH -->` shows the file at PATH (from the repository root).

The changelog lives at the root as CHANGELOG.md, where GitHub and package indexes look for it; the site shows
the same file instead of a copy that could drift.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- include: ([\w./-]+) -->")


def on_page_markdown(markdown, page, config, files, **kwargs):
    return MARKER.sub(lambda m: (ROOT / m.group(1)).read_text(), markdown)
