"""The output folder: where a tuned encoder may be written (a user's files are never replaced)."""
from __future__ import annotations

import os
from pathlib import Path


from ..encoders import (TUNING_METADATA, read_tuning_metadata)
from ..errors import ArtefactError

from .base import KIND


# -- output folders ----------------------------------------------------------------------
def check_tuned_destination(folder: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise :class:`ArtefactError` unless a tuned encoder may be saved at ``folder``.

    The same rule as :func:`langalign.artefacts.check_destination` (a user's files are never
    deleted), for a folder of many files: a new or empty folder is used; a tuned encoder that
    langalign wrote (its ``langalign_tuning.json`` lists every file, and the folder holds no
    other) is replaced; anything else is refused and left untouched.
    """
    from ..artefacts import check_destination, check_destination_name

    p = Path(folder)
    meta_path = p / TUNING_METADATA
    if p.is_dir() and not p.is_symlink() and meta_path.is_file():
        try:
            meta = read_tuning_metadata(p) or {}
        except ArtefactError as e:
            raise ArtefactError(f"refusing to replace {p}: {e}; nothing was touched") from None
        check_destination_name(p)
        listed = set(meta.get("files") or [])
        present = {q.relative_to(p).as_posix() for q in p.rglob("*") if q.is_file() or q.is_symlink()}
        extra = sorted(present - listed)
        if extra:
            shown = ", ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
            raise ArtefactError(f"refusing to replace {p}: it holds files langalign did not write ({shown}); "
                                "nothing was touched. Save to a new or empty folder")
        return
    check_destination(p, KIND, overwrite)
