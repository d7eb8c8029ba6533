"""``bench/tuned_tasks.py --task sentiment`` under the name its results were first recorded with."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tuned_tasks import main  # noqa: E402

if __name__ == "__main__":
    main(task="sentiment")
