"""Build a large, varied pool of English sentences offline (for fitting English-only bridges).

Sources (see :data:`SOURCES`): the English *training* text of the shared
reference data (SIB-200 eng_Latn train, SNLI dev premises/hypotheses - the NLI
training data of this project -, SST-2 train items of 5+ words, STS-B English
train) and Debian packages of English prose fetched with ``apt-get download``
(or taken from ``debs=DIR``): fortune cookies, WordNet's usage examples, game
dialogue and descriptions (Battle for Wesnoth, Dungeon Crawl), LibreOffice /
GIMP / GNOME help and Debian's and Python's manuals.

Never read: Tatoeba, and any dev/test split of an evaluated task (SNLI's
``*.test``, XNLI, SST-2 dev/test, STS-B dev/test, SIB-200 dev/test). Those
files are read only to *remove* any pool sentence that also occurs in them
(counted as ``in an evaluation set``). The same holds for the LibreOffice help
pages in the dev/test splits of the ``libreoffice-help`` corpus (seed 0): only
its train pages feed the pool.

Processing, each drop counted per source in the manifest: prose is split into
sentences by a regex splitter (abbreviations and initials protected, quotations
kept whole), typographic quotes are straightened, whitespace collapsed, list
numbers stripped; a sentence is kept if it has ``min_words``..``max_words``
words, mostly letters, mostly ASCII, no URL / path / code / markup (inline
``<code>`` drops its sentence), no gap left by a removed link, balanced quotes
and brackets, and (for prose) starts like a sentence and ends with ``.``,
``!`` or ``?``. Items that are already sentences
(datasets, WordNet examples) skip the start/end test; WordNet's lower-case,
unpunctuated examples and SST-2's tokenised lower-case text are capitalised and
detokenised first. Duplicates (case, punctuation and whitespace ignored) are
dropped across sources, the first source in :data:`SOURCES` order keeping it.
``max_per_source`` then caps each source (a seeded sample), and the pool is
shuffled with ``seed``.

Output: ``<data home>/corpora/english-pool/sentences.txt`` (one sentence per
line), ``sources.txt`` (the source of each line) and ``manifest.json``.
"""
from __future__ import annotations

import gzip
import logging
import os
import random
import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from .._version import __version__
from .._io import atomic_dir, scratch_dir
from .._progress import progress
from ..errors import DataError, LangAlignError
from .corpus import DUPLICATE, EMPTY, TOO_SHORT
from .home import (MANIFEST, check_inputs, corpus_dir, digest_inputs, find_reference_data, read_like, read_manifest,
                   sha256_of, write_manifest)
from .libreoffice import _deb_version, _extract_deb, extract_paragraphs, local_debs, page_label, split_pages
from .readers import MAX_BYTES, MAX_CELL_CHARS, cell_too_long, decode_utf8, read_labelled, split_lines

log = logging.getLogger("langalign.data")

NAME = "english-pool"
BUILDER_VERSION = 4  # bump when extraction/cleaning changes, so old builds are not reused
SENTENCES = "sentences.txt"
SOURCES_FILE = "sources.txt"

TOO_LONG = "too long"
FEW_LETTERS = "too few letters"
NON_ASCII = "not mostly ASCII"
CODE = "code, URL, path or markup"
NO_START = "no sentence start"
NO_END = "no sentence end"
SHOUTING = "all capitals"
IN_EVAL = "in an evaluation set"
CAPPED = "over max_per_source"
HELD_OUT_FILES = "held-out files (dev/test of an evaluated corpus)"
# The libreoffice-help corpus (an evaluated task) is split by page with this seed: its dev/test pages
# are kept out of the pool.
LIBREOFFICE_SEED = 0
LIBREOFFICE_MIN_LABEL_PAGES = 10
DANGLING = "dangling word (removed link or markup)"
UNBALANCED = "unbalanced quotes or brackets"


