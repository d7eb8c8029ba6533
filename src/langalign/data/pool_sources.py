"""The English pool's sources: where its text comes from, and how each kind of file becomes paragraphs.

Sources (see :data:`SOURCES`): the English *training* text of the shared reference data (SIB-200 eng_Latn
train, SNLI dev premises/hypotheses - the NLI training data of this project -, SST-2 train items of 5+
words, STS-B English train) and Debian packages of English prose fetched with ``apt-get download`` (or
taken from ``debs=DIR``): fortune cookies, WordNet's usage examples, game dialogue and descriptions (Battle
for Wesnoth, Dungeon Crawl), LibreOffice / GIMP / GNOME help and Debian's and Python's manuals.

Never read as sources: Tatoeba, and any dev/test split of an evaluated task (:data:`EVALUATION_FILES`); the
builder (:mod:`langalign.data.english_pool`) reads those only to remove pool sentences that occur in
them, and keeps the LibreOffice help pages of the ``libreoffice-help`` corpus's dev/test splits out
(:func:`libreoffice_held_out`).
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ..errors import DataError, LangAlignError
from .libreoffice import extract_paragraphs, page_label, split_pages
from .pool_filters import as_sentence, capitalize_first, detokenize_ptb
from .readers import read_labelled
from .records import MAX_BYTES, MAX_CELL_CHARS, cell_too_long, decode_utf8, split_lines

# The libreoffice-help corpus (an evaluated task) is split by page with this seed: its dev/test pages
# are kept out of the pool.
LIBREOFFICE_SEED = 0
LIBREOFFICE_MIN_LABEL_PAGES = 10

# ---------------------------------------------------------------- text extraction

_SKIP_TAGS = {"script", "style", "pre", "table", "screen", "synopsis", "head", "nav", "footer", "title",
              "math", "svg", "links", "info", "credit", "license", "figure", "note_code", "programlisting"}
_CODE_TAGS = {"code", "tt", "kbd", "samp", "var", "cmd", "sys", "input", "output", "file", "app_code",
              "literal", "command", "filename", "option", "replaceable", "userinput", "computeroutput"}
_BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section",
               "br", "ul", "ol", "dl", "item", "desc", "td", "th", "tr", "caption", "body", "article"}
_SKIP_CLASSES = ("highlight", "sphinxsidebar", "related", "footer", "navheader", "navfooter", "toc", "index")
CODE_MARK = "\u0000"  # stands for inline code: a sentence containing it is dropped as code


class _TextParser(HTMLParser):
    """Paragraph text of an HTML (or Mallard XML) page; skipped blocks gone, inline code marked."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._buf: list[str] = []
        self._skip_tag: str | None = None  # the element being skipped, and its nesting depth
        self._skip = 0
        self._code_tag: str | None = None  # the inline code element we are in, and its nesting depth
        self._code = 0

    def _flush(self) -> None:
        text = "".join(self._buf)
        self._buf = []
        if text.strip():
            self.paragraphs.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if self._skip_tag is not None:
            self._skip += tag == self._skip_tag  # a nested element of the same name
            return
        if tag in _SKIP_TAGS or (tag == "div" and any(c in cls for c in _SKIP_CLASSES)):
            self._skip_tag, self._skip = tag, 1
        elif self._code_tag is not None:
            self._code += tag == self._code_tag
        elif tag in _CODE_TAGS or (tag == "span" and ("code" in cls.split() or "pre" in cls.split())):
            self._code_tag, self._code = tag, 1
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip -= 1
                if self._skip == 0:
                    self._skip_tag = None
            return
        if tag == self._code_tag:
            self._code -= 1
            if self._code == 0:
                self._code_tag = None
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip_tag is not None:
            return
        self._buf.append(CODE_MARK if self._code_tag is not None and data.strip() else data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_paragraphs(html: str) -> list[str]:
    """Text paragraphs of an HTML page: ``<pre>``, tables, scripts, navigation skipped; inline code marked."""
    p = _TextParser()
    p.feed(html)
    p.close()
    return p.paragraphs


def text_paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs of a plain-text file, lines joined; indented blocks skipped."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines or sum(ln.startswith(("    ", "\t")) for ln in lines) > len(lines) / 2:
            continue  # verse, code or tables
        out.append(" ".join(ln.strip() for ln in lines))
    return out


def fortune_paragraphs(text: str) -> list[str]:
    """The fortunes of a ``%``-separated fortune file; attribution lines (``-- Someone``) dropped."""
    out: list[str] = []
    for cookie in re.split(r"\n%\n", "\n" + text + "\n"):
        lines: list[str] = []
        for ln in cookie.splitlines():
            s = ln.strip()
            if not s or s == "%":
                continue
            if s.startswith(("--", "- ", "~")) or re.match(r"^\s{8,}\S", ln) and lines and len(s) < 40:
                break  # attribution: "-- Mark Twain" or a right-aligned author name
            lines.append(s)
        if lines:
            out.append(" ".join(lines))
    return out


def wordnet_examples(text: str) -> list[str]:
    """The quoted usage examples of a WordNet ``data.*`` file's glosses."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("  ") or " | " not in line:
            continue  # licence header
        gloss = line.split(" | ", 1)[1]
        out.extend(m for m in re.findall(r'"([^"]+)"', gloss))
    return out


_WML_STRING = re.compile(r'(?:^|[\s=])_\s*"((?:[^"]|"")*)"', re.M)
_PANGO = re.compile(r"<[^<>]*>")


def wml_strings(text: str) -> list[str]:
    """Translatable strings (``_ "..."``) of a Battle for Wesnoth ``.cfg`` file: dialogue and stories."""
    return [_PANGO.sub("", m.replace('""', '"')) for m in _WML_STRING.findall(text)]


def crawl_descriptions(text: str) -> list[str]:
    """Descriptions of a Dungeon Crawl ``dat/descript/*.txt`` file (``%%%%``-separated, name first)."""
    out = []
    for entry in text.split("%%%%"):
        lines = [ln for ln in entry.strip().splitlines() if not ln.startswith("#")]
        body = "\n".join(lines[1:]) if lines else ""
        out.extend(text_paragraphs(body))
    return out


def libreoffice_paragraphs(html: str) -> list[str]:
    return [t for t, is_code in extract_paragraphs(html).values() if not is_code]


def libreoffice_held_out(files: list[Path], seed: int = LIBREOFFICE_SEED,
                         min_label_pages: int = LIBREOFFICE_MIN_LABEL_PAGES) -> set[Path]:
    """The help pages in the dev and test splits of the ``libreoffice-help`` corpus (built with ``seed``).

    Recomputed exactly as :func:`~langalign.data.libreoffice.build_libreoffice_help` does: pages with
    paragraphs, grouped by module label, labels of fewer than ``min_label_pages`` pages left out, split
    by :func:`~langalign.data.libreoffice.split_pages`.
    """
    by_root: dict[Path, dict[str, Path]] = {}
    for f in files:
        parts = f.parts
        if "text" not in parts:
            continue
        i = len(parts) - 1 - parts[::-1].index("text")
        by_root.setdefault(Path(*parts[:i]), {})[Path(*parts[i:]).as_posix()] = f
    held: set[Path] = set()
    for pages in by_root.values():
        pages_by_label: dict[str, list[str]] = {}
        for page in sorted(pages):
            if extract_paragraphs(pages[page].read_bytes().decode("utf-8", errors="replace")):
                pages_by_label.setdefault(page_label(page), []).append(page)
        kept = {lab: ps for lab, ps in pages_by_label.items() if len(ps) >= min_label_pages}
        held.update(pages[p] for p, split in split_pages(kept, seed).items() if split != "train")
    return held


# ---------------------------------------------------------------- sources

@dataclass(frozen=True)
class Source:
    """One pool source: where its files are, how to read them, and what they are.

    ``package``: the Debian package (None for the shared reference data); ``extra_packages``: more
    packages read the same way (e.g. the Wesnoth campaigns).
    ``patterns``: globs relative to the package root (or the reference data folder).
    ``exclude``: regexes on the relative path of files to skip.
    ``parse``: file text -> items; ``prose``: items are split into sentences and must look like
    sentences; ``fix``: applied to each item before filtering (capitalising, detokenising);
    ``held_out``: files -> those that are dev/test material of an evaluated corpus (never in the pool,
    and their sentences are removed from every source).
    """

    name: str
    package: str | None
    patterns: tuple[str, ...]
    parse: Callable[[str], list[str]]
    licence: str
    description: str
    prose: bool = True
    exclude: tuple[str, ...] = ()
    fix: Callable[[str], str] | None = None
    extra_packages: tuple[str, ...] = ()
    held_out: Callable[[list[Path]], set[Path]] | None = None

    @property
    def packages(self) -> tuple[str, ...]:
        return ((self.package,) if self.package else ()) + self.extra_packages


def _lines(text: str) -> list[str]:
    return split_lines(text)


def _tsv_column(column: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        rows = text.splitlines()
        header = rows[0].split("\t") if rows else []
        if column not in header:  # the header is not echoed: the file may not be what it claims to be
            raise DataError(f"no column {column!r} in the header line")
        i = header.index(column)
        return [r.split("\t")[i] for r in rows[1:] if len(r.split("\t")) > i]
    return parse


def _min_words(n: int, parse: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    return lambda text: [t for t in parse(text) if len(t.split()) >= n]


# Debian's packages of the Wesnoth campaigns (their dialogue is the most conversational text here).
WESNOTH_CAMPAIGNS = ("did", "dm", "dw", "ei", "httt", "l", "low", "nr", "sof", "sota", "sotbe", "thot", "trow",
                     "tsg", "ttb", "utbs")
SOURCES: tuple[Source, ...] = (
    # The shared reference data: training splits only (see the module docstring).
    Source("sib200-train", None, ("sib200/eng_Latn/train.tsv",), _tsv_column("text"),
           "CC-BY-SA-4.0 (FLORES-200 text)", "SIB-200 eng_Latn train sentences", prose=False),
    Source("snli-dev", None, ("nli/snli_esnli/s1.dev", "nli/snli_esnli/s2.dev"), _lines, "CC-BY-SA-4.0",
           "SNLI dev premises and hypotheses (this project's NLI training data), detokenised", prose=False,
           fix=detokenize_ptb),
    Source("sst2-train", None, ("sentiment/sst2/train.tsv",), _min_words(5, _tsv_column("sentence")),
           "as GLUE (SST: see nlp.stanford.edu/sentiment)", "SST-2 train sentences and phrases of 5+ words, "
           "detokenised", prose=False, fix=detokenize_ptb),
    Source("stsb-train", None, ("sts/stsb_multi_mt/stsb-en-train.csv",), lambda t: [], "CC-BY-SA-4.0",
           "STS-B English train sentence pairs (both sides)", prose=False, fix=capitalize_first),
    # Debian packages, most conversational first (a duplicate is kept by the first source).
    Source("fortunes", "fortunes", ("usr/share/games/fortunes/*",), fortune_paragraphs,
           "BSD-3-clause (fortune-mod) / various (cookie files)",
           "fortune cookies (quotations, jokes, aphorisms)",
           exclude=(r"\.(dat|u8)$", r"/off/", r"ascii-art", r"translate-me")),
    Source("fortunes-min", "fortunes-min", ("usr/share/games/fortunes/*",), fortune_paragraphs,
           "BSD-3-clause (fortune-mod) / various (cookie files)", "fortune cookies (literature, riddles)",
           exclude=(r"\.(dat|u8)$", r"/off/")),
    Source("wordnet", "wordnet-base", ("usr/share/wordnet/data.*",), wordnet_examples, "WordNet-3.0 (BSD-like)",
           "WordNet 3.0 usage examples", prose=False, fix=as_sentence),
    Source("wesnoth", "wesnoth-1.16-data", ("usr/share/games/wesnoth/1.16/data/**/*.cfg",), wml_strings,
           "GPL-2+", "Battle for Wesnoth campaign dialogue, stories and help",
           extra_packages=tuple(f"wesnoth-1.16-{c}" for c in WESNOTH_CAMPAIGNS)),
    Source("crawl", "crawl-common", ("usr/share/crawl/dat/descript/*.txt",), crawl_descriptions, "GPL-2+",
           "Dungeon Crawl Stone Soup descriptions"),
    Source("gnome-help", "gnome-user-docs", ("usr/share/help/C/**/*.page",), html_paragraphs, "CC-BY-SA-3.0",
           "GNOME desktop help (English)"),
    Source("gimp-help", "gimp-help-en", ("usr/share/gimp/2.0/help/en/**/*.html",), html_paragraphs, "GFDL-1.2+",
           "GIMP user manual (English)"),
    Source("libreoffice-help", "libreoffice-help-en-us", ("usr/share/libreoffice/help/en-US/text/**/*.html",),
           libreoffice_paragraphs, "MPL-2.0", "LibreOffice help paragraphs (English) of the pages in the "
           "train split of the libreoffice-help corpus (seed 0)", held_out=libreoffice_held_out),
    Source("debian-handbook", "debian-handbook", ("usr/share/doc/debian-handbook/html/en-US/*.html",),
           html_paragraphs, "GPL-2+ or CC-BY-SA-3.0", "The Debian Administrator's Handbook (English)"),
    Source("debian-reference", "debian-reference-en", ("usr/share/debian-reference/*.en.html",),
           html_paragraphs, "GPL-2+", "Debian Reference (English)"),
    Source("debian-faq", "debian-faq", ("usr/share/doc/debian/FAQ/*.html",), html_paragraphs,
           "permissive (SPI, keep the notice)",
           "The Debian GNU/Linux FAQ"),
    Source("debian-docs", "doc-debian", ("usr/share/doc/debian/*.txt", "usr/share/doc/debian/*.txt.gz"),
           text_paragraphs, "GPL-2+ / various", "Debian project documents (social contract, constitution, ...)"),
    Source("developers-reference", "developers-reference", ("usr/share/developers-reference/*.html",),
           html_paragraphs, "MIT-like", "Debian Developer's Reference"),
    Source("debian-policy", "debian-policy", ("usr/share/doc/debian-policy/policy.html/*.html",), html_paragraphs,
           "GPL-2+", "Debian Policy Manual"),
    Source("maint-guide", "maint-guide", ("usr/share/doc/maint-guide/html/*.en.html",),
           html_paragraphs, "GPL-2+ or MIT", "Debian New Maintainers' Guide"),
    Source("debian-history", "debian-history", ("usr/share/doc/debian-history/docs/*.en.html",),
           html_paragraphs, "GPL-2+", "A Brief History of Debian"),
    Source("python-docs", "python3.11-doc", ("usr/share/doc/python3.11/html/**/*.html",), html_paragraphs,
           "PSF-2.0", "Python 3.11 documentation (tutorial, how-tos, FAQ, library)",
           exclude=(r"/_sources/", r"genindex", r"py-modindex", r"/search\.html$", r"/c-api/")),
)
SOURCE_NAMES = tuple(s.name for s in SOURCES)
# Files of the reference data that are test/dev material: read only to remove their sentences from the pool.
EVALUATION_FILES: tuple[tuple[str, Callable[[str], list[str]]], ...] = (
    ("tatoeba/tatoeba.kor-eng.eng", _lines), ("tatoeba/tatoeba.jpn-eng.eng", _lines),
    ("tatoeba/tatoeba.cmn-eng.eng", _lines),
    ("sib200/eng_Latn/dev.tsv", _tsv_column("text")), ("sib200/eng_Latn/test.tsv", _tsv_column("text")),
    ("nli/snli_esnli/s1.test", _lines), ("nli/snli_esnli/s2.test", _lines),
    ("nli/xnli_xtreme/dev-en.tsv", lambda t: [c for r in t.splitlines() for c in r.split("\t")[:2]]),
    ("sentiment/sst2/dev.tsv", _tsv_column("sentence")), ("sentiment/sst2/test.tsv", _tsv_column("sentence")),
    ("sts/stsb_multi_mt/stsb-en-dev.csv", lambda t: []), ("sts/stsb_multi_mt/stsb-en-test.csv", lambda t: []),
)


