"""Validating what tuning is given (texts, pairs, labels), hashing it, and the dev splits."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from .._labels import check_labels
from ..errors import DataError



# -- inputs -----------------------------------------------------------------------------
def _texts(values: Any, name: str) -> list[str]:
    if values is None or isinstance(values, (str, bytes)):
        raise DataError(f"{name} must be a list of texts, got {type(values).__name__}")
    out = list(values)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DataError(f"{name}[{i}] is {type(t).__name__}, expected a text (str)")
    empty = [i for i, t in enumerate(out) if not t.strip()]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise DataError(f"{name}: {len(empty)} of {len(out)} texts are empty or blank (rows {shown}); "
                        "remove them before tuning (an empty text teaches the encoder nothing)")
    return out


def _pairs(english: Any, translations: Any, what: str = "pairs", hint: str = "") -> tuple[list[str], list[str]]:
    """English texts and their translations, row for row (``what``: "pairs" or "dev pairs")."""
    prefix = "dev " if what == "dev pairs" else ""
    en, tr = _texts(english, f"{prefix}English texts"), _texts(translations, f"{prefix}translations")
    if len(en) != len(tr):
        raise DataError(f"mismatched {what}: {len(en)} English texts but {len(tr)} translations" + hint)
    return en, tr


def _task_examples(X: Any, name: str) -> tuple[list[str], list[str] | None]:
    """(texts, second texts or None): single texts, or (text, text) pairs, never a mix."""
    if X is None or isinstance(X, (str, bytes)):
        raise DataError(f"{name} must be a list of texts or of (text, text) pairs, got {type(X).__name__}")
    items = list(X)
    if not items:
        raise DataError(f"{name} is empty: task tuning needs labelled examples")
    if isinstance(items[0], str):  # the first example says which kind the set is
        for i, t in enumerate(items):
            if isinstance(t, (tuple, list)):
                raise DataError(f"{name}[{i}] is a pair but {name}[0] is a single text; use one kind throughout")
        return _texts(items, name), None
    a, b = [], []
    for i, it in enumerate(items):
        if not (isinstance(it, (tuple, list)) and len(it) == 2 and all(isinstance(t, str) for t in it)):
            raise DataError(f"{name}[{i}] must be a (text, text) pair like the other examples, got "
                            f"{type(it).__name__}{'' if not isinstance(it, (tuple, list)) else f' of {len(it)}'}")
        a.append(it[0])
        b.append(it[1])
    return _texts(a, f"{name} (first texts)"), _texts(b, f"{name} (second texts)")


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    if y is None:
        raise DataError(f"{name}: task tuning needs one label per example (got none)")
    try:
        arr = check_labels(y, name)
    except TypeError as e:
        raise DataError(f"{e} (task tuning takes class labels; similarity scores are not supported)") from None
    if arr.shape[0] != n:
        raise DataError(f"{n} examples but {arr.shape[0]} {name}: every example needs exactly one label")
    return arr


def _digest(rows: Any) -> str:
    """sha256 of the examples as JSON lines: the identity of a training set."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, dev) indices: ``fraction`` of each class (at least one of any class with 2+) to dev."""
    rng = np.random.default_rng([seed, 7919])
    dev: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * idx.size))
        k = min(max(k, 1), idx.size - 1) if idx.size >= 2 else 0
        dev.extend(idx[:k].tolist())
    dev_idx = np.array(sorted(dev), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), dev_idx)
    return train_idx, dev_idx


def _random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    k = min(max(int(round(fraction * n)), 1), n - 2)
    return np.sort(perm[k:]), np.sort(perm[:k])
