"""Progress display: tqdm on long work, silent on short work or when disabled."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

# Below this many items a bar is noise, not information.
MIN_ITEMS_FOR_BAR = 2000


def progress_enabled(show: bool | None, total: int | None) -> bool:
    if show is not None:
        return bool(show)
    if os.environ.get("LANGALIGN_NO_PROGRESS"):
        return False
    return total is None or total >= MIN_ITEMS_FOR_BAR


def progress(it: Iterable[T], *, total: int | None = None, desc: str = "", show: bool | None = None,
             unit: str = "it") -> Iterable[T]:
    if not progress_enabled(show, total):
        return it
    return tqdm(it, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
