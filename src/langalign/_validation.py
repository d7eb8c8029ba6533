"""Input checks shared by encoders, mappers and heads: clear errors, early."""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_texts(texts: Any, name: str = "texts") -> list[str]:
    """Return ``texts`` as a list of str, or raise a TypeError/ValueError saying why not."""
    if texts is None:
        raise ValueError(f"{name} is None; expected a list of strings")
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"{name} is a single {type(texts).__name__}; expected a list of strings "
            f"(wrap one sentence as [text])"
        )
    if isinstance(texts, np.ndarray) and texts.dtype.kind not in "UO":
        raise TypeError(f"{name} is a numeric array; expected a list of strings")
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be an iterable of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] is {type(t).__name__}, expected str")
    return out


def check_utf8(texts: list[str], name: str = "texts") -> None:
    """Refuse a text that has no UTF-8 form (a lone surrogate, e.g. from ``bytes.decode(errors="surrogateescape")``)."""
    for i, t in enumerate(texts):
        if t.isascii():
            continue
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"{name}[{i}] is not valid Unicode: it holds a lone surrogate U+{ord(t[e.start]):04X} at "
                             f"character {e.start}, which has no UTF-8 form; decode the input as UTF-8 (errors="
                             "'replace' keeps going past bad bytes)") from None


def check_matrix(X: Any, name: str = "X", *, dim: int | None = None, allow_empty: bool = True) -> np.ndarray:
    """Return X as a C-contiguous float32 2-D array; reject NaN/inf naming the rows."""
    if X is None:  # np.asarray(None) is a 0-d NaN, which would be reported as a shape problem
        raise ValueError(f"{name}: Expected array-like (array or non-string sequence), got None")
    if hasattr(X, "toarray") and hasattr(X, "nnz"):  # a scipy.sparse matrix/array, without importing scipy
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported (pass {name}.toarray())")
    dtype = getattr(X, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind == "c":
        # the float32 cast below would drop the imaginary part with only a warning
        raise ValueError(f"Complex data not supported: {name} has dtype {dtype}; expected real vectors")
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a numeric 2-D array: {e}") from None
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, dim or 0)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, dim), got shape {arr.shape}")
    if arr.shape[0] > 0 and arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required; "
                         "a vector needs at least one dimension")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} has dimension {arr.shape[1]}, expected {dim}")
    if not allow_empty and arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise ValueError(f"{name} has NaN or inf values in {len(bad)} row(s): {shown}")
    return np.ascontiguousarray(arr)


def check_pairs(X: np.ndarray, Y: np.ndarray, xname: str = "X", yname: str = "Y") -> None:
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{xname} and {yname} must have the same number of rows: {X.shape[0]} != {Y.shape[0]}")
    if X.shape[0] < 2:
        raise ValueError(f"need at least 2 pairs to fit, got {X.shape[0]}")


def check_not_constant(X: np.ndarray, name: str = "X") -> None:
    """Refuse a matrix whose rows are all identical: no map can be learned from it.

    Typical causes: every text was empty, or one text was repeated, or an encoder
    returned a constant vector. (CenteringMapper accepts it: a mean shift is still defined.)
    """
    if X.shape[0] >= 2 and not np.any(X != X[0]):
        raise ValueError(f"{name}: all {X.shape[0]} rows are identical (constant vectors); a map fitted on them "
                         "would send every input to one point. Check the input texts (all empty? one repeated "
                         "text?) or the encoder")


# -- estimator parameters ---------------------------------------------------------------
# Shared by the mappers' fit-time checks and by the artefact loader (a saved config is
# checked with the same rules before anything is allocated from it).

# No sentence encoder has anywhere near a million dimensions; a larger width or
# dimension in a parameter or config is a typo or an attack, never a model.
MAX_DIM = 1 << 20
# The paper's networks have 6 layers; thousands is only ever an edited config.
MAX_LAYERS = 1000


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int_param(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]``; a float (16.7), str ("16") or bool is refused, not rounded."""
    if not is_int(value) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an integer {rng}, got {value!r}")
    return int(value)


def check_float_param(name: str, value: Any, lo: float, hi: float | None = None, *, lo_open: bool = False,
                      hi_open: bool = False) -> float:
    """``value`` as a finite float in the interval from ``lo`` to ``hi`` (bounds closed unless ``*_open``)."""
    ok = is_number(value) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
    if not ok:
        left, right = "(" if lo_open else "[", ")" if hi_open or hi is None else "]"
        raise ValueError(f"{name} must be a finite number in {left}{lo}, {'inf' if hi is None else hi}{right}, "
                         f"got {value!r}")
    return float(value)


def check_bool_param(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice_param(name: str, value: Any, choices: tuple) -> Any:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
