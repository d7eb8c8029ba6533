"""On-disk layout of a search index: a folder written atomically, never pickled.

::

    INDEX/config.json                        kind "search-index", encoder identity, segments, checksums
    INDEX/vectors-<hash>.safetensors ...     unit-normalised float32 rows, one file per build/add
    INDEX/docs.sqlite                        docs(row INTEGER PRIMARY KEY, id TEXT UNIQUE, text TEXT)
    INDEX/csls.safetensors                   optional: reference queries for CSLS

The vectors are stored as safetensors and the FAISS index is rebuilt on load,
rather than written with ``faiss.write_index``: FAISS's own reader parses a binary
format in C++ and can crash the process on a damaged or hostile file instead of
raising, while safetensors is validated and already what every langalign
artefact uses. A flat index has nothing to train, so rebuilding it is one copy of
the vectors, and an index written without FAISS loads with it and vice versa.

Segment files are content-addressed and never modified, so ``add`` writes only
the new rows and hard-links the old segments into the new folder. Every file's
sha256 is recorded and checked on load: any damage is one :class:`ArtefactError`
naming the file. File names are matched against fixed patterns; no path written
in a config is ever opened.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

from ..artefacts import read_config_file
from ..errors import ArtefactError

KIND = "search-index"
CONFIG_NAME = "config.json"
DOCS_NAME = "docs.sqlite"
CSLS_NAME = "csls.safetensors"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
_SEGMENT = re.compile(r"^vectors-[0-9a-f]{16}\.safetensors$")
_SCHEMA = "CREATE TABLE docs (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, text TEXT NOT NULL)"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def segment_name(vectors: np.ndarray) -> str:
    return f"vectors-{hashlib.sha256(np.ascontiguousarray(vectors).tobytes()).hexdigest()[:16]}.safetensors"


def inside(folder: Path, name: str) -> Path:
    """``folder/name`` resolved; it must be a regular file directly in ``folder`` (no link leading out)."""
    p = folder / name
    if not p.exists() and not p.is_symlink():
        raise ArtefactError(f"{p} is missing; the index folder is incomplete")
    try:
        real, root = p.resolve(strict=True), folder.resolve(strict=True)
    except (OSError, RuntimeError) as e:
        raise ArtefactError(f"{p} cannot be resolved: {e}") from None
    if real.parent != root:
        raise ArtefactError(f"{p} is a link to {real}, outside the index folder; refusing to read it")
    if not real.is_file():
        raise ArtefactError(f"{p} is not a regular file")
    return real


def check_sha(path: Path, real: Path, expected: Any) -> None:
    if not isinstance(expected, str) or sha256_file(real) != expected:
        raise ArtefactError(f"{path} does not match the checksum recorded in {CONFIG_NAME}: the file was "
                            "changed or damaged after the index was written; rebuild the index")


# ---------------------------------------------------------------- config

def is_index_folder(folder: Path) -> bool:
    try:
        cfg = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("format") == "langalign" and cfg.get("kind") == KIND


def read_config(folder: Path) -> dict[str, Any]:
    if not folder.exists():
        raise ArtefactError(f"no search index at {folder}: the folder does not exist")
    if not folder.is_dir():
        raise ArtefactError(f"{folder} is not a folder; a search index is a folder made by 'langalign index build'")
    path = folder / CONFIG_NAME
    # The checks every langalign config gets (size, JSON, format, version, kind), then the index's own.
    cfg = read_config_file(inside(folder, CONFIG_NAME), path, KIND, what="an index config",
                           max_bytes=MAX_CONFIG_BYTES)
    enc = cfg.get("encoder")
    if not (isinstance(enc, dict) and isinstance(enc.get("name"), str) and _is_int(enc.get("dim"))
            and enc["dim"] > 0):
        raise ArtefactError(f"{path}: malformed encoder entry {enc!r}")
    segs = cfg.get("segments")
    if not isinstance(segs, list):
        raise ArtefactError(f"{path}: malformed segments entry")
    for s in segs:
        if not (isinstance(s, dict) and isinstance(s.get("file"), str) and _SEGMENT.match(s["file"])
                and _is_int(s.get("rows")) and s["rows"] > 0 and isinstance(s.get("sha256"), str)):
            raise ArtefactError(f"{path}: malformed segment entry {s!r}")
    if not (_is_int(cfg.get("count")) and cfg["count"] == sum(s["rows"] for s in segs)):
        raise ArtefactError(f"{path}: count {cfg.get('count')!r} does not match the segments' rows")
    if not isinstance(cfg.get("docs_sha256"), str):
        raise ArtefactError(f"{path}: missing docs_sha256")
    return cfg


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------- vectors

def read_matrix(folder: Path, name: str, sha: Any, key: str, dim: int, rows: int | None) -> np.ndarray:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = folder / name
    real = inside(folder, name)
    check_sha(path, real, sha)
    try:
        tensors = load_file(str(real))
    except (SafetensorError, OSError, ValueError, TypeError, MemoryError, OverflowError) as e:
        raise ArtefactError(f"{path} is corrupt or truncated: {e}") from None
    arr = tensors.get(key)
    if arr is None or set(tensors) != {key}:
        raise ArtefactError(f"{path} must hold exactly one tensor {key!r}, found {sorted(tensors)}")
    want = (rows if rows is not None else arr.shape[0], dim)
    if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape != want:
        raise ArtefactError(f"{path}: tensor {key!r} is {arr.dtype} {arr.shape}, expected float32 {want}")
    if not np.isfinite(arr).all():
        raise ArtefactError(f"{path}: tensor {key!r} contains NaN or inf")
    return arr


def write_matrix(path: Path, arr: np.ndarray, key: str) -> str:
    from safetensors.numpy import save_file

    save_file({key: np.ascontiguousarray(arr, dtype=np.float32)}, str(path), metadata={"format": "langalign",
                                                                                       "kind": KIND})
    return sha256_file(path)


def place_segment(dst: Path, arr: np.ndarray, source: Path | None, sha: str | None) -> str:
    """Put a segment at ``dst``: hard-link (or copy) the unchanged file it was loaded from, else write it."""
    if source is not None and sha is not None:
        try:
            if source.is_file() and sha256_file(source) == sha:
                try:
                    os.link(source, dst)
                except OSError:  # another filesystem, or links not allowed: copy instead
                    shutil.copyfile(source, dst)
                return sha
        except OSError:
            pass  # unreadable source: write from memory below
    return write_matrix(dst, arr, "vectors")


# ---------------------------------------------------------------- documents

def new_docs_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(_SCHEMA)
    return db


def open_docs_db(folder: Path, sha: Any, count: int) -> sqlite3.Connection:
    """Open ``docs.sqlite`` read-only after checking its checksum, row count and row numbering."""
    path = folder / DOCS_NAME
    real = inside(folder, DOCS_NAME)
    check_sha(path, real, sha)
    uri = "file:" + urllib.parse.quote(str(real)) + "?mode=ro&immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        cols = [r[1] for r in db.execute("PRAGMA table_info(docs)")]
        if cols != ["row", "id", "text"]:
            raise ArtefactError(f"{path} has no docs(row, id, text) table; not a langalign index")
        n, lo, hi = db.execute("SELECT COUNT(*), MIN(row), MAX(row) FROM docs").fetchone()
    except sqlite3.DatabaseError as e:
        raise ArtefactError(f"{path} is not a readable SQLite database: {e}") from None
    if n != count or (n and (lo, hi) != (0, n - 1)):
        raise ArtefactError(f"{path} holds {n} documents (rows {lo}..{hi}) but {CONFIG_NAME} records {count}")
    return db


def db_to_memory(src: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory copy of ``src`` (a loaded index's file is read-only; ``add`` works on a copy)."""
    dst = sqlite3.connect(":memory:", check_same_thread=False)
    src.backup(dst)
    return dst


def write_db(src: sqlite3.Connection, path: Path) -> str:
    dst = sqlite3.connect(str(path))
    try:
        src.backup(dst)
    finally:
        dst.close()
    return sha256_file(path)
