"""Class labels: what a label may be, and how two sets of labels are compared.

The rule, the same in the readers, the heads, the metrics and the CLI:

* a label is a string or an integer. Floats (``NaN`` included), booleans and
  ``None`` are not labels: a JSON ``NaN`` is an error, never a class ``"nan"``.
* one set of labels (a training set, a test set, a list of predictions) uses one
  type: ``1`` and ``"1"`` in one set are an error, never merged into one class.
* a TSV or CSV file cannot tell ``1`` from ``"1"``: all its labels are strings. So
  when test labels and a model's classes differ in type, they are matched by their
  decimal text (:func:`match_classes`): the strings ``"0", "1"`` of a TSV test set
  are the integer classes ``0, 1`` of a model trained on JSON Lines, and the other
  way round. Strings that are not plain decimal integers are then an error.
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def describe(value: Any) -> str | None:
    """None if ``value`` is a valid label, else why not (for messages)."""
    if isinstance(value, str):
        return None
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {value!r}"
    if isinstance(value, (int, np.integer)):
        return None
    if isinstance(value, (float, np.floating)):
        return "NaN" if math.isnan(value) else f"the number {value!r} (a float)"
    return f"{'None' if value is None else type(value).__name__ + ' ' + repr(value)[:40]}"


def check_labels(y: Any, name: str = "labels") -> np.ndarray:
    """``y`` as a 1-D int64 or str array; TypeError for a value that is not a label or a mix of types."""
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels, not a single {type(y).__name__}")
    if isinstance(y, np.ndarray):
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
        if y.dtype.kind in "iu":
            return y.astype(np.int64)
        if y.dtype.kind == "U":
            return y.astype(str)
        if y.dtype.kind != "O":
            nan = " (it holds NaN)" if y.dtype.kind == "f" and np.isnan(y).any() else ""
            raise TypeError(f"labels must be all integers or all strings (they are stored in JSON), got dtype "
                            f"{y.dtype}{nan}; convert them first, e.g. y.astype(int) or y.astype(str)")
        values = y.tolist()
    else:
        try:
            values = list(y)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of labels, got {type(y).__name__}") from None
    first: dict[type, int] = {}
    for i, v in enumerate(values):
        why = describe(v)
        if why is not None:
            raise TypeError(f"{name}[{i}] is {why}; labels must be all integers or all strings")
        first.setdefault(str if isinstance(v, str) else int, i)
        if len(first) > 1:
            a, b = sorted(first.values())
            raise TypeError(f"{name} mix integers and strings ({values[a]!r} at position {a}, {values[b]!r} at "
                            f"position {b}); labels must be all integers or all strings, so 1 and '1' are never "
                            "silently one class")
    if int in first:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            raise TypeError(f"{name} hold an integer beyond 64 bits; use strings for such labels") from None
    return np.array(values, dtype=str) if values else np.array([], dtype=str)


def match_classes(y: np.ndarray, classes: np.ndarray, name: str = "labels") -> np.ndarray:
    """``y`` (from :func:`check_labels`) in the type of ``classes``: integers <-> their decimal text."""
    if y.size == 0 or y.dtype.kind == classes.dtype.kind or {y.dtype.kind, classes.dtype.kind} != {"i", "U"}:
        return y
    if classes.dtype.kind == "U":  # integer labels, string classes (a model trained on TSV)
        return y.astype(str)
    bad = next((s for s in y.tolist() if not _INTEGER_TEXT.fullmatch(s) or str(int(s)) != s), None)
    if bad is not None:
        shown = ", ".join(map(str, classes[:5].tolist())) + (" ..." if classes.size > 5 else "")
        raise ValueError(f"{name} are strings but the model's classes are integers ({shown}), and {bad!r} is not "
                         "one written as a plain decimal integer; is this the right file and label column?")
    return y.astype(np.int64)
