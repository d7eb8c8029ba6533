"""Public benchmark sets: SIB-200 (topic classification, parallel by ``index_id``) and Tatoeba bitext.

``import_*`` copy a local copy into the data home (Unicode-normalised, with a
manifest and checksums); ``load_*`` read from the data home first and fall
back to the shared reference data (:func:`~langalign.data.home.find_reference_data`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .._io import atomic_dir, scratch_dir
from ..errors import DataError, LangAlignError
from .corpus import LabelledDataset, ParallelCorpus, ReadSummary
from .home import corpus_dir, find_reference_data, write_manifest
from .langcodes import language, normalize_lang, sib200_code, tatoeba_code
from .readers import PairCleaner, read_labelled, write_table
from .records import decode_utf8, normalize_text, split_lines

log = logging.getLogger("langalign.data")

SIB200_SPLITS = ("train", "dev", "test")
SIB200_COLUMNS = ("index_id", "category", "text")
SIB200_SIZES = {"train": 701, "dev": 99, "test": 204}
SIB200_LICENCE = "annotations Apache-2.0; FLORES-200 text CC BY-SA 4.0"
TATOEBA_LICENCE = "CC BY 2.0 FR"
SIB200_URLS = (
    # Hugging Face hub copy: one folder per language, the same TSV layout.
    "https://huggingface.co/datasets/Davlan/sib200/resolve/main/data/{code}/{split}.tsv",
    "https://raw.githubusercontent.com/dadelani/sib-200/main/data/annotated/{code}/{split}.tsv",
)
_SIB_FOLDER = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_TATOEBA_FILE = re.compile(r"^tatoeba\.([a-z]{3})-eng\.([a-z]{3})$")


# ---------------------------------------------------------------- SIB-200

def _sib200_source_root(src_dir: Path) -> Path:
    """Accept the language folders directly, or the upstream repo / HF layouts around them."""
    for cand in (src_dir, src_dir / "data" / "annotated", src_dir / "data", src_dir / "sib200"):
        if cand.is_dir() and any(_SIB_FOLDER.match(p.name) and (p / "test.tsv").is_file()
                                 for p in cand.iterdir()):
            return cand
    raise DataError(f"{src_dir}: no SIB-200 language folders found (expected e.g. "
                    f"{src_dir}/kor_Hang/train.tsv with columns {', '.join(SIB200_COLUMNS)})")


def import_sib200(src_dir: str | os.PathLike, langs: Sequence[str] | None = None,
                  home: str | os.PathLike | None = None) -> Path:
    """Copy SIB-200 from ``src_dir`` (``<lang_code>/{train,dev,test}.tsv``) into the data home.

    Every file is validated and rewritten Unicode-normalised; ``langs`` (any
    spelling, or SIB-200 folder names) restricts which languages are copied.
    An import adds languages to the corpus or updates them; languages imported
    before and not named now are kept (with their counts in the manifest).
    Returns the corpus folder.
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder")
    root = _sib200_source_root(src)
    folders = sorted(p.name for p in root.iterdir() if _SIB_FOLDER.match(p.name) and p.is_dir())
    if langs:
        wanted = [l if _SIB_FOLDER.match(l) else sib200_code(l) for l in langs]
        missing = [w for w in wanted if w not in folders]
        if missing:
            raise DataError(f"{root}: no SIB-200 folder for {', '.join(missing)}")
        folders = wanted
    counts: dict[str, dict[str, int]] = {}
    ids: dict[str, list[str]] = {}
    target = corpus_dir("sib200", home)
    with atomic_dir(target) as out:
        kept = [n for n in _keep_entries(target, out, set(folders)) if _SIB_FOLDER.match(n) and (out / n).is_dir()]
        for code in kept:
            counts[code] = {split: len(read_labelled(out / code / f"{split}.tsv", text="text", label="category"))
                            for split in SIB200_SPLITS if (out / code / f"{split}.tsv").is_file()}
        for code in folders:
            counts[code] = {}
            for split in SIB200_SPLITS:
                path = root / code / f"{split}.tsv"
                ds = read_labelled(path, text="text", label="category", extra_columns=("index_id",))
                assert ds.meta is not None  # holds the extra column
                if ds.summary.total_dropped:
                    raise DataError(f"{path}: {ds.summary}; SIB-200 files should have no empty rows")
                write_table(out / code / f"{split}.tsv", {"index_id": ds.meta["index_id"],
                                                           "category": ds.labels, "text": ds.texts})
                counts[code][split] = len(ds)
                key = split
                if key in ids and sorted(ids[key]) != sorted(ds.meta["index_id"]):
                    log.warning("%s: index_id set differs from the other languages' %s split", path, split)
                ids.setdefault(key, ds.meta["index_id"])
            labels = root / code / "labels.txt"
            if labels.is_file():
                shutil.copyfile(labels, out / code / "labels.txt")
        languages = sorted(set(folders) | set(kept))
        sources = {**_old_sources(target, kept), **{code: str(root) for code in folders}}
        write_manifest(out, name="sib200", source=f"imported from {root}", licence=SIB200_LICENCE,
                       counts={code: counts[code] for code in languages},
                       extra={"languages": languages, "sources": {code: sources[code] for code in languages}})
    log.info("imported SIB-200 (%d languages) from %s; %d kept from before", len(folders), root, len(kept))
    return corpus_dir("sib200", home)


