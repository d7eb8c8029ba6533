"""Run the langalign CLI in a subprocess with a fast synthetic encoder registered as "toy".

``python tests/_toy_cli.py index add --index IDX --input more.txt`` is `langalign index add ...` with
``load_encoder("toy")`` returning a deterministic 16-d encoder. ``TOY_ENCODE_SLEEP`` (seconds per
encoder call) slows it down, so tests can interleave or kill commands mid-way.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scale_helpers import CountingEncoder  # noqa: E402

from langalign import encoders  # noqa: E402
from langalign.cli import main  # noqa: E402


class _SlowToy(CountingEncoder):
    def _encode_batch(self, texts):
        pause = float(os.environ.get("TOY_ENCODE_SLEEP", "0"))
        if pause:
            time.sleep(pause)
        return super()._encode_batch(texts)


encoders._cache["toy"] = _SlowToy("toy", 16)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