def _relative(path: Path, bases: Sequence[Path]) -> str:
    """``path`` relative to the first of ``bases`` it lies under (a stable name for the inputs' digest)."""
    for b in bases:
        try:
            return path.relative_to(b).as_posix()
        except ValueError:
            continue
    return path.name


def _within(tree: Path, path: Path) -> bool:
    """Is ``path`` (links followed) inside ``tree`` (links followed)?"""
    try:
        real, root = os.path.realpath(path), os.path.realpath(tree)
    except (OSError, ValueError):
        return False
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _read_bytes_limited(path: Path) -> bytes:
    """The file's bytes (decompressed for .gz/.dz), at most the readers' :data:`MAX_BYTES`."""
    limit = MAX_BYTES
    size = path.stat().st_size
    if size > limit:
        raise DataError(f"{path}: the file is {size:,} bytes, more than the {limit:,} one input file may hold")
    if path.suffix not in (".gz", ".dz"):
        return path.read_bytes()
    with gzip.open(path, "rb") as f:  # streamed: a small compressed file cannot expand without bound
        data = f.read(limit + 1)
    if len(data) > limit:
        raise DataError(f"{path}: decompresses to more than the {limit:,} bytes one input file may hold")
    return data


def _read_file(path: Path) -> str:
    return _read_bytes_limited(path).decode("utf-8", errors="replace")


