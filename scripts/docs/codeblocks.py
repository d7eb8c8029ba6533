"""The docs' code-block convention, shared by the site build (scripts/docs/hooks.py) and tests/test_docs.py.

Every fenced block in docs/*.md declares its language. ```python and ```bash blocks are code: they run in
tests/test_docs.py (a page's blocks in order, in one fresh folder, its Python blocks sharing one namespace)
unless the line right before the fence is

    <!-- not-run: the reason it cannot run in a test -->

Blocks in other languages (text, json, ...) are data or printed output, never run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CODE_LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
DATA_LANGUAGES = {"text", "json", "jsonl", "toml", "yaml", "ini", "tsv", "csv", "console", "output"}
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")


@dataclass
class CodeBlock:
    path: str            # the page, relative to docs/
    line: int            # 1-based line of the opening fence
    language: str        # as written after the fence ("" if none)
    code: str            # the block's text, its indentation removed
    not_run: str | None  # the reason given by a <!-- not-run: ... --> marker, or None

    @property
    def kind(self) -> str:
        """"python" or "bash" for code, "data" for other declared languages, "" for none."""
        if self.language in CODE_LANGUAGES:
            return CODE_LANGUAGES[self.language]
        return "data" if self.language else ""

    @property
    def runnable(self) -> bool:
        return self.kind in ("python", "bash") and self.not_run is None

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def parse(text: str, path: str = "<page>") -> list[CodeBlock]:
    """The fenced blocks of one Markdown page, with their not-run markers."""
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info")
        language = info.split()[0].strip("{}.").lower() if info else ""
        prev = i - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        marker = NOT_RUN.match(lines[prev]) if prev >= 0 else None
        body: list[str] = []
        j = i + 1
        close = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        while j < len(lines) and not close.match(lines[j]):
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        if j == len(lines):
            raise ValueError(f"{path}:{i + 1}: code block is never closed")
        blocks.append(CodeBlock(path, i + 1, language, "\n".join(body) + "\n",
                                marker.group("reason") if marker else None))
        i = j + 1
    return blocks


def problems(block: CodeBlock) -> list[str]:
    """Breaches of the convention (an empty list when the block follows it)."""
    out = []
    if not block.language:
        out.append(f"{block.where()}: a code block must name its language (```python, ```bash, ```text, ...)")
    elif block.kind == "data" and block.language not in DATA_LANGUAGES:
        out.append(f"{block.where()}: unknown code-block language {block.language!r}: use python or bash for code "
                   f"(run by tests/test_docs.py) or one of {sorted(DATA_LANGUAGES)} for data and output")
    if block.not_run is not None and not block.not_run:
        out.append(f"{block.where()}: <!-- not-run: --> needs a reason")
    if block.not_run is not None and block.kind == "data":
        out.append(f"{block.where()}: <!-- not-run: --> marks a {block.language} block, which never runs anyway")
    return out


def doc_pages(docs_dir: Path) -> list[Path]:
    return sorted(p for p in docs_dir.rglob("*.md") if not any(part.startswith(".") for part in p.parts))
