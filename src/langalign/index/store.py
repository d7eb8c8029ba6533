"""On-disk layout of a search index: a folder written atomically, never pickled.

::

    INDEX/config.json                        kind "search-index", encoder identity, segments, checksums
    INDEX/vectors-<random>.safetensors ...   unit-normalised float32 rows, one file per build/add
    INDEX/docs.sqlite                        docs(row INTEGER PRIMARY KEY, id TEXT UNIQUE, text TEXT)
    INDEX/csls.safetensors                   optional: reference queries for CSLS

The vectors are stored as safetensors and the FAISS index is rebuilt on load,
rather than written with ``faiss.write_index``: FAISS's own reader parses a binary
format in C++ and can crash the process on a damaged or hostile file instead of
raising, while safetensors is validated and already what every langalign
artefact uses. A flat index has nothing to train, so rebuilding it is one copy of
the vectors, and an index written without FAISS loads with it and vice versa.

Segment files are never modified once written, so ``add`` writes only the new rows
and hard-links the old segments into the new folder. A new segment gets a fresh
random name (never the name of a file already there: writing through a hard link
would change the old folder too) and its sha256 is computed from the bytes written.
Every file's sha256 is recorded and checked on load: any damage is one
:class:`ArtefactError` naming the file. File names are matched against fixed
patterns; no path written in a config is ever opened.

Concurrency. Writers of one index take an exclusive ``flock`` on its folder
(:func:`writer_lock`) and swap the new folder in atomically (``langalign._io.atomic_dir``).
A reader opens the folder once and reads every file relative to that open folder
(:class:`Snapshot`), so it sees one version whole; if a writer removes that version
while it is being read, the reader starts again on the new one. A writer killed
during a swap is undone by the next open (``langalign._io.sweep_leftovers``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .._io import sweep_leftovers
from ..artefacts import read_config_file
from ..errors import ArtefactError

KIND = "search-index"
CONFIG_NAME = "config.json"
DOCS_NAME = "docs.sqlite"
CSLS_NAME = "csls.safetensors"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# Reading the documents' table while loading (schema, counts) stops after this long: a database
# edited to make a query run forever is an error, not a hang.
DB_CHECK_SECONDS = 10.0
# How long a writer waits for another writer of the same index (``index add`` holds the lock only
# while it merges and writes, not while it encodes).
DEFAULT_LOCK_TIMEOUT = 120.0
_SEGMENT = re.compile(r"^vectors-[0-9a-f]{16}\.safetensors$")
_SCHEMA = "CREATE TABLE docs (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, text TEXT NOT NULL)"
# What sqlite_master of a docs.sqlite langalign wrote holds, exactly.
_MASTER = [("index", "sqlite_autoindex_docs_1", "docs", None), ("table", "docs", "docs", _SCHEMA)]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def new_segment_name(taken: set[str] | None = None) -> str:
    """A fresh random segment file name (16 hex digits), not among ``taken``."""
    while True:
        name = f"vectors-{secrets.token_hex(8)}.safetensors"
        if not taken or name not in taken:
            return name


# ---------------------------------------------------------------- reading one version

class Snapshot:
    """One version of an index folder: every file is read relative to the folder opened first.

    ``replaced()`` says whether the folder's path now leads to another version (a writer
    swapped one in), which turns a missing or changed file into "read again", not "damaged".
    """

    def __init__(self, folder: Path):
        self.folder = folder
        try:
            self.fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            if sweep_leftovers(folder, remove=False) and folder.is_dir():  # a writer killed mid-swap: undone
                self.fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            else:
                raise ArtefactError(f"no search index at {folder}: the folder does not exist") from None
        except NotADirectoryError:
            raise ArtefactError(f"{folder} is not a folder; a search index is a folder made by "
                                "'langalign index build'") from None
        except OSError as e:
            raise ArtefactError(f"cannot open the index folder {folder}: {e.strerror or e}") from None
        st = os.fstat(self.fd)
        self.identity = (st.st_dev, st.st_ino)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def replaced(self) -> bool:
        try:
            st = os.stat(self.folder)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self.identity

    def open(self, name: str) -> int:
        """An fd of the regular file ``name`` directly in this version (links are never followed)."""
        path = self.folder / name
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=self.fd)
        except FileNotFoundError:
            raise ArtefactError(f"{path} is missing; the index folder is incomplete") from None
        except OSError as e:
            try:
                target = os.readlink(name, dir_fd=self.fd)
            except OSError:
                raise ArtefactError(f"{path} cannot be read: {e.strerror or e}") from None
            where = ("outside the index folder" if "/" in target or target in (".", "..")
                     else "another name in the folder")
            raise ArtefactError(f"{path} is a link to {target}, {where}; an index folder holds only regular "
                                "files and links are never followed") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArtefactError(f"{path} is not a regular file")
        return fd

    def read_bytes(self, name: str, max_bytes: int | None = None) -> bytes:
        fd = self.open(name)
        try:
            size = os.fstat(fd).st_size
            if max_bytes is not None and size > max_bytes:
                raise ArtefactError(f"{self.folder / name} is {size} bytes, more than the {max_bytes >> 20} MB "
                                    "such a file may have")
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read()
        except OSError as e:
            raise ArtefactError(f"{self.folder / name} cannot be read: {e.strerror or e}") from None
        finally:
            os.close(fd)


def check_sha(path: Path, data: bytes, expected: Any) -> None:
    if not isinstance(expected, str) or hashlib.sha256(data).hexdigest() != expected:
        raise ArtefactError(f"{path} does not match the checksum recorded in {CONFIG_NAME}: the file was "
                            "changed or damaged after the index was written; rebuild the index")


# ---------------------------------------------------------------- writers

_held = threading.local()  # (dev, ino) of the index folders this thread holds the writer lock of


@contextmanager
def writer_lock(folder: str | os.PathLike, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive writer lock of the index folder ``folder`` (an existing folder).

    Waits up to ``timeout`` seconds for another writer (another process or thread), then
    raises one :class:`ArtefactError`. Re-entrant within a thread. The lock is an ``flock``
    on the folder itself, so the kernel drops it when a writer dies; after a writer swaps
    a new version in, a waiting writer finds the path leads elsewhere and locks the new one.
    """
    import fcntl

    folder = Path(folder)
    held: set = getattr(_held, "ids", None) or set()
    _held.ids = held
    deadline = time.monotonic() + max(0.0, float(timeout))
    delay = 0.01
    while True:
        snap = Snapshot(folder)  # raises if there is no folder
        if snap.identity in held:  # this thread holds it already
            snap.close()
            yield
            return
        try:
            fcntl.flock(snap.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            locked = False
        if locked and not snap.replaced():
            held.add(snap.identity)
            try:
                yield
            finally:
                held.discard(snap.identity)
                snap.close()
            return
        snap.close()  # drops the lock too, if we had it on a version that is gone
        if not locked and time.monotonic() >= deadline:
            raise ArtefactError(f"another process is writing the index {folder} (waited {timeout:g} s for it to "
                                "finish); try again once it has")
        if not locked:
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def write_tensor_file(folder: Path, name: str, arr: np.ndarray, key: str) -> str:
    """Write ``{key: arr}`` as a new file ``folder/name`` (never through an existing one); its sha256."""
    from safetensors.numpy import save

    data = save({key: np.ascontiguousarray(arr, dtype=np.float32)}, metadata={"format": "langalign", "kind": KIND})
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- config

def is_index_folder(folder: Path) -> bool:
    try:
        cfg = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("format") == "langalign" and cfg.get("kind") == KIND


def check_index_destination(folder: str | os.PathLike) -> Path:
    """Raise :class:`ArtefactError` unless an index may be written at ``folder`` (before any work).

    Allowed: a missing folder, an empty one, or a search index (replaced). Anything else (a file,
    a link, another artefact, a folder of the user's files, the current folder) is refused.
    """
    from .._io import refuse_current_folder

    p = Path(folder)
    if str(folder) in ("", "."):
        raise ArtefactError(f"refusing to write an index to {str(folder)!r}; give a new folder name")
    if p.is_symlink():
        raise ArtefactError(f"refusing to write an index to {p}: it is a symbolic link; give a new folder name")
    if p.exists():
        if not p.is_dir():
            raise ArtefactError(f"cannot save to {p}: it exists and is not a folder")
        if any(p.iterdir()) and not is_index_folder(p):
            raise ArtefactError(f"refusing to replace {p}: it is not empty and not a langalign search index; "
                                "nothing was touched. Give a new or empty folder")
    try:
        refuse_current_folder(p)
    except Exception as e:
        raise ArtefactError(str(e)) from None
    return p


def config_revision(data: bytes) -> str:
    """What a version of an index is known by: the sha256 of its config.json (every save changes it)."""
    return hashlib.sha256(data).hexdigest()


def read_config(snap: Snapshot) -> tuple[dict[str, Any], str]:
    """The checked config of this version and its revision."""
    path = snap.folder / CONFIG_NAME
    data = snap.read_bytes(CONFIG_NAME, MAX_CONFIG_BYTES)
    # The checks every langalign config gets (size, JSON, format, version, kind), then the index's own.
    cfg = read_config_file(None, path, KIND, what="an index config", max_bytes=MAX_CONFIG_BYTES, data=data)
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
    files = [s["file"] for s in segs]
    if len(set(files)) != len(files):
        raise ArtefactError(f"{path}: a segment file is listed twice")
    if not (_is_int(cfg.get("count")) and cfg["count"] == sum(s["rows"] for s in segs)):
        raise ArtefactError(f"{path}: count {cfg.get('count')!r} does not match the segments' rows")
    if not isinstance(cfg.get("docs_sha256"), str):
        raise ArtefactError(f"{path}: missing docs_sha256")
    nxt = cfg.get("next_auto_id", cfg["count"])
    if not (_is_int(nxt) and nxt >= 0):
        raise ArtefactError(f"{path}: malformed next_auto_id {nxt!r}")
    return cfg, config_revision(data)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------- vectors

def read_matrix(snap: Snapshot, name: str, sha: Any, key: str, dim: int, rows: int | None) -> np.ndarray:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = snap.folder / name
    data = snap.read_bytes(name)
    check_sha(path, data, sha)
    try:
        tensors = load(data)
    except (SafetensorError, OSError, ValueError, TypeError, MemoryError, OverflowError) as e:
        raise ArtefactError(f"{path} is corrupt or truncated: {e}") from None
    del data
    arr = tensors.get(key)
    if arr is None or set(tensors) != {key}:
        raise ArtefactError(f"{path} must hold exactly one tensor {key!r}, found {sorted(tensors)}")
    want = (rows if rows is not None else arr.shape[0], dim)
    if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape != want:
        raise ArtefactError(f"{path}: tensor {key!r} is {arr.dtype} {arr.shape}, expected float32 {want}")
    if not np.isfinite(arr).all():
        raise ArtefactError(f"{path}: tensor {key!r} contains NaN or inf")
    return arr


def place_segment(tmp: Path, arr: np.ndarray, source: Path | None, sha: str | None,
                  taken: set[str]) -> tuple[str, str]:
    """Put a segment into the folder being written: ``(file name, sha256)``.

    An unchanged segment is hard-linked (or copied) from the file it was loaded from, under its
    name, after checking that file still holds the recorded bytes; otherwise the rows are written
    to a new file under a fresh name.
    """
    if source is not None and sha is not None and source.name not in taken and _SEGMENT.match(source.name):
        try:
            st = os.lstat(source)
            if stat.S_ISREG(st.st_mode) and sha256_file(source) == sha:
                dst = tmp / source.name
                try:
                    os.link(source, dst)
                    return source.name, sha
                except OSError:  # another filesystem, or links not allowed: copy instead
                    import shutil

                    shutil.copyfile(source, dst)
                if sha256_file(dst) == sha:
                    return source.name, sha
                dst.unlink()
        except OSError:
            pass  # gone or unreadable: write from memory below
    name = new_segment_name(taken)
    return name, write_tensor_file(tmp, name, arr, "vectors")


# ---------------------------------------------------------------- documents

def new_docs_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(_SCHEMA)
    return db


@contextmanager
def _time_bound(db: sqlite3.Connection, seconds: float) -> Iterator[None]:
    """Interrupt any statement on ``db`` that runs past ``seconds`` (sqlite3 raises OperationalError)."""
    end = time.monotonic() + seconds
    db.set_progress_handler(lambda: 1 if time.monotonic() > end else 0, 1000)
    try:
        yield
    finally:
        db.set_progress_handler(None, 0)


def open_docs_db(snap: Snapshot, sha: Any, count: int) -> sqlite3.Connection:
    """Open ``docs.sqlite`` read-only after checking its checksum, schema, row count and numbering.

    The schema must be exactly the one langalign writes (one table, its UNIQUE id index,
    no views or triggers), and the checks stop after :data:`DB_CHECK_SECONDS`.
    """
    path = snap.folder / DOCS_NAME
    fd = snap.open(DOCS_NAME)
    try:
        h = hashlib.sha256()
        with os.fdopen(os.dup(fd), "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if not isinstance(sha, str) or h.hexdigest() != sha:
            raise ArtefactError(f"{path} does not match the checksum recorded in {CONFIG_NAME}: the file was "
                                "changed or damaged after the index was written; rebuild the index")
        # SQLite opens a path: the same file as our fd (Linux), so a concurrent swap cannot change it.
        proc = Path(f"/proc/self/fd/{fd}")
        target = str(proc) if proc.exists() else str(snap.folder / DOCS_NAME)
        uri = "file:" + urllib.parse.quote(target) + "?mode=ro&immutable=1"
        try:
            db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            with _time_bound(db, DB_CHECK_SECONDS):
                master = sorted(tuple(r) for r in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
                shape_ok = [(t, n, tb, " ".join(q.split()) if q else None) for t, n, tb, q in master] == _MASTER
                if shape_ok:
                    n, lo, hi = db.execute("SELECT COUNT(*), MIN(row), MAX(row) FROM docs").fetchone()
            if not shape_ok:
                db.close()
                raise ArtefactError(f"{path} does not hold exactly the docs table langalign writes (found "
                                    f"{', '.join(f'{t} {n}' for t, n, _, _ in master)[:200] or 'nothing'}); "
                                    "not a langalign index")
        except sqlite3.DatabaseError as e:
            if "interrupt" in str(e):
                raise ArtefactError(f"{path}: checking its documents took longer than {DB_CHECK_SECONDS:g} s; "
                                    "not a langalign index") from None
            raise ArtefactError(f"{path} is not a readable SQLite database: {e}") from None
    finally:
        os.close(fd)
    if n != count or (n and (lo, hi) != (0, n - 1)):
        db.close()
        raise ArtefactError(f"{path} holds {n} documents (rows {lo}..{hi}) but {CONFIG_NAME} records {count}")
    return db


def db_to_memory(src: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory copy of ``src`` (a loaded index's file is read-only; ``add`` works on a copy)."""
    dst = sqlite3.connect(":memory:", check_same_thread=False)
    src.backup(dst)
    return dst


def write_db(src: sqlite3.Connection, path: Path) -> str:
    if path.exists():
        raise FileExistsError(f"{path} exists")
    dst = sqlite3.connect(str(path))
    try:
        src.backup(dst)
    finally:
        dst.close()
    return sha256_file(path)