def _keep_entries(corpus: Path, out: Path, replaced: set[str]) -> list[str]:
    """Copy everything of an earlier import that this one does not replace into ``out``.

    Returns the names carried over; callers count their rows again, so the manifest
    stays true even where the old one is lost or stale.
    """
    from .home import MANIFEST

    if not corpus.is_dir():
        return []
    kept = []
    for entry in sorted(corpus.iterdir()):
        if entry.name in replaced or entry.name == MANIFEST:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, out / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, out / entry.name, follow_symlinks=False)
        kept.append(entry.name)
    return kept


def _old_sources(corpus: Path, codes: list[str]) -> dict[str, str]:
    """Where each kept language came from, as the earlier manifest says."""
    from .home import read_manifest

    try:
        m = read_manifest(corpus)
    except DataError:
        m = {}
    sources, source = m.get("sources"), m.get("source")
    old = sources if isinstance(sources, dict) else {}
    fallback = source if isinstance(source, str) else "an earlier import"
    return {code: str(old.get(code, fallback.removeprefix("imported from "))) for code in codes}


def _sib200_file(code: str, split: str, root: str | os.PathLike | None) -> Path:
    if split not in SIB200_SPLITS:
        raise ValueError(f"unknown SIB-200 split {split!r}; expected one of {', '.join(SIB200_SPLITS)}")
    folder = code if _SIB_FOLDER.match(code) else sib200_code(code)
    if root is not None:
        candidates = [Path(root)]
    else:
        candidates = [corpus_dir("sib200")]
        with contextlib.suppress(DataError):
            candidates.append(find_reference_data() / "sib200")
    for c in candidates:
        p = c / folder / f"{split}.tsv"
        if p.is_file():
            return p
    tried = ", ".join(str(c / folder) for c in candidates)
    raise DataError(f"SIB-200 {folder}/{split}.tsv not found (looked in {tried}); run "
                    f"`langalign data import sib200 DIR` or `langalign data download sib200`")


def load_sib200(lang: str, split: str, root: str | os.PathLike | None = None) -> LabelledDataset:
    """SIB-200 topic classification for one language and split (labels: the 7 categories).

    ``meta["index_id"]`` holds each sentence's FLORES id (the same id is the
    same sentence in every language).
    """
    path = _sib200_file(lang, split, root)
    ds = read_labelled(path, text="text", label="category", extra_columns=("index_id",))
    assert ds.meta is not None
    ds.meta.update({"lang": normalize_lang(lang) if not _SIB_FOLDER.match(lang) else lang, "split": split})
    return ds


