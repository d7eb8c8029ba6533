"""Build an English-X parallel corpus (with topic labels) from LibreOffice's help pages.

Debian ships the LibreOffice help per language (``libreoffice-help-en-us``,
``-ko``, ``-ja``, ``-zh-cn``, MPL-2.0). Every page exists under the same path in
every language (``usr/share/libreoffice/help/<lang>/text/swriter/guide/...``)
and every paragraph keeps the same ``id="par_id..."``, so English and each
target language pair up by (page path, paragraph id).

Cleaning (each drop counted in the manifest): empty paragraphs, code samples
(``class="code..."``), English side shorter than 3 characters or 2 words,
untranslated paragraphs (both sides identical), duplicate pairs. Pages embed
shared paragraphs, so the same pair occurs on many pages: by default
(``dedupe="corpus"``) only its first occurrence in sorted page order is kept,
so no pair appears in two splits; this gives about 14k en-ko, 14k en-ja and
19k en-zh pairs. ``dedupe="page"`` drops repeats within a page only (about
18k / 17k / 24k pairs, but a repeated pair can then sit in train and test).

Label = the LibreOffice module the page documents, from its folder:
``text/swriter`` -> writer, ``scalc`` -> calc, ``simpress`` -> impress, ``sdraw``
-> draw, ``sbasic`` -> basic, ``smath`` -> math, ``schart`` -> chart,
``sdatabase`` -> database, ``shared`` -> shared. An unknown folder keeps its
own name. A label with fewer than ``min_label_pages`` (10) pages is dropped
(counted), because it could not appear in every split; so is a label with
fewer than ``min_label_pairs`` (100) training pairs in any built language (in
LibreOffice 7.4 that removes ``database``: Base's pages are mostly untranslated,
about 20 ko/ja training pairs). The label set is the same for every language.

Splits are made BY PAGE (a page's paragraphs all go to one split), stratified
by label: per label, pages are shuffled with ``seed`` and cut 80/10/10, with at
least one page in each split, so every label occurs in train, dev and test.
The split depends only on the English page list and the seed, so it is the
same for every target language.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import tarfile
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from .._io import atomic_dir, scratch_dir
from .._progress import progress
from ..errors import DataError, LangAlignError
from .corpus import DUPLICATE, EMPTY, IDENTICAL, TOO_SHORT, ParallelCorpus
from .home import check_inputs, corpus_dir, digest_inputs, read_like, read_manifest, sha256_of, write_manifest
from .langcodes import language, normalize_lang, parse_langs
from .readers import read_parallel, write_table
from .records import normalize_text

log = logging.getLogger("langalign.data")

NAME = "libreoffice-help"
LICENCE = "MPL-2.0"
SPLITS = ("train", "dev", "test")
COLUMNS = ("page", "par_id", "label", "source", "target")
BUILDER_VERSION = 2  # bump when the extraction/cleaning changes, so old builds are not reused
CODE = "code sample"
SMALL_LABEL = "label with too few pages"
FEW_PAIRS = "label with too few training pairs"

MODULE_LABELS = {"swriter": "writer", "scalc": "calc", "simpress": "impress", "sdraw": "draw",
                 "sbasic": "basic", "smath": "math", "schart": "chart", "sdatabase": "database",
                 "shared": "shared"}
_HELP_SUBDIR = Path("usr/share/libreoffice/help")
_WS = re.compile(r"\s+")
# Tags that separate words when they appear inside a paragraph (inline ones do not).
_BREAKING_TAGS = {"br", "p", "div", "li", "td", "th", "tr", "ul", "ol", "table", "h1", "h2", "h3",
                  "h4", "h5", "h6", "pre", "blockquote"}


def page_label(page: str) -> str:
    """``"text/swriter/guide/table_insert.html"`` -> ``"writer"``."""
    parts = page.split("/")
    folder = parts[1] if len(parts) > 2 and parts[0] == "text" else parts[0]
    return MODULE_LABELS.get(folder, folder)


# ---------------------------------------------------------------- HTML -> paragraphs

class _ParagraphParser(HTMLParser):
    """Collect the text of every element whose id starts with ``par_id`` (first occurrence wins)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: dict[str, tuple[str, bool]] = {}
        self._tag: str | None = None
        self._depth = 0
        self._id = ""
        self._code = False
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._tag is None:
            a = dict(attrs)
            pid = a.get("id") or ""
            if pid.startswith("par_id"):
                self._tag, self._depth, self._id, self._buf = tag, 1, pid, []
                self._code = "code" in (a.get("class") or "")
            return
        if tag == self._tag:
            self._depth += 1
        if tag in _BREAKING_TAGS:
            self._buf.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._tag is not None and tag in _BREAKING_TAGS:
            self._buf.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._tag is None:
            return
        if tag == self._tag:
            self._depth -= 1
            if self._depth == 0:
                text = _WS.sub(" ", "".join(self._buf)).strip()
                self.paragraphs.setdefault(self._id, (text, self._code))
                self._tag = None
                return
        if tag in _BREAKING_TAGS:
            self._buf.append(" ")

    def handle_data(self, data: str) -> None:
        if self._tag is not None:
            self._buf.append(data)