def _read_items(path: Path, parse: Callable[[str], list[str]]) -> list[str]:
    if path.suffix == ".csv":  # STS-B: sentence1, sentence2, score
        ds = read_labelled(path, text=0, text_pair=1, label=2, format="csv")
        return [*ds.texts, *(ds.text_pairs or [])]
    strict = path.suffix == ".tsv" or not path.suffix or path.suffix in (".dev", ".test", ".eng")
    items = parse(decode_utf8(_read_bytes_limited(path), path) if strict else _read_file(path))
    for i, t in enumerate(items):  # the readers' cell limit, for every source
        if len(t) > MAX_CELL_CHARS:
            raise cell_too_long(path, f"item {i + 1}", "a text", len(t))
    return items


# ---------------------------------------------------------------- getting the packages

def _apt_download_each(packages: Sequence[str], dest: Path) -> dict[str, str]:
    """Download what can be downloaded; ``{package: error}`` for the rest (one call, then one per package)."""
    if not shutil.which("apt-get"):
        raise LangAlignError("apt-get not found: download the Debian packages " + ", ".join(packages)
                             + " yourself and pass their folder with --debs DIR")

    def get(pkgs: Sequence[str]) -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", *pkgs], cwd=dest, capture_output=True, text=True,
                              timeout=1800)

    if get(packages).returncode == 0:
        return {}
    # A fresh container has no package lists; fetch them once, then try the packages one by one.
    subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=600)
    failed = {}
    for pkg in packages:  # "name" or "name=version" (a build reproducing a manifest)
        base = pkg.split("=")[0]
        if any(dest.glob(f"{base}_*.deb")):
            continue
        r = get([pkg])
        if r.returncode != 0:
            failed[base] = (r.stderr.strip().splitlines() or ["unknown error"])[-1]
    return failed