# ---------------------------------------------------------------- sentences

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "fig", "no",
    "vol", "ch", "sec", "approx", "inc", "ltd", "co", "corp", "dept", "gen", "col", "lt", "capt", "sgt", "rev",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m",
    "p.m", "ph.d", "b.c", "a.d", "al", "esp", "viz", "ca", "op", "ed", "eds", "pp", "resp",
}
# A candidate boundary: end punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"([.!?]+[\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")
_WS = re.compile(r"\s+")
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                            "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"',
                            "\u00bb": '"', "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
                            "\u2013": "-", "\u2014": " - ", "\u2212": "-", "\u00ad": "", "\u200b": ""})
_CODE = re.compile(
    r"https?://|ftp://|www\.|//|(?:^|\s)/|\S@\S+\.\w|::|[{}<>\\|~^`_=]|[$#](?!\d)|\[\w*\]|"  # URLs, mail, markup
    r"(?:^|\s)[./~]?[\w.-]+/[\w.-]+/|\w\.(?:html?|txt|py|cfg|conf|sh|deb|xml|so|c|h|png|jpg|svg)\b|"  # paths
    r"\w\(\)|\w\.\w+\(|--\w|\s-\w\b|\.\./|\w_\w|[a-z][A-Z][a-z]+[A-Z]|"  # calls, options, identifiers
    r"\b[A-Z]{1,3}\d+:[A-Z]{1,3}\d+\b|"  # spreadsheet ranges
    r"(?<=[a-z,] )(?:None|True|False)\b")  # Python constants mid-sentence ("returns None"), not "None of us"
_ENUMERATOR = re.compile(r"^(?:\(?\d{1,3}[.)]|[-*+\u2022])\s+(?=[\"'(]?[A-Z])")
_SPACE_PUNCT = re.compile(r"\s+([.,;:!?])(?=[\s\"')]|$)")
# A function word right before punctuation: a link or code sample was removed from the sentence.
_DANGLING = re.compile(r"\b(?:see|in|on|at|from|to|the|a|an|and|or|of|with|by|for|into|under|click|choose|"
                       r"select|press|use|is|are)\s+[.,;:!?]", re.I)
_START = re.compile(r"^[\"'(]?[A-Z0-9]")
_END = re.compile(r"[.!?][\"')]*$")
# SST-2 (PTB tokenised, lower-cased) back to plain text.
_DETOK = [(re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"), (re.compile(r" ([.,!?;:%)])"), r"\1"),
          (re.compile(r"([($]) "), r"\1"), (re.compile(r"-lrb- ?"), "("), (re.compile(r" ?-rrb-"), ")"),
          (re.compile(r"``\s*|\s*''"), '"'), (re.compile(r" ` ?| ' ?(?=\w)"), " '"), (re.compile(r"\bi\b"), "I"),
          (re.compile(r" ca n't"), " can't"), (re.compile(r"\bwo n't"), "won't")]