def load_sib200_parallel(src_lang: str, tgt_lang: str, split: str, root: str | os.PathLike | None = None,
                         dedupe: bool = True, drop_identical: bool = True) -> ParallelCorpus:
    """SIB-200 sentences of two languages joined on ``index_id``.

    Pairs go through the same cleaning as :func:`read_parallel`: identical or
    duplicate pairs are dropped *and counted* in ``summary`` (or kept and
    flagged with ``dedupe=False`` / ``drop_identical=False``). ``meta`` holds
    per-pair ``index_id`` and ``label`` lists.
    """
    a, b = load_sib200(src_lang, split, root), load_sib200(tgt_lang, split, root)
    assert a.meta is not None and b.meta is not None
    b_by_id = {i: (t, lab) for i, t, lab in zip(b.meta["index_id"], b.texts, b.labels, strict=True)}
    missing = [i for i in a.meta["index_id"] if i not in b_by_id]
    extra = set(b_by_id) - set(a.meta["index_id"])
    if missing or extra:
        raise DataError(f"SIB-200 {split}: {src_lang} and {tgt_lang} do not share the same index_ids "
                        f"({len(missing)} only in {src_lang}, {len(extra)} only in {tgt_lang})")
    summary = ReadSummary(origin=f"SIB-200 {split} {src_lang}-{tgt_lang}")
    cleaner = PairCleaner(summary, normalize="NFC", dedupe=dedupe, drop_identical=drop_identical)
    src, tgt, ids, labels = [], [], [], []
    for i, text, lab in zip(a.meta["index_id"], a.texts, a.labels, strict=True):
        other, other_lab = b_by_id[i]
        if other_lab != lab:
            raise DataError(f"SIB-200 {split}: index_id {i} has label {lab!r} in {src_lang} "
                            f"but {other_lab!r} in {tgt_lang}")
        summary.rows_read += 1
        pair = cleaner.clean(f"index_id {i}", text, other)
        if pair is None:
            continue
        src.append(pair[0])
        tgt.append(pair[1])
        ids.append(i)
        labels.append(lab)
    log.info("%s", summary)
    return ParallelCorpus(src, tgt, {"index_id": ids, "label": labels, "split": split}, summary)


def download_sib200(langs: Sequence[str] = ("en", "ko", "ja", "zh"), home: str | os.PathLike | None = None,
                    timeout: float = 15.0) -> Path:
    """Download SIB-200 for ``langs`` (Hugging Face hub, then GitHub) and import it.

    Offline, fails with a LangAlignError that says to use ``langalign data import sib200 DIR``.
    """
    codes = [sib200_code(l) for l in langs]
    errors: list[str] = []
    with scratch_dir("langalign-sib200-") as tmp:
        for template in SIB200_URLS:
            try:
                for code in codes:
                    for split in SIB200_SPLITS:
                        url = template.format(code=code, split=split)
                        dest = Path(tmp) / code / f"{split}.tsv"
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URLs)
                            dest.write_bytes(resp.read())
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors.append(f"{template.split('/')[2]}: {getattr(e, 'reason', e)}")
                shutil.rmtree(tmp, ignore_errors=True)
                Path(tmp).mkdir(exist_ok=True)
                continue
            return import_sib200(tmp, langs=codes, home=home)
    raise LangAlignError("could not download SIB-200 (" + "; ".join(errors) + "). Without network access, "
                         "get the files (github.com/dadelani/sib-200 or huggingface.co/datasets/Davlan/sib200, "
                         "folders like kor_Hang/{train,dev,test}.tsv) and run `langalign data import sib200 DIR`")


# ---------------------------------------------------------------- Tatoeba

def _read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    return split_lines(decode_utf8(data, path))


