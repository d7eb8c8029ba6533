"""Output paths, checked before a command does any work: a bad ``--output`` fails at once,
not after a long fit, and never costs the user a file (see :func:`langalign.artefacts.check_destination`)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ArtefactError, LangAlignError


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def artefact_output(path: str, kind: str, overwrite: bool, inputs: Iterable[str | None] = ()) -> None:
    """``path`` may receive a ``kind`` artefact, and neither is nor holds one of the command's ``inputs``."""
    from ..artefacts import check_destination

    check_destination(path, kind, overwrite)
    out = _real(path)
    for inp in inputs:
        if not inp:
            continue
        r = _real(inp)
        if r == out or out in r.parents:
            raise ArtefactError(f"refusing to save to {path}: saving would replace {inp}, which this command "
                                "reads or writes; choose another output folder")


def file_output(path: str | None, flag: str, suffixes: tuple[str, ...] = ()) -> None:
    """``path`` can be written as a file: a name, not a folder, in a folder (or a place one can be made)."""
    if path is None:
        return
    if not path.strip():
        raise LangAlignError(f"{flag} needs a file name")
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise LangAlignError(f"{flag} {path}: expected a file ending in {' or '.join(suffixes)}")
    if p.is_dir():
        raise LangAlignError(f"{flag} {path} is a folder; give a file name")
    _writable_parent(p, flag, path)


def folder_output(path: str | os.PathLike | None, flag: str) -> None:
    """``path`` is a folder to write files into: it may exist, but not as a file."""
    if path is None:
        return
    if not os.fspath(path).strip():
        raise LangAlignError(f"{flag} needs a folder name")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise LangAlignError(f"{flag} {path} exists and is not a folder")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise LangAlignError(f"{flag} {path}: cannot write in this folder (permission denied)")
        return
    _writable_parent(p, flag, os.fspath(path))


def _writable_parent(p: Path, flag: str, shown: str) -> None:
    # The nearest existing ancestor must be a folder (makedirs fails under a file).
    for parent in Path(os.path.abspath(p)).parents:
        if parent.exists():
            if not parent.is_dir():
                raise LangAlignError(f"{flag} {shown}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise LangAlignError(f"{flag} {shown}: cannot write in {parent} (permission denied)")
            return
