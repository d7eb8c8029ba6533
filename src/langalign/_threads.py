"""How many threads encoders use: ``$LANGALIGN_THREADS``, else the machine's cores."""
from __future__ import annotations

import os

THREADS_ENV = "LANGALIGN_THREADS"


def default_threads() -> int:
    """Threads for an encoder's arithmetic: ``$LANGALIGN_THREADS`` if set, else the machine's cores.

    On a machine that other work keeps busy, fewer threads than cores can be much faster (waiting
    threads spin: docs/encoding-speed.md); the CLI also hands the value to torch (``OMP_NUM_THREADS``).
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a whole number of threads, got {raw!r}") from None
        if n >= 1:
            return n
        raise ValueError(f"{THREADS_ENV} must be >= 1, got {n}")
    return max(1, os.cpu_count() or 1)
