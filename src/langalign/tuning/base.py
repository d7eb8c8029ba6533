"""Tuning's constants and its error."""
from __future__ import annotations



from ..errors import LangAlignError


KIND = "tuned-encoder"
FORMAT_VERSION = 1
MODES = ("task", "parallel", "distil")
TASK_LOSSES = ("softmax", "contrastive")
# Chosen on SIB-200 dev with bench/tuning.py (see bench/results/tuning.md); pairs always use softmax.
DEFAULT_TASK_LOSS = "contrastive"
# Files a sentence-transformers save may never contain here: they are unpickled on load.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# The dev metric of task mode fits a logistic regression on (at most this many) training vectors.
_DEV_METRIC_MAX_TRAIN = 1000
# Distil mode's start map (a ridge map student -> teacher) is fitted on at most this many training sentences.
START_MAP_PAIRS = 5000


class TuningError(LangAlignError, ValueError):
    """An encoder cannot be tuned as asked (an untunable base, bad settings, a foreign checkpoint)."""
