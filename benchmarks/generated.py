"""The generated blocks of the docs: the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` of a page,
which the benchmark scripts rewrite from their measurements (tests/test_docs.py checks each block is there once)."""

from __future__ import annotations

import re
from pathlib import Path


def write_block(page: Path, name: str, text: str) -> None:
    """Replace the block ``name`` of ``page`` by ``text``; stop, naming the page, unless it holds that block once."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    old = page.read_text()
    new, n = re.subn(f"{re.escape(begin)}.*?{re.escape(end)}", lambda _: f"{begin}\n{text}\n{end}", old, flags=re.S)
    if n != 1:
        raise SystemExit(f"{page}: expected one {name} block between markers, found {n}")
    page.write_text(new)
