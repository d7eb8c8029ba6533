"""Where data lives: the user's data home (built/imported corpora) and the shared reference data.

Layout of the data home::

    <data home>/corpora/<name>/manifest.json   name, source, licence, created, counts,
                                              files (path, bytes, sha256), settings
    <data home>/corpora/<name>/...            the corpus files

Corpora are written into a temporary folder and swapped into place
(:func:`langalign._io.atomic_dir`), so a crash never leaves half a corpus.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._io import write_json_atomic
from ..errors import DataError

MANIFEST = "manifest.json"
ENV_HOME = "LANGALIGN_DATA_HOME"
ENV_REFERENCE = "LANGALIGN_REFERENCE_DATA"


def data_home() -> Path:
    """``$LANGALIGN_DATA_HOME`` if set, else the per-user cache folder for langalign."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("langalign"))


def corpora_dir(home: str | os.PathLike | None = None) -> Path:
    return (Path(home) if home is not None else data_home()) / "corpora"


def corpus_dir(name: str, home: str | os.PathLike | None = None) -> Path:
    return corpora_dir(home) / name


def find_reference_data() -> Path:
    """The shared reference data folder (SIB-200, Tatoeba, NLI/sentiment/STS test sets).

    ``$LANGALIGN_REFERENCE_DATA`` if set; else the first existing of
    ``<repo root>/../shared/data`` and ``<cwd>/../shared/data``.
    """
    env = os.environ.get(ENV_REFERENCE)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise DataError(f"{ENV_REFERENCE}={env} is not a folder")
        return p
    repo_root = Path(__file__).resolve().parents[3]  # src/langalign/data/home.py -> repo root
    candidates = [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(f"reference data not found (tried {tried}); set {ENV_REFERENCE} to the folder "
                    f"that holds sib200/, tatoeba/, nli/, ...")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_entries(folder: Path, files: Iterable[Path]) -> list[dict[str, Any]]:
    """Manifest entries (relative path, size, sha256) for files inside ``folder``."""
    out = []
    for f in sorted(files):
        out.append({"path": f.relative_to(folder).as_posix(), "bytes": f.stat().st_size,
                    "sha256": sha256_file(f)})
    return out


def write_manifest(folder: str | os.PathLike, *, name: str, source: str, licence: str,
                   counts: dict[str, Any], settings: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``manifest.json`` listing every other file in ``folder`` with its checksum."""
    folder = Path(folder)
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST]
    manifest: dict[str, Any] = {
        "name": name,
        "source": source,
        "licence": licence,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "counts": counts,
        "settings": settings or {},
        **(extra or {}),
        "files": file_entries(folder, files),
    }
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"{path}: no manifest; the corpus folder is incomplete - rebuild or re-import it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: unreadable manifest: {e}") from None
    if not isinstance(manifest, dict) or "name" not in manifest:
        raise DataError(f"{path}: not a langalign corpus manifest")
    return manifest


def verify_corpus(folder: str | os.PathLike) -> list[str]:
    """Files whose size or checksum no longer match the manifest (empty list: all good)."""
    folder = Path(folder)
    problems = []
    for entry in read_manifest(folder).get("files", []):
        p = folder / entry["path"]
        if not p.is_file():
            problems.append(f"{entry['path']}: missing")
        elif p.stat().st_size != entry.get("bytes") or sha256_file(p) != entry.get("sha256"):
            problems.append(f"{entry['path']}: changed since it was written")
    return problems


def list_corpora(home: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Manifests of the corpora in the data home (folders without one are reported as broken)."""
    root = corpora_dir(home)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue  # hidden folders are atomic_dir temporaries
        try:
            m = read_manifest(d)
        except DataError as e:
            m = {"name": d.name, "error": str(e)}
        m["path"] = str(d)
        out.append(m)
    return out


# ---------------------------------------------------------------- recorded inputs (reproducible builds)

def digest_inputs(files: Iterable[tuple[str, Path]]) -> dict[str, Any]:
    """``{"files": n, "sha256": ...}``: one hash over (name, content) of every input file a build read.

    Two builds with equal digests read the same bytes, so (with the same settings and builder
    version) they write the same corpus.
    """
    h = hashlib.sha256()
    n = 0
    for name, path in sorted(files, key=lambda x: x[0]):
        h.update(name.encode("utf-8", "surrogateescape") + b"\0" + sha256_of(path).encode() + b"\n")
        n += 1
    return {"files": n, "sha256": h.hexdigest()}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_like(like: Any, name: str) -> dict[str, Any]:
    """The manifest a build is asked to reproduce: a manifest dict, its path, or its corpus folder."""
    if isinstance(like, dict):
        m = like
    else:
        p = Path(like)
        if p.is_dir():
            m = read_manifest(p)
        else:
            try:
                m = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise DataError(f"{p}: cannot read the manifest to reproduce: {e}") from None
    if not isinstance(m, dict) or m.get("name") != name:
        raise DataError(f"{like}: not a {name} manifest (name {m.get('name') if isinstance(m, dict) else None!r})")
    if not isinstance(m.get("settings"), dict):
        raise DataError(f"{like}: the manifest records no settings")
    return m


def check_inputs(recorded: Any, now: dict[str, Any], what: str) -> None:
    """Raise :class:`DataError` unless the inputs read now are the recorded ones (per source/language)."""
    if not isinstance(recorded, dict):
        raise DataError(f"{what}: the manifest records no inputs (written by an older langalign), so the build "
                        "cannot be checked against it; rebuild without it")
    diff = []
    for key in sorted(set(recorded) | set(now)):
        a, b = recorded.get(key) or {}, now.get(key) or {}
        if not isinstance(a, dict) or a.get("sha256") != b.get("sha256"):
            def show(d: Any) -> str:
                if not isinstance(d, dict) or not d:
                    return "none"
                return f"{d.get('version', '')} {str(d.get('sha256', ''))[:12]}".strip()
            diff.append(f"{key} (recorded {show(a)}, read now {show(b)})")
    if diff:
        raise DataError(f"{what}: the inputs differ from the recorded ones: {'; '.join(diff)}. Nothing was written; "
                        "pass the recorded packages (.deb files or extracted trees) with --debs")
