"""Input checks shared by encoders, mappers and heads: clear errors, early."""
from __future__ import annotations

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