def extract_paragraphs(html: str) -> dict[str, tuple[str, bool]]:
    """``{par_id: (text, is_code)}`` for one help page, markup stripped, whitespace collapsed."""
    start = html.find('id="DisplayArea"')  # skip the navigation boilerplate
    p = _ParagraphParser()
    p.feed(html[start:] if start >= 0 else html)
    p.close()
    return p.paragraphs


def _parse_page(args: tuple[str, str]) -> tuple[str, dict[str, tuple[str, bool]]]:
    root, page = args
    raw = (Path(root) / page).read_bytes()
    return page, extract_paragraphs(raw.decode("utf-8", errors="replace"))


def _parse_tree(lang_root: Path, pages: Sequence[str], desc: str, workers: int,
                show_progress: bool | None) -> dict[str, dict[str, tuple[str, bool]]]:
    jobs = [(str(lang_root), p) for p in pages if (lang_root / p).is_file()]
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    if workers > 1:
        ctx = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
        with ctx.Pool(workers) as pool:
            for page, paras in progress(pool.imap_unordered(_parse_page, jobs, chunksize=32),
                                        total=len(jobs), desc=desc, show=show_progress, unit="page"):
                out[page] = paras
    else:
        for job in progress(jobs, total=len(jobs), desc=desc, show=show_progress, unit="page"):
            page, paras = _parse_page(job)
            out[page] = paras
    return out


def _list_pages(lang_root: Path) -> list[str]:
    return sorted(p.relative_to(lang_root).as_posix() for p in (lang_root / "text").rglob("*.html"))


# ---------------------------------------------------------------- getting the packages

def _extract_deb(deb: Path, dest: Path) -> None:
    """``dpkg -x`` when available; otherwise read the ar archive and its data.tar.* here."""
    if shutil.which("dpkg"):
        r = subprocess.run(["dpkg", "-x", str(deb), str(dest)], capture_output=True, text=True)
        if r.returncode != 0:
            raise DataError(f"{deb}: dpkg -x failed: {r.stderr.strip()}")
        return
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise DataError(f"{deb}: not a .deb file")
    pos = 8
    while pos + 60 <= len(data):
        name = data[pos:pos + 16].decode().strip().rstrip("/")
        size = int(data[pos + 48:pos + 58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            import io
            try:
                with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                    tar.extractall(dest, filter="data")
            except tarfile.TarError as e:
                raise DataError(f"{deb}: cannot unpack {name} without dpkg: {e}") from None
            return
        pos += 60 + size + (size % 2)
    raise DataError(f"{deb}: no data.tar member")


def _apt_download(packages: Sequence[str], dest: Path) -> list[Path]:
    if not shutil.which("apt-get"):
        raise LangAlignError("apt-get not found: download the Debian packages " + ", ".join(packages)
                             + " yourself and pass their folder with --from DIR")

    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", *packages], cwd=dest, capture_output=True,
                              text=True, timeout=600)

    r = attempt()
    if r.returncode != 0:
        # A fresh container has no package lists; fetch them once and retry.
        log.info("apt-get download failed (%s); running apt-get update", r.stderr.strip().splitlines()[-1:])
        u = subprocess.run(["apt-get", "update"], capture_output=True, text=True, timeout=600)
        r = attempt()
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or ["unknown error"])[-1]
            extra = "" if u.returncode == 0 else f" (apt-get update also failed: {u.stderr.strip()[-200:]})"
            raise LangAlignError(f"apt-get download {' '.join(packages)} failed: {msg}{extra}; "
                                 f"download the .deb files elsewhere and pass --from DIR")
    return sorted(dest.glob("*.deb"))