def _tatoeba_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{xxx: (eng file, xxx file)}`` for every complete tatoeba.xxx-eng.* pair in ``folder``."""
    found: dict[str, dict[str, Path]] = {}
    for p in folder.iterdir():
        m = _TATOEBA_FILE.match(p.name)
        if m and m.group(2) in (m.group(1), "eng"):
            found.setdefault(m.group(1), {})[m.group(2)] = p
    return {k: (v["eng"], v[k]) for k, v in sorted(found.items()) if "eng" in v and k in v}


def import_tatoeba(src_dir: str | os.PathLike, home: str | os.PathLike | None = None) -> Path:
    """Copy Tatoeba bitext files (``tatoeba.<xxx>-eng.{xxx,eng}``) into the data home, normalised."""
    src = Path(src_dir)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder")
    folder = src / "tatoeba" if (src / "tatoeba").is_dir() and not _tatoeba_pairs(src) else src
    pairs = _tatoeba_pairs(folder)
    if not pairs:
        raise DataError(f"{folder}: no Tatoeba files found (expected pairs like tatoeba.kor-eng.kor "
                        f"and tatoeba.kor-eng.eng)")
    counts: dict[str, int] = {}
    target = corpus_dir("tatoeba", home)
    with atomic_dir(target) as out:
        # As for SIB-200: pairs imported before and not in this folder are kept.
        new_names = {p.name for pair in pairs.values() for p in pair}
        _keep_entries(target, out, new_names)
        for code, (e_path, _) in _tatoeba_pairs(out).items():
            counts[code] = len(_read_lines(e_path))
        for code, (eng, other) in pairs.items():
            e_lines, o_lines = _read_lines(eng), _read_lines(other)
            if len(e_lines) != len(o_lines):
                raise DataError(f"{other} has {len(o_lines)} lines but {eng} has {len(e_lines)}; "
                                f"Tatoeba files must be line-aligned")
            for p, lines in ((eng, e_lines), (other, o_lines)):
                norm = [normalize_text(l) for l in lines]
                for n, l in enumerate(norm, 1):
                    if "\n" in l or "\r" in l:
                        raise DataError(f"{p}: line {n}: unexpected line break")
                (out / p.name).write_text("".join(l + "\n" for l in norm), encoding="utf-8")
            counts[code] = len(e_lines)
        write_manifest(out, name="tatoeba", source=f"imported from {folder}", licence=TATOEBA_LICENCE,
                       counts=dict(sorted(counts.items())), extra={"languages": sorted(counts)})
    return corpus_dir("tatoeba", home)


def load_tatoeba(lang: str, root: str | os.PathLike | None = None, dedupe: bool = False,
                 drop_identical: bool = False) -> ParallelCorpus:
    """Tatoeba test bitext for ``lang`` with English as the *source* side.

    By default nothing but empty lines is dropped, so the 1,000 pairs match the
    published setup (MTEB, LASER); identical or duplicate pairs are flagged in
    ``summary``. Pass ``dedupe=True`` / ``drop_identical=True`` to drop them.
    """
    code = tatoeba_code(lang)
    if normalize_lang(lang) == "en":
        raise ValueError("Tatoeba pairs each language with English; pass the other language (ko, ja, zh, ...)")
    if root is not None:
        candidates = [Path(root)]
    else:
        candidates = [corpus_dir("tatoeba")]
        with contextlib.suppress(DataError):
            candidates.append(find_reference_data() / "tatoeba")
    for folder in candidates:
        eng, other = folder / f"tatoeba.{code}-eng.eng", folder / f"tatoeba.{code}-eng.{code}"
        if eng.is_file() and other.is_file():
            break
    else:
        tried = ", ".join(map(str, candidates))
        raise DataError(f"Tatoeba {code}-eng files not found (looked in {tried}); "
                        f"run `langalign data import tatoeba DIR`")
    e_lines, o_lines = _read_lines(eng), _read_lines(other)
    if len(e_lines) != len(o_lines):
        raise DataError(f"{other} has {len(o_lines)} lines but {eng} has {len(e_lines)}")
    summary = ReadSummary(origin=f"{folder}/tatoeba.{code}-eng")
    cleaner = PairCleaner(summary, dedupe=dedupe, drop_identical=drop_identical)
    src, tgt, line_nos = [], [], []
    for n, (e, o) in enumerate(zip(e_lines, o_lines, strict=True), 1):
        summary.rows_read += 1
        pair = cleaner.clean(f"line {n}", e, o)
        if pair is not None:
            src.append(pair[0])
            tgt.append(pair[1])
            line_nos.append(n)
    log.info("%s", summary)
    return ParallelCorpus(src, tgt, {"line": line_nos, "lang": language(lang).code}, summary)