def _copyright_licences(root: Path, package: str) -> list[str]:
    """The distinct ``License:`` names of a package's DEP-5 copyright file (empty if not machine-readable)."""
    f = root / "usr/share/doc" / package / "copyright"
    if not f.is_file():
        return []
    text = f.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("Format:"):
        return []  # free-form copyright file: the source's ``licence`` says what it is
    names = re.findall(r"^License:[ \t]*(\S[^\n]*)$", text, re.M)
    return sorted({n.strip() for n in names if len(n) < 80})


def _find_root(trees: Sequence[Path], src: Source) -> Path | None:
    """The first tree (or a folder directly inside one) holding files of ``src``."""
    for tree in trees:
        for cand in (tree, tree / src.name, *(tree / p for p in src.packages), *sorted(tree.glob("*/"))):
            if cand.is_dir() and _within(tree, cand) and _source_files(cand, src):  # no link leading out
                return cand
    return None


def _source_files(root: Path, src: Source) -> list[Path]:
    files: set[Path] = set()
    for pat in src.patterns:
        files.update(p for p in root.glob(pat) if p.is_file())
    rel = {p: p.relative_to(root).as_posix() for p in files}
    return sorted(p for p in files if not any(re.search(x, "/" + rel[p]) for x in src.exclude))


__all__ = ["Source", "SOURCES", "SOURCE_NAMES", "EVALUATION_FILES", "html_paragraphs", "text_paragraphs",
           "fortune_paragraphs", "wordnet_examples", "wml_strings", "crawl_descriptions", "libreoffice_paragraphs",
           "libreoffice_held_out"]
