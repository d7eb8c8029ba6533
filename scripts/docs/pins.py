"""Commentary pinned to the result files it was written for.

Prose that quotes numbers (wins, losses, differences) cannot be generated the way tables are, so a page marks
it with `<!-- prose-for: results/x.json@sha256:0123456789ab ... -->` (the first 12 hex digits of each file's
sha256). When a result file changes, e.g. a benchmark rerun, the docs build warns (so `--strict` fails) until
someone rereads the commentary against the new numbers and updates the pin.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

PIN = re.compile(r"^[ \t]*<!--\s*prose-for:\s*(?P<body>.*?)\s*-->", re.MULTILINE | re.DOTALL)


def short_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def stale_pins(markdown: str, root: Path) -> list[str]:
    """What is wrong with a page's pins (empty when every pinned file is as pinned)."""
    problems = []
    for m in PIN.finditer(markdown):
        items = m.group("body").split()
        if not items:
            problems.append("prose-for: names no result file")
        for item in items:
            rel, _, want = item.partition("@sha256:")
            path = root / rel
            if not want:
                problems.append(f"prose-for: {item!r} must read PATH@sha256:HASH")
            elif not path.is_file():
                problems.append(f"prose-for: {rel} does not exist")
            elif short_sha(path) != want:
                problems.append(f"the commentary pinned to {rel}@sha256:{want} was written for another version "
                                f"of that file: reread it against the new numbers, then pin "
                                f"{rel}@sha256:{short_sha(path)}")
    return problems