def _deb_version(deb: Path) -> str:
    parts = urllib.parse.unquote(deb.name).split("_")
    return parts[1] if len(parts) >= 3 else "unknown"


def _find_help_root(paths: Iterable[Path], help_dir: str) -> Path | None:
    for base in paths:
        for cand in (base / _HELP_SUBDIR, base / "help", base):
            if (cand / help_dir / "text").is_dir():
                return cand / help_dir
    return None


def _gather_sources(langs: Sequence[str], debs: Any, workdir: Path, pins: dict[str, str] | None = None,
                    deb_shas: dict[str, str] | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """Help folders per language (``en`` + ``langs``), from apt, .deb files or extracted trees.

    ``pins``: package -> version for apt to fetch; ``deb_shas`` receives each used .deb's sha256 by language.
    """
    needed = ["en", *langs]
    packages = {code: language(code).help_package for code in needed}
    versions: dict[str, str] = {}
    if debs is None:
        deb_files = _apt_download([f"{p}={pins[p]}" if pins and p in pins else p for p in packages.values()],
                                  workdir)
        trees: list[Path] = []
    else:
        deb_files, trees = local_debs(debs)
    roots: dict[str, Path] = {}
    for code, pkg in packages.items():
        root = _find_help_root(trees, language(code).help_dir)
        if root is not None:
            roots[code], versions[code] = root, "extracted tree"
            continue
        match = [d for d in deb_files if d.name.startswith(pkg + "_")]
        if not match:
            where = "apt-get download" if debs is None else str(debs)
            raise DataError(f"no {pkg} package or extracted help/{language(code).help_dir}/ folder "
                            f"found in {where}")
        dest = workdir / "x" / code
        dest.mkdir(parents=True, exist_ok=True)
        _extract_deb(match[-1], dest)
        root = _find_help_root([dest], language(code).help_dir)
        if root is None:
            raise DataError(f"{match[-1]}: no {_HELP_SUBDIR}/{language(code).help_dir}/text inside")
        roots[code], versions[code] = root, _deb_version(match[-1])
        if deb_shas is not None:
            deb_shas[code] = sha256_of(match[-1])
    return roots, versions


# ---------------------------------------------------------------- splitting

def split_pages(pages_by_label: dict[str, list[str]], seed: int,
                fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, str]:
    """``{page: split}``: per label, a seeded shuffle cut by ``fractions``, >= 1 page per split."""
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for label in sorted(pages_by_label):
        pages = sorted(pages_by_label[label])
        rng.shuffle(pages)
        n = len(pages)
        n_test = max(1, round(fractions[2] * n))
        n_dev = max(1, round(fractions[1] * n))
        for i, page in enumerate(pages):
            out[page] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return out


# ---------------------------------------------------------------- build

def _settings(seed: int, min_chars: int, min_words: int, min_label_pages: int, min_label_pairs: int,
              dedupe: str) -> dict[str, Any]:
    return {"builder_version": BUILDER_VERSION, "seed": seed, "min_chars": min_chars, "min_words": min_words,
            "min_label_pages": min_label_pages, "min_label_pairs": min_label_pairs, "dedupe": dedupe,
            "split": "by page, per label 80/10/10",
            "normalize": "NFC"}


def _existing_build(folder: Path, langs: Sequence[str], settings: dict[str, Any]) -> bool:
    try:
        m = read_manifest(folder)
    except DataError:
        return False
    if m.get("settings") != settings or not set(langs) <= set(m.get("languages", [])):
        return False
    return all((folder / e["path"]).is_file() for e in m.get("files", []))


def local_debs(debs: Any) -> tuple[list[Path], list[Path]]:
    """``(.deb files, extracted trees)`` named by ``debs``: a path or paths of .deb files or folders."""
    items = [Path(debs)] if isinstance(debs, (str, os.PathLike)) else [Path(d) for d in debs]
    for it in items:
        if not it.exists():
            raise DataError(f"{it}: no such file or folder")
    deb_files = [p for it in items for p in ([it] if it.is_file() else sorted(it.glob("*.deb")))]
    return deb_files, [it for it in items if it.is_dir()]


def build_libreoffice_help(langs: Sequence[str] | str = ("ko", "ja", "zh"), debs: Any = None, seed: int = 0, *,
                           home: str | os.PathLike | None = None, force: bool = False, min_chars: int = 3,
                           min_words: int = 2, min_label_pages: int = 10, min_label_pairs: int = 100,
                           dedupe: str = "corpus",
                           workers: int | None = None,
                           show_progress: bool | None = None, like: Any = None) -> Path:
    """Build (or reuse) the LibreOffice-help parallel corpus in ``<data home>/corpora/libreoffice-help``.

    ``debs``: None to fetch the packages with ``apt-get download``; or a folder
    (or list of paths) holding the ``libreoffice-help-*.deb`` files or trees
    already extracted with ``dpkg -x``. An existing build with the same settings
    that covers ``langs`` is returned as is unless ``force=True``.
    ``dedupe``: ``"corpus"`` (a pair is kept once in the whole corpus) or
    ``"page"`` (repeats dropped within a page only). ``like``: a manifest of this corpus (or its
    path or folder) to reproduce: its languages, settings and seed are used, apt fetches the
    package versions it records, and the build stops (writing nothing) unless every help page
    read hashes to what it records (``inputs``). Returns the corpus folder.
    """
    pins: dict[str, str] = {}
    recorded_inputs: Any = None
    if like is not None:
        m = read_like(like, NAME)
        st = m["settings"]
        if st.get("builder_version") != BUILDER_VERSION:
            raise DataError(f"{like}: made by builder version {st.get('builder_version')}, this langalign builds "
                            f"version {BUILDER_VERSION}: the same inputs would give another corpus")
        langs = list(m.get("languages") or [])
        seed, min_chars, min_words = st.get("seed", 0), st.get("min_chars", 3), st.get("min_words", 2)
        min_label_pages, min_label_pairs = st.get("min_label_pages", 10), st.get("min_label_pairs", 100)
        dedupe, force = st.get("dedupe", "corpus"), True
        recorded_inputs = m.get("inputs")
        for code, info in (recorded_inputs or {}).items():
            v = info.get("version") if isinstance(info, dict) else None
            if isinstance(v, str) and v != "extracted tree":
                pins[language(code).help_package] = v
    codes = [c for c in parse_langs(langs)]
    if "en" in codes:
        raise ValueError("English is the source side of every pair; pass only target languages (e.g. ko,ja,zh)")
    if dedupe not in ("corpus", "page"):
        raise ValueError(f"dedupe must be 'corpus' or 'page', got {dedupe!r}")
    settings = _settings(seed, min_chars, min_words, min_label_pages, min_label_pairs, dedupe)
    folder = corpus_dir(NAME, home)
    if not force and _existing_build(folder, codes, settings):
        log.info("%s already built with these settings at %s (pass force=True to rebuild)", NAME, folder)
        return folder
    workers = workers or min(4, os.cpu_count() or 1)
    deb_shas: dict[str, str] = {}
    with scratch_dir("langalign-lohelp-") as tmp:
        roots, versions = _gather_sources(codes, debs, Path(tmp), pins, deb_shas)
        en_pages = _list_pages(roots["en"])
        if not en_pages:
            raise DataError(f"{roots['en']}: no help pages under text/")
        inputs: dict[str, Any] = {}
        for code in ["en", *codes]:  # the pages read, per language, and the package they came from
            inputs[code] = {**digest_inputs((p, roots[code] / p) for p in en_pages if (roots[code] / p).is_file()),
                            "version": versions[code], **({"deb_sha256": deb_shas[code]} if code in deb_shas else {})}
        if like is not None:
            check_inputs(recorded_inputs, inputs, f"reproducing {like}")
        english = _parse_tree(roots["en"], en_pages, "parse en help", workers, show_progress)
        targets = {c: _parse_tree(roots[c], en_pages, f"parse {c} help", workers, show_progress) for c in codes}

    # Labels and page split come from the English side only, so they are the same for every language.
    pages_by_label: dict[str, list[str]] = defaultdict(list)
    for page in en_pages:
        if english.get(page):
            pages_by_label[page_label(page)].append(page)
    small = {lab for lab, pages in pages_by_label.items() if len(pages) < min_label_pages}
    assignment = split_pages({k: v for k, v in pages_by_label.items() if k not in small}, seed)

    rows_by_lang: dict[str, dict[str, list[tuple[str, str, str, str, str]]]] = {}
    drops_by_lang: dict[str, Counter[str]] = {}
    candidates: Counter[str] = Counter()
    for code in codes:
        rows: dict[str, list[tuple[str, str, str, str, str]]] = {s: [] for s in SPLITS}
        drops: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        for page in en_pages:
            tpage = targets[code].get(page, {})
            label = page_label(page)
            if dedupe == "page":
                seen = set()
            for pid, (en_text, is_code) in english.get(page, {}).items():
                if pid not in tpage:
                    continue
                candidates[code] += 1
                src = normalize_text(en_text)
                tgt = normalize_text(tpage[pid][0])
                if label in small:
                    drops[SMALL_LABEL] += 1
                elif is_code or tpage[pid][1]:
                    drops[CODE] += 1
                elif not src or not tgt:
                    drops[EMPTY] += 1
                elif len(src) < min_chars or len(src.split()) < min_words:
                    drops[TOO_SHORT] += 1
                elif src == tgt:
                    drops[IDENTICAL] += 1
                elif (src, tgt) in seen:
                    drops[DUPLICATE] += 1
                else:
                    seen.add((src, tgt))
                    rows[assignment[page]].append((page, pid, label, src, tgt))
        rows_by_lang[code], drops_by_lang[code] = rows, drops

    # A label needs enough translated training pairs in every language to be learnable
    # (LibreOffice Base pages are mostly untranslated); the label set is shared by all languages.
    labels = sorted(set(pages_by_label) - small)
    few = {lab for lab in labels
           if min(sum(1 for x in rows_by_lang[c]["train"] if x[2] == lab) for c in codes) < min_label_pairs}
    labels = [lab for lab in labels if lab not in few]

    counts: dict[str, Any] = {}
    dropped: dict[str, dict[str, int]] = {}
    with atomic_dir(folder) as out:
        for code in codes:
            rows, drops = rows_by_lang[code], drops_by_lang[code]
            counts[code] = {}
            for split in SPLITS:
                r = [x for x in rows[split] if x[2] not in few]
                if len(r) < len(rows[split]):
                    drops[FEW_PAIRS] += len(rows[split]) - len(r)
                write_table(out / f"en-{code}.{split}.tsv", {c: [x[i] for x in r] for i, c in enumerate(COLUMNS)})
                counts[code][split] = {"pairs": len(r), "pages": len({x[0] for x in r}),
                                       "labels": dict(sorted(Counter(x[2] for x in r).items()))}
            dropped[code] = {"paired_paragraphs": candidates[code], **dict(sorted(drops.items()))}
            kept = sum(c["pairs"] for c in counts[code].values())
            log.info("en-%s: %d paired paragraphs, kept %d, dropped %s", code, candidates[code], kept, dict(drops))
            for split in ("train", "test"):
                missing = sorted(set(labels) - set(counts[code][split]["labels"]))
                if missing:
                    log.warning("en-%s %s split has no pairs for label(s) %s", code, split, ", ".join(missing))
        write_manifest(out, name=NAME, licence=LICENCE,
                       source="Debian packages " + ", ".join(
                           f"{language(c).help_package}={versions[c]}" for c in ["en", *codes]),
                       counts=counts, settings=settings,
                       extra={"languages": codes, "dropped": dropped, "inputs": inputs,
                              "columns": list(COLUMNS),
                              "labels": labels,
                              "pages_per_split": dict(sorted(Counter(assignment.values()).items()))})
    return folder


def load_libreoffice_help(lang: str, split: str, home: str | os.PathLike | None = None) -> ParallelCorpus:
    """English -> ``lang`` pairs of one split; ``meta`` has per-pair ``label``, ``page`` and ``par_id``."""
    code = normalize_lang(lang)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = corpus_dir(NAME, home) / f"en-{code}.{split}.tsv"
    if not path.is_file():
        raise DataError(f"{path} not found: build it with `langalign data build libreoffice-help --langs {code}`")
    corpus = read_parallel(path, extra_columns=("label", "page", "par_id"), dedupe=False, drop_identical=False)
    assert corpus.meta is not None
    corpus.meta.update({"lang": code, "split": split})
    return corpus