def clean_text(text: str) -> str:
    """NFC, typographic quotes/dashes made ASCII, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    return _WS.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences on ``.``/``!``/``?`` + space + capital, keeping abbreviations and initials."""
    text = clean_text(text)
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        before = text[start:m.start(1)]
        last = before.rsplit(" ", 1)[-1].lstrip("\"'([").lower()
        if m.group(1).startswith(".") and len(m.group(1).rstrip("\"')]")) == 1 and (
                last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()) or last.isdigit()):
            continue  # "Dr. Smith", "J. R. R. Tolkien", "No. 5", "3. Open the file"
        out.append(text[start:m.end(1)].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    # A boundary inside a quotation ('He said, "Stop. Go home."') is no boundary: rejoin
    # pieces until the double quotes balance.
    merged: list[str] = []
    for piece in out:
        if merged and merged[-1].count('"') % 2 == 1:
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return merged


def tidy(sentence: str) -> str:
    """A leading list number or bullet removed, spaces before punctuation (left by removed markup) closed."""
    sentence = _ENUMERATOR.sub("", sentence)
    return _SPACE_PUNCT.sub(r"\1", sentence)


def detokenize_ptb(text: str) -> str:
    """``"it 's a charming , often affecting journey ."`` -> ``"It's a charming, often affecting journey."``."""
    for pat, rep in _DETOK:
        text = pat.sub(rep, text)
    return capitalize_first(clean_text(text))


def capitalize_first(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
        if ch not in "\"'(":
            break
    return text


def as_sentence(text: str) -> str:
    """A sentence-like item (a WordNet example) made to look like one: capital first, a final period."""
    text = capitalize_first(clean_text(text))
    if text and not _END.search(text):
        text += "."
    return text


def drop_reason(sentence: str, *, min_words: int = 4, max_words: int = 40, prose: bool = True) -> str | None:
    """Why ``sentence`` is not kept (a reason name), or None to keep it.

    ``prose=False`` (items that are sentences already) skips the start/end test.
    """
    if not sentence:
        return EMPTY
    n = len(sentence.split())
    if n < min_words:
        return TOO_SHORT
    if n > max_words:
        return TOO_LONG
    chars = sentence.replace(" ", "")
    if sum(ord(c) > 127 for c in chars) > 0.02 * len(chars) + 1:
        return NON_ASCII
    if sum(c.isalpha() for c in chars) < 0.8 * len(chars):
        return FEW_LETTERS
    if _CODE.search(sentence):
        return CODE
    if _DANGLING.search(sentence):
        return DANGLING
    if sentence.count('"') % 2 or sentence.count("(") != sentence.count(")"):
        return UNBALANCED
    letters = [c for c in sentence if c.isalpha()]
    if sum(c.isupper() for c in letters) > 0.5 * len(letters):
        return SHOUTING
    if prose:
        if not _START.match(sentence):
            return NO_START
        if not _END.search(sentence):
            return NO_END
    return None


def dedupe_key(sentence: str) -> str:
    """Case, punctuation and whitespace ignored: ``"Hello,  world!"`` and ``"hello world"`` are one sentence."""
    return " ".join(re.sub(r"[^\w\s]", " ", sentence.casefold()).split())


def dedupe(sentences: Iterable[str]) -> list[str]:
    """The first occurrence of each sentence (by :func:`dedupe_key`), order kept."""
    seen: set[str] = set()
    out = []
    for s in sentences:
        k = dedupe_key(s)
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out


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


# ---------------------------------------------------------------- build

def _settings(sources: Sequence[str], min_words: int, max_words: int, max_per_source: int | None,
              seed: int) -> dict[str, Any]:
    return {"builder_version": BUILDER_VERSION, "sources": list(sources), "min_words": min_words,
            "max_words": max_words, "max_per_source": max_per_source, "seed": seed,
            "dedupe": "case, punctuation and whitespace ignored, across sources",
            "normalize": "NFC, ASCII quotes"}


def check_pool_folder(folder: Path) -> None:
    """Refuse to replace a folder that is not an english-pool build (someone else's files)."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise DataError(f"{folder} exists and is not a folder; move it away to build {NAME} there")
    if not any(folder.iterdir()):
        return
    try:
        m = read_manifest(folder)
    except DataError:
        m = {}
    if m.get("name") != NAME:
        raise DataError(f"{folder} holds files that langalign's {NAME} builder did not write; "
                        f"it is left untouched - move it away or pass another data home")


def _existing_build(folder: Path, settings: dict[str, Any]) -> bool:
    try:
        m = read_manifest(folder)
    except DataError:
        return False
    if m.get("name") != NAME or m.get("settings") != settings:
        return False
    return all((folder / e["path"]).is_file() for e in m.get("files", []))


def _process(items: Iterable[str], src: Source, counts: Counter[str], min_words: int,
             max_words: int) -> Iterator[str]:
    for item in items:
        pieces = split_sentences(item) if src.prose else [item]
        for piece in pieces:
            counts["candidates"] += 1
            s = clean_text(src.fix(piece) if src.fix else piece)
            if CODE_MARK in s:
                counts[CODE] += 1
                continue
            reason = DANGLING if _DANGLING.search(s) else None  # before tidy() closes the gap
            s = tidy(s)
            reason = reason or drop_reason(s, min_words=min_words, max_words=max_words, prose=src.prose)
            if reason is not None:
                counts[reason] += 1
                continue
            yield s


def build_english_pool(sources: Sequence[str] | None = None, debs: Any = None, seed: int = 0, *,
                       reference: str | os.PathLike | None = None, home: str | os.PathLike | None = None,
                       max_per_source: int | None = None, min_words: int = 4, max_words: int = 40,
                       force: bool = False, show_progress: bool | None = None, like: Any = None) -> Path:
    """Build (or reuse) the English sentence pool in ``<data home>/corpora/english-pool``.

    ``sources``: names from :data:`SOURCE_NAMES` (default: all). ``debs``: None to
    fetch the Debian packages with ``apt-get download`` (a package that cannot be
    fetched is skipped, with a warning, and listed under ``missing`` in the
    manifest); or a folder (or list of paths) with the ``.deb`` files or trees
    extracted with ``dpkg -x`` (one per package folder, or one merged tree).
    ``reference``: the shared reference data folder (default: found as
    :func:`~langalign.data.home.find_reference_data` does). ``max_per_source``:
    keep at most this many sentences of any one source (a seeded sample).
    ``like``: a pool manifest (or its path or folder) to reproduce: its sources, settings and
    seed are used, apt fetches the package versions it records, and the build stops (writing
    nothing) unless every input file read hashes to what it records (``inputs``).
    Returns the pool folder.
    """
    pins: dict[str, str] = {}
    recorded_inputs: Any = None
    if like is not None:
        m = read_like(like, NAME)
        st = m["settings"]
        if st.get("builder_version") != BUILDER_VERSION:
            raise DataError(f"{like}: made by pool builder version {st.get('builder_version')}, this langalign builds "
                            f"version {BUILDER_VERSION}: the same inputs would give another pool")
        sources, min_words, max_words = st.get("sources"), st.get("min_words", 4), st.get("max_words", 40)
        max_per_source, seed, force = st.get("max_per_source"), st.get("seed", 0), True
        for recorded in (m.get("sources") or {}).values():
            versions = recorded.get("packages") or ({recorded["package"]: recorded.get("version")}
                                                    if "package" in recorded else {})
            pins.update({p: v for p, v in versions.items()
                         if isinstance(v, str) and v not in ("extracted tree", "missing")})
        recorded_inputs = m.get("inputs")
    names = list(SOURCE_NAMES) if sources is None else list(dict.fromkeys(sources))
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; available: {', '.join(SOURCE_NAMES)}")
    if not names:
        raise ValueError("no sources selected")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    if max_per_source is not None and max_per_source < 1:
        raise ValueError(f"max_per_source must be >= 1, got {max_per_source}")
    chosen = [s for s in SOURCES if s.name in names]
    settings = _settings(names, min_words, max_words, max_per_source, seed)
    folder = corpus_dir(NAME, home)
    check_pool_folder(folder)
    if not force and _existing_build(folder, settings):
        log.info("%s already built with these settings at %s (pass force=True to rebuild)", NAME, folder)
        return folder

    ref_sources = [s for s in chosen if not s.packages]
    ref_root = Path(reference) if reference is not None else (find_reference_data() if ref_sources else None)
    per_source: dict[str, list[str]] = {}
    stats: dict[str, dict[str, Any]] = {}
    missing: dict[str, str] = {}
    held_keys: set[str] = set()
    inputs: dict[str, Any] = {}
    deb_shas: dict[str, str] = {}
    with scratch_dir("langalign-pool-") as tmp:
        roots = _package_roots([s for s in chosen if s.packages], debs, Path(tmp), missing, pins, deb_shas)
        for src in chosen:
            counts: Counter[str] = Counter()
            if not src.packages:
                assert ref_root is not None
                files = [ref_root / p for p in src.patterns]
                absent = [str(f) for f in files if not f.is_file()]
                if absent:
                    raise DataError(f"{src.name}: {', '.join(absent)} not found in the reference data")
                outside = [str(f) for f in files if not _within(ref_root, f)]
                if outside:  # a link to /etc/passwd is not reference data: never read it
                    raise DataError(f"{src.name}: {', '.join(outside)} is a link leading out of the reference data "
                                    f"folder {ref_root}; refusing to read it")
                info: dict[str, Any] = {"origin": f"reference data {', '.join(src.patterns)}",
                                        "licence": src.licence}
            elif src.name in roots:
                found = roots[src.name]
                files = [f for root, _, _ in found for f in _source_files(root, src) if _within(root, f)]
                leading_out = sum(1 for root, _, _ in found for f in _source_files(root, src) if not _within(root, f))
                if leading_out:  # e.g. a link to /usr/share/... in a package: the system's file, not the package's
                    log.warning("%s: skipping %d file(s) whose links lead out of the source tree", src.name,
                                leading_out)
                    counts["links leading out of the tree"] = leading_out
                info = {"package": src.package, "version": found[0][2] if found[0][1] == src.package else "missing",
                        "licence": src.licence,
                        "copyright_licences": sorted({lic for root, pkg, _ in found
                                                      for lic in _copyright_licences(root, pkg)})}
                if len(src.packages) > 1:
                    info["packages"] = {pkg: version for _, pkg, version in found}
            else:
                continue
            out: list[str] = []
            held = src.held_out(files) if src.held_out is not None else set()
            if held:
                counts[HELD_OUT_FILES] = len(held)
            for f in progress(files, total=len(files), desc=f"read {src.name}", show=show_progress, unit="file"):
                try:
                    items = _read_items(f, src.parse)
                except (OSError, ValueError, EOFError) as e:
                    if not src.packages:
                        raise  # the reference data is checked data: a broken file there is an error
                    # one unreadable file in a package must not stop the build
                    log.warning("%s: skipping %s (%s)", src.name, f, e)
                    counts["unreadable files"] += 1
                    continue
                if f in held:  # its sentences are evaluation material: kept out of the pool everywhere
                    held_keys.update(dedupe_key(x) for x in _process(items, src, Counter(), min_words, max_words))
                else:
                    out.extend(_process(items, src, counts, min_words, max_words))
            counts["files"] = len(files) - len(held)
            per_source[src.name] = out
            bases = [r for r, _, _ in roots.get(src.name) or []] if src.packages else [ref_root or Path(".")]
            inputs[src.name] = digest_inputs((_relative(f, bases), f) for f in files)
            if src.packages:
                inputs[src.name]["version"] = ", ".join(f"{p}={v}" for _, p, v in roots[src.name])
                shas = {p: deb_shas[p] for _, p, _ in roots[src.name] if p in deb_shas}
                if shas:
                    inputs[src.name]["deb_sha256"] = shas
            stats[src.name] = {**info, "description": src.description, "counts": counts}
        ref_for_eval = ref_root if ref_root is not None else _try_reference()
        evaluation = _evaluation_keys(ref_for_eval) | held_keys
        if ref_for_eval is not None:  # the sentences kept out of the pool are an input too
            inputs["evaluation files"] = digest_inputs(
                (rel, ref_for_eval / rel) for rel, _ in EVALUATION_FILES
                if (ref_for_eval / rel).is_file() and _within(ref_for_eval, ref_for_eval / rel))
    if like is not None:
        check_inputs(recorded_inputs, inputs, f"reproducing {like}")

    # Dedupe across sources in SOURCES order, remove evaluation sentences, cap, shuffle.
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, str]] = []
    for name in [s.name for s in chosen if s.name in per_source]:
        counts = stats[name]["counts"]
        kept = []
        for s in per_source[name]:
            k = dedupe_key(s)
            if k in evaluation:
                counts[IN_EVAL] += 1
            elif k in seen:
                counts[DUPLICATE] += 1
            else:
                seen.add(k)
                kept.append(s)
        if max_per_source is not None and len(kept) > max_per_source:
            counts[CAPPED] += len(kept) - max_per_source
            idx = sorted(rng.sample(range(len(kept)), max_per_source))
            kept = [kept[i] for i in idx]
        counts["kept"] = len(kept)
        rows.extend((s, name) for s in kept)
    if not rows:
        raise DataError("no sentences survived the filters; nothing to write")
    rng.shuffle(rows)
    for st in stats.values():
        c = st.pop("counts")
        st["counts"] = {"files": c.pop("files", 0), "candidates": c.pop("candidates", 0), "kept": c.pop("kept", 0),
                        "dropped": dict(sorted(c.items()))}
    with atomic_dir(folder, check=check_pool_folder) as tmpdir:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmpdir, 0o777 & ~umask)  # a temporary folder is private; the pool is meant to be shared
        (tmpdir / SENTENCES).write_text("".join(s + "\n" for s, _ in rows), encoding="utf-8")
        (tmpdir / SOURCES_FILE).write_text("".join(n + "\n" for _, n in rows), encoding="utf-8")
        per = {n: st["counts"]["kept"] for n, st in stats.items()}
        write_manifest(tmpdir, name=NAME, licence="mixed: see sources",
                       source="shared reference data (training splits) and Debian packages "
                              + ", ".join(f"{p}={v}" for st in stats.values() if "package" in st
                                          for p, v in st.get("packages", {st["package"]: st["version"]}).items()),
                       counts={"sentences": len(rows), "per_source": per}, settings=settings,
                       extra={"langalign_version": __version__, "sources": stats, "missing": missing,
                              "inputs": inputs,
                              "evaluation_sentences_excluded": len(evaluation),
                              "evaluation_files": [p for p, _ in EVALUATION_FILES],
                              "format": f"{SENTENCES}: one sentence per line; {SOURCES_FILE}: its source"})
        os.chmod(tmpdir / MANIFEST, 0o666 & ~umask)
    for name, n in per.items():
        log.info("%s: %d sentences", name, n)
    return folder


def _try_reference() -> Path | None:
    try:
        return find_reference_data()
    except DataError:
        return None


def _evaluation_keys(root: Path | None) -> set[str]:
    """Dedupe keys of every evaluation sentence found under ``root`` (missing files are skipped)."""
    keys: set[str] = set()
    if root is None:
        return keys
    for rel, parse in EVALUATION_FILES:
        p = root / rel
        if p.is_file() and _within(root, p):
            keys.update(dedupe_key(clean_text(t)) for t in _read_items(p, parse))
    # SST-2 is tokenised: its detokenised form is what the pool holds.
    for rel in ("sentiment/sst2/dev.tsv", "sentiment/sst2/test.tsv"):
        p = root / rel
        if p.is_file() and _within(root, p):
            keys.update(dedupe_key(detokenize_ptb(t)) for t in _read_items(p, _tsv_column("sentence")))
    keys.discard("")
    return keys


def _package_roots(chosen: Sequence[Source], debs: Any, workdir: Path, missing: dict[str, str],
                   pins: dict[str, str] | None = None,
                   deb_shas: dict[str, str] | None = None) -> dict[str, list[tuple[Path, str, str]]]:
    """``{source: [(root folder, package, version), ...]}``; unavailable packages go into ``missing``.

    ``pins``: package -> version to fetch (apt); ``deb_shas`` receives the sha256 of each .deb used.
    """
    if not chosen:
        return {}
    packages = sorted({p for s in chosen for p in s.packages})
    trees: list[Path] = []
    if debs is None:
        dl = workdir / "debs"
        dl.mkdir()
        wanted = [f"{p}={pins[p]}" if pins and p in pins else p for p in packages]
        for pkg, err in _apt_download_each(wanted, dl).items():
            missing[pkg] = f"apt-get download failed: {err}"
        deb_files = sorted(dl.glob("*.deb"))
    else:
        deb_files, trees = local_debs(debs)
    roots: dict[str, list[tuple[Path, str, str]]] = {}
    extracted: dict[str, Path] = {}
    for src in chosen:
        for pkg in src.packages:
            match = [d for d in deb_files if d.name.startswith(pkg + "_")]
            if match:
                if pkg not in extracted:
                    dest = workdir / "x" / pkg
                    dest.mkdir(parents=True, exist_ok=True)
                    _extract_deb(match[-1], dest)
                    extracted[pkg] = dest
                    if deb_shas is not None:
                        deb_shas[pkg] = sha256_of(match[-1])
                if _source_files(extracted[pkg], src):
                    roots.setdefault(src.name, []).append((extracted[pkg], pkg, _deb_version(match[-1])))
                else:
                    missing[pkg] = f"{match[-1].name} holds no {' or '.join(src.patterns)}"
                continue
            # an extracted tree: a folder named after the package, or (main package only) any tree with the files
            root = _find_root([t / pkg for t in trees] if pkg != src.package else trees, src)
            if root is not None:
                roots.setdefault(src.name, []).append((root, pkg, "extracted tree"))
            elif pkg not in missing:
                missing[pkg] = "not found" if debs is None else f"no {pkg}_*.deb or extracted tree in {debs}"
    for pkg, why in missing.items():
        log.warning("english-pool: skipping %s (%s)", pkg, why)
    return roots


# ---------------------------------------------------------------- loading

def _pool_files(home: str | os.PathLike | None) -> tuple[Path, Path]:
    folder = corpus_dir(NAME, home)
    texts, srcs = folder / SENTENCES, folder / SOURCES_FILE
    if not texts.is_file() or not (folder / MANIFEST).is_file():
        raise DataError(f"{texts} not found: build it with `langalign data build english-pool`")
    return texts, srcs


def load_english_pool_table(home: str | os.PathLike | None = None, max_sentences: int | None = None,
                            seed: int = 0, sources: Sequence[str] | None = None,
                            max_per_source: int | None = None) -> tuple[list[str], list[str]]:
    """``(sentences, their sources)`` of the built pool, in file order (a seeded shuffle).

    ``sources``: keep only these sources; ``max_per_source``: at most this many
    sentences of any one source; ``max_sentences``: then a seeded sample of this
    many. Samples keep the file order.
    """
    texts_path, src_path = _pool_files(home)
    texts = texts_path.read_text(encoding="utf-8").splitlines()
    names = src_path.read_text(encoding="utf-8").splitlines() if src_path.is_file() else ["unknown"] * len(texts)
    if len(names) != len(texts):
        raise DataError(f"{src_path} has {len(names)} lines for {len(texts)} sentences; rebuild the pool")
    for what, n in (("max_sentences", max_sentences), ("max_per_source", max_per_source)):
        if n is not None and n < 0:
            raise ValueError(f"{what} must be >= 0, got {n}")
    rng = random.Random(seed)
    keep = list(range(len(texts)))
    if sources is not None:
        wanted, have = set(sources), set(names)
        if not wanted <= have:
            raise ValueError(f"source(s) {', '.join(sorted(wanted - have))} not in the pool; "
                             f"it holds {', '.join(sorted(have))}")
        keep = [i for i in keep if names[i] in wanted]
    if max_per_source is not None:
        by_source: dict[str, list[int]] = {}
        for i in keep:
            by_source.setdefault(names[i], []).append(i)
        keep = sorted(i for name in sorted(by_source) for i in
                      (by_source[name] if len(by_source[name]) <= max_per_source
                       else rng.sample(by_source[name], max_per_source)))
    if max_sentences is not None and max_sentences < len(keep):
        keep = sorted(rng.sample(keep, max_sentences))
    return [texts[i] for i in keep], [names[i] for i in keep]


def load_english_pool(home: str | os.PathLike | None = None, max_sentences: int | None = None, seed: int = 0,
                      sources: Sequence[str] | None = None, max_per_source: int | None = None) -> list[str]:
    """The pool's sentences; see :func:`load_english_pool_table` for the options."""
    return load_english_pool_table(home, max_sentences, seed, sources, max_per_source)[0]


__all__ = ["build_english_pool", "load_english_pool", "load_english_pool_table", "split_sentences",
           "drop_reason", "dedupe", "dedupe_key", "SOURCES", "SOURCE_NAMES"]
