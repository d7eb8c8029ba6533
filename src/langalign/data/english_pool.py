"""Build a large, varied pool of English sentences offline (for fitting English-only bridges).

Where the text comes from and how each file becomes paragraphs: :mod:`langalign.data.pool_sources`
(:data:`~langalign.data.pool_sources.SOURCES`). Tatoeba and every dev/test split of an evaluated task are
never read as sources; they are read only to *remove* any pool sentence that also occurs in them (counted as
``in an evaluation set``), and only the train pages of the ``libreoffice-help`` corpus (seed 0) feed the pool.

How sentences are split, tidied and filtered: :mod:`langalign.data.pool_filters` (each drop counted per
source in the manifest). Duplicates (case, punctuation and whitespace ignored) are dropped across sources, the
first source in :data:`~langalign.data.pool_sources.SOURCES` order keeping it. ``max_per_source`` then caps
each source (a seeded sample), and the pool is shuffled with ``seed``.

Output: ``<data home>/corpora/english-pool/sentences.txt`` (one sentence per
line), ``sources.txt`` (the source of each line) and ``manifest.json``.
"""
from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from .._io import atomic_dir, scratch_dir
from .._progress import progress
from ..errors import DataError
from .corpus import DUPLICATE
from .home import (MANIFEST, check_inputs, corpus_dir, digest_inputs, find_reference_data, read_like, read_manifest,
                   sha256_of, write_manifest)
from .libreoffice import _deb_version, _extract_deb, local_debs

from .pool_filters import (_DANGLING, CODE, DANGLING, clean_text, dedupe_key, detokenize_ptb, drop_reason,
                           split_sentences, tidy)
from .pool_sources import (CODE_MARK, EVALUATION_FILES, SOURCE_NAMES, SOURCES, Source, _apt_download_each,
                           _copyright_licences, _find_root, _read_items, _relative, _source_files, _tsv_column,
                           _within)

log = logging.getLogger("langalign.data")

NAME = "english-pool"
BUILDER_VERSION = 4  # bump when extraction/cleaning changes, so old builds are not reused
SENTENCES = "sentences.txt"
SOURCES_FILE = "sources.txt"

IN_EVAL = "in an evaluation set"
CAPPED = "over max_per_source"
HELD_OUT_FILES = "held-out files (dev/test of an evaluated corpus)"


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


__all__ = ["build_english_pool", "load_english_pool", "load_english_pool_table", "check_pool_folder"]
