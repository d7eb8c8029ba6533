"""Small filesystem helpers shared by every layer: atomic writes and JSON."""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import LangAlignError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place on success.

    The temporary file lives in the same directory so the final ``os.replace`` is
    atomic: readers see either the old file or the complete new one, never half.
    A failed write (full disk, ``path`` is a folder, ...) is reported against
    ``path``, never against the hidden temporary name the user has not heard of.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _named(e, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        if e.errno is None or e.filename not in (None, str(tmp_path), tmp):
            raise  # not about our temporary file: leave it as it is
        raise _named(e, path) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _named(e: OSError, path: Path) -> OSError:
    """``e`` again, naming ``path`` (OSError(errno, ...) picks the matching subclass, e.g. IsADirectoryError)."""
    if e.errno is None:
        return e
    return OSError(e.errno, f"cannot write {path}: {e.strerror or e}")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


# Hidden work folders next to an output (``.NAME.tmp-xxxxxxxx``, ``.NAME.old-xxxxxxxx``, made by
# :func:`atomic_dir`) and scratch folders in the system temp folder (:func:`scratch_dir`) are held with
# an exclusive ``flock`` while their writer lives; the kernel drops it when the process ends, however it
# ends. A later run removes the ones nobody holds (and that are older than this many seconds: the
# moment between creating a folder and locking it must never look abandoned).
LEFTOVER_GRACE_S = 10.0
_MKDTEMP_SUFFIX = r"[a-z0-9_]{8}"  # tempfile.mkdtemp's random part


def _open_locked_dir(path: str | os.PathLike, wait: bool = True) -> int | None:
    """An fd of the folder ``path`` holding an exclusive flock on it; None if ``wait=False`` and it is held."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not _flock(fd, wait):
            os.close(fd)
            return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _flock(fd: int, wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no liveness locks, so every leftover looks alive
        return wait
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _old_enough(path: str | os.PathLike) -> bool:
    import time

    try:
        return time.time() - os.lstat(path).st_mtime >= LEFTOVER_GRACE_S
    except OSError:
        return False


def sweep_leftovers(path: str | os.PathLike, remove: bool = True) -> list[str]:
    """Clean up after writers of ``path`` that were killed: returns what was done (for tests and logs).

    An abandoned ``.NAME.old-*`` folder whose writer died between its two renames holds the previous
    ``NAME`` in ``x``: when ``NAME`` is missing it is put back (the interrupted write never happened).
    Any other abandoned ``.NAME.tmp-*`` / ``.NAME.old-*`` folder is removed (unless ``remove=False``:
    a reader only restores). A folder whose writer is alive (it holds the lock) is left alone.
    """
    path = Path(os.path.abspath(path))
    pattern = re.compile(r"^\." + re.escape(path.name) + r"\.(tmp|old)-" + _MKDTEMP_SUFFIX + "$")
    done: list[str] = []
    try:
        entries = [e for e in os.scandir(path.parent) if pattern.match(e.name)]
    except OSError:
        return done
    for e in sorted(entries, key=lambda e: e.name):
        try:
            if e.is_symlink() or not e.is_dir(follow_symlinks=False):
                continue
            fd = _open_locked_dir(e.path, wait=False)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        if fd is None:
            continue  # its writer is alive
        try:
            kept = Path(e.path) / "x"
            if ".old-" in e.name and (kept.exists() or kept.is_symlink()) and not os.path.lexists(path):
                os.rename(kept, path)  # the interrupted swap is undone: the previous version is back
                os.rmdir(e.path)
                done.append(f"restored {path} from {e.name}")
            elif remove and _old_enough(e.path):
                shutil.rmtree(e.path, ignore_errors=True)
                done.append(f"removed {e.name}")
        except OSError:
            pass
        finally:
            os.close(fd)
    return done


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Flush every file in ``folder`` (one level down too) and the folder itself to disk."""
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            _fsync_path(p)
        elif p.is_dir() and not p.is_symlink():
            _fsync_path(p, directory=True)
    _fsync_path(folder, directory=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    With it, ``b`` never stops existing: a reader opening it sees the old or the new folder.
    """
    import ctypes
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False  # a filesystem or kernel without it: the two-rename swap below
    raise OSError(err, os.strerror(err), str(b))


@contextmanager
def atomic_dir(path: str | os.PathLike, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Build a directory under a temporary name, then swap it into place.

    A crash mid-write leaves only a hidden ``.name.tmp-*`` folder, never a
    half-written artefact under the real name, and the next write to ``name``
    removes it (:func:`sweep_leftovers`). ``check(path)``, if given, runs
    again just before an existing ``path`` is replaced (what is there may have
    changed while the new folder was being written); raising keeps it untouched.
    The current folder (``.``, ``''``) and its parents are never replaced.
    Files are flushed to disk before the swap. On Linux the swap is one atomic
    exchange, so ``name`` exists at every moment; elsewhere the old folder is moved
    aside first, and a crash between the two renames is undone by the next run.
    """
    path = Path(os.path.abspath(path))  # '.' and '' get a real name and parent
    refuse_current_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    tmp_fd = _open_locked_dir(tmp)
    try:
        yield tmp
        _fsync_tree(tmp)
        if check is not None:
            check(path)
        if path.exists() or path.is_symlink():
            if _exchange(tmp, path):
                _fsync_path(path.parent, directory=True)
                shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous version
            else:
                _swap_in_two_steps(tmp, path)
        else:
            os.replace(tmp, path)
            _fsync_path(path.parent, directory=True)
    finally:
        if tmp_fd is not None:
            os.close(tmp_fd)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in_two_steps(tmp: Path, path: Path) -> None:
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    old_fd = _open_locked_dir(old)  # held: nobody "recovers" the old version while we swap
    try:
        try:
            os.replace(path, old / "x")  # move the old one aside first
        except OSError:
            old.rmdir()
            raise
        try:
            os.replace(tmp, path)
        except OSError:
            os.replace(old / "x", path)  # put the old one back: never lose it
            old.rmdir()
            raise
        _fsync_path(path.parent, directory=True)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if old_fd is not None:
            os.close(old_fd)


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder in the system temp folder, removed afterwards, like ``TemporaryDirectory``.

    It is locked while in use, and scratch folders with the same ``prefix`` left by killed runs
    (nobody holds their lock) are removed first, so interrupted runs do not pile up in ``/tmp``.
    """
    base = Path(tempfile.gettempdir())
    pattern = re.compile("^" + re.escape(prefix) + _MKDTEMP_SUFFIX + "$")
    try:
        stale = [e for e in os.scandir(base) if pattern.match(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        stale = []
    for e in stale:
        try:
            fd = _open_locked_dir(e.path, wait=False)
        except OSError:
            continue
        if fd is None:
            continue
        try:
            if _old_enough(e.path):
                shutil.rmtree(e.path, ignore_errors=True)
        finally:
            os.close(fd)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    fd = _open_locked_dir(tmp)
    try:
        yield tmp
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


def refuse_current_folder(path: str | os.PathLike) -> None:
    """Raise if ``path`` is the current folder or one of its parents (they cannot be swapped out)."""
    real, cwd = Path(os.path.realpath(path)), Path(os.path.realpath(Path.cwd()))
    if real == cwd or real in cwd.parents:
        what = "the current folder" if real == cwd else "a parent of the current folder"
        raise LangAlignError(f"refusing to replace {real}: it is {what}; give a new folder name instead")
