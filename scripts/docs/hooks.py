"""MkDocs hooks (mkdocs.yml `hooks:`): generated content and the docs' own checks, at build time.

- `<!-- generate: NAME key=value ... -->` on a line of its own is replaced by generated Markdown:
  `cli-reference` (from langalign.cli's parsers), `result-reports` (the committed reports) or a table from
  results_tables.GENERATORS (e.g. `benchmark-headline setting=same`).
- `<!-- prose-for: results/x.json@sha256:0123456789ab ... -->` pins commentary that quotes numbers to the
  result files it was written for; when a file changes (a benchmark rerun) the build warns (so `--strict`
  fails) until the commentary is reread and the pin updated.
- Code blocks must follow the convention in codeblocks.py (declared language, `not-run` with a reason).
- The committed result files (results/: reports, JSON, plots) are added to the site at their
  repository paths, so pages link to them as `results/benchmark.md` and the reports' own links work.
"""
from __future__ import annotations

import logging
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files, InclusionLevel

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(HERE) not in sys.path:  # the sibling modules below, also importable by tests/test_docs.py
    sys.path.insert(0, str(HERE))

import cli_reference  # noqa: E402
import codeblocks  # noqa: E402
import pins  # noqa: E402
import results_tables  # noqa: E402

log = logging.getLogger("mkdocs.plugins.langalign")
RESULT_DIRS = ("results",)
RESULT_SUFFIXES = {".md", ".json", ".png", ".svg", ".csv"}
DIRECTIVE = re.compile(r"^[ \t]*<!--\s*generate:\s*(?P<body>.*?)\s*-->[ \t]*$", re.MULTILINE)


def result_files() -> list[Path]:
    """The committed result files, relative to the repository root."""
    out = []
    for d in RESULT_DIRS:
        base = ROOT / d
        if base.is_dir():
            out += [p.relative_to(ROOT) for p in sorted(base.rglob("*"))
                    if p.is_file() and p.suffix.lower() in RESULT_SUFFIXES]
    return out


def _generate(body: str) -> str:
    words = shlex.split(body)
    if not words:
        raise PluginError("empty <!-- generate: --> directive")
    name, kwargs = words[0], {}
    for w in words[1:]:
        key, eq, value = w.partition("=")
        if not eq:
            raise PluginError(f"generate {name}: argument {w!r} must read key=value")
        kwargs[key] = value
    if name == "cli-reference":
        return cli_reference.render()
    if name == "result-reports":
        return _reports_list()
    fn = results_tables.GENERATORS.get(name)
    if fn is None:
        raise PluginError(f"<!-- generate: {name} -->: no such generator; there are cli-reference, result-reports, "
                          f"{', '.join(results_tables.GENERATORS)} (scripts/docs/results_tables.py)")
    try:  # a table's `*` marks significance, never emphasis
        return fn(ROOT, **kwargs).replace("*", "\\*")
    except results_tables.ResultsError as e:
        raise PluginError(f"generate {name}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise PluginError(f"generate {name}: the result file lacks what the table needs "
                          f"({type(e).__name__}: {e})") from None


def _reports_list() -> str:
    def link(p: Path) -> str:  # from the site root; on_page_markdown makes it relative to the page
        return f"[`{p.as_posix()}`](/{p.as_posix()})"

    lines = ["| report | data | plots |", "|---|---|---|"]
    files = result_files()
    for md in [p for p in files if p.suffix == ".md"]:
        title = next((ln.lstrip("# ").strip() for ln in (ROOT / md).read_text(encoding="utf-8").splitlines()
                      if ln.startswith("# ")), md.stem)
        data = [p for p in files if p.parent == md.parent and p.suffix == ".json" and p.stem == md.stem]
        pngs = [p for p in files if p.parent == md.parent and p.suffix == ".png" and p.stem.startswith(md.stem)]
        lines.append(f"| {link(md)} {title} | {', '.join(map(link, data))} | {', '.join(map(link, pngs))} |")
    return "\n".join(lines)


# -- mkdocs events -------------------------------------------------------------------------------------------
def on_files(files: Files, config: Any) -> Files:
    for rel in result_files():
        uri = rel.as_posix()
        if files.get_file_from_path(uri) is not None:
            raise PluginError(f"docs/{uri} would hide the committed result file {uri}: rename the page")
        f = File.generated(config, uri, abs_src_path=str(ROOT / rel))
        if uri.endswith(".md"):
            f.inclusion = InclusionLevel.NOT_IN_NAV  # reached from the Results page, not the menu
        files.append(f)
    return files


def _is_result_report(page: Any) -> bool:
    src = Path(page.file.abs_src_path or "").resolve()
    return any(src.is_relative_to((ROOT / d).resolve()) for d in RESULT_DIRS)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if _is_result_report(page):
        return markdown  # a committed report, shown as the bench wrote it
    where = f"docs/{page.file.src_uri}"
    try:
        blocks = codeblocks.parse(markdown, where)
    except ValueError as e:
        raise PluginError(str(e)) from None
    for block in blocks:
        for problem in codeblocks.problems(block):
            log.warning(problem)
    for problem in pins.stale_pins(markdown, ROOT):
        log.warning(f"{where}: {problem}")
    depth = page.file.src_uri.count("/")

    def expand(m: re.Match[str]) -> str:
        text = _generate(m.group("body"))
        # generated links are written from the site root; make them relative to this page
        return re.sub(r"\]\(/", "](" + "../" * depth, text)

    return DIRECTIVE.sub(expand, markdown)
