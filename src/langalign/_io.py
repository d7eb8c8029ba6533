"""Small filesystem helpers shared by every layer: atomic writes and JSON."""
from __future__ import annotations

import json
import os
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


@contextmanager
def atomic_dir(path: str | os.PathLike, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Build a directory under a temporary name, then swap it into place.

    A crash mid-write leaves only a hidden ``.name.tmp-*`` folder, never a
    half-written artefact under the real name. ``check(path)``, if given, runs
    again just before an existing ``path`` is replaced (what is there may have
    changed while the new folder was being written); raising keeps it untouched.
    The current folder (``.``, ``''``) and its parents are never replaced.
    """
    path = Path(os.path.abspath(path))  # '.' and '' get a real name and parent
    refuse_current_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if check is not None:
            check(path)
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
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
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def refuse_current_folder(path: str | os.PathLike) -> None:
    """Raise if ``path`` is the current folder or one of its parents (they cannot be swapped out)."""
    real, cwd = Path(os.path.realpath(path)), Path(os.path.realpath(Path.cwd()))
    if real == cwd or real in cwd.parents:
        what = "the current folder" if real == cwd else "a parent of the current folder"
        raise LangAlignError(f"refusing to replace {real}: it is {what}; give a new folder name instead")
