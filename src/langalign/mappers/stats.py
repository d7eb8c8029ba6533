"""Sufficient statistics of row-aligned pairs (counts, sums, cross-products per fold) for the closed-form maps.

:class:`PairStats` is accumulated chunk by chunk (:meth:`PairStats.update`, :meth:`PairStats.merge`,
:func:`accumulate`), so the in-memory ``fit`` of :class:`~langalign.mappers.linear.LinearMapper` and
:class:`~langalign.mappers.procrustes.ProcrustesMapper` and a sharded fit over millions of pairs run the same
code and give the same answer; the cross-validation error is computed exactly from the per-fold sums.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

# Rows per chunk when accumulating cross-products: bounds float64 temporaries (also the chunk the shard fit uses).
STATS_CHUNK = 65536
# Most cross-validation folds: PairStats holds one d x d matrix per fold.
MAX_CV = 100


class UnderdeterminedWarning(UserWarning):
    """A map was fitted from fewer pairs than it has free directions (see ProcrustesMapper)."""


def _check_spread(total: tuple, owner: str) -> None:
    """Refuse sums of pairs whose X or Y side has (numerically) zero variance.

    Works on sufficient statistics, so in-memory and sharded fits are guarded alike.
    """
    n, sx, sy, sxx, _, syy = total
    _check_spread_terms(n, sx, sy, float(np.trace(sxx)), float(syy), owner)


def _check_spread_terms(n: int, sx: np.ndarray, sy: np.ndarray, tr_sxx: float, syy: float, owner: str) -> None:
    if n < 2:
        return
    var_x = tr_sxx - float(sx @ sx) / n
    var_y = float(syy) - float(sy @ sy) / n
    for side, var, sq in (("X", var_x, tr_sxx), ("Y", var_y, float(syy))):
        if var <= 1e-10 * max(sq, 1e-30):
            raise ValueError(f"{owner}: all {n} {side} vectors are identical (constant input); a map fitted on "
                             "them would send every input to one point. Check the input texts (all empty? one "
                             "repeated text?) or the encoder")


def fold_ids(start: int, count: int, n_folds: int) -> np.ndarray:
    """Cross-validation fold of rows ``start .. start+count-1``."""
    # Fold by global row index: deterministic and independent of chunking,
    # so a sharded fit sees exactly the folds of an in-memory fit.
    idx = np.arange(start, start + count, dtype=np.int64)
    # A multiplicative hash spreads consecutive (often topic-sorted) rows over folds.
    return ((idx * 2654435761) % 4294967296) % n_folds


@dataclass
class PairStats:
    """Sums over pairs (x, y), kept per cross-validation fold.

    ``n[k]``, ``sx[k]``, ``sy[k]``, ``sxx[k]`` (= sum x^T x), ``sxy[k]`` (= sum x^T y)
    and ``syy[k]`` (= sum ||y||^2) for each fold k; totals are sums over folds.
    Float64 throughout: cross-products of 10^6 rows lose precision in float32.
    """

    d_in: int
    d_out: int
    n_folds: int = 1
    n: np.ndarray = field(init=False)
    sx: np.ndarray = field(init=False)
    sy: np.ndarray = field(init=False)
    sxx: np.ndarray = field(init=False)
    sxy: np.ndarray = field(init=False)
    syy: np.ndarray = field(init=False)
    rows_seen: int = 0

    def __post_init__(self) -> None:
        k, a, b = self.n_folds, self.d_in, self.d_out
        self.n = np.zeros(k, dtype=np.int64)
        self.sx = np.zeros((k, a))
        self.sy = np.zeros((k, b))
        self.sxx = np.zeros((k, a, a))
        self.sxy = np.zeros((k, a, b))
        self.syy = np.zeros(k)

    def fold_of(self, start: int, count: int) -> np.ndarray:
        return fold_ids(start, count, self.n_folds)

    def update(self, X: np.ndarray, Y: np.ndarray) -> PairStats:
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        folds = self.fold_of(self.rows_seen, X.shape[0])
        for k in range(self.n_folds):
            m = folds == k
            if not m.any():
                continue
            xs, ys = X[m], Y[m]
            self.n[k] += xs.shape[0]
            self.sx[k] += xs.sum(0)
            self.sy[k] += ys.sum(0)
            self.sxx[k] += xs.T @ xs
            self.sxy[k] += xs.T @ ys
            self.syy[k] += float(np.einsum("ij,ij->", ys, ys))
        self.rows_seen += X.shape[0]
        return self

    def merge(self, other: PairStats) -> PairStats:
        """Add another accumulator's sums (e.g. from another worker)."""
        if (other.d_in, other.d_out, other.n_folds) != (self.d_in, self.d_out, self.n_folds):
            raise ValueError("cannot merge PairStats of different shapes")
        for name in ("n", "sx", "sy", "sxx", "sxy", "syy"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rows_seen += other.rows_seen
        return self

    def total(self, exclude: int | None = None) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        keep = [k for k in range(self.n_folds) if k != exclude]
        return (int(self.n[keep].sum()), self.sx[keep].sum(0), self.sy[keep].sum(0),
                self.sxx[keep].sum(0), self.sxy[keep].sum(0), float(self.syy[keep].sum()))

    def fold(self, k: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        return int(self.n[k]), self.sx[k], self.sy[k], self.sxx[k], self.sxy[k], float(self.syy[k])


def accumulate(pairs: Iterable[tuple[np.ndarray, np.ndarray]], d_in: int, d_out: int, n_folds: int = 1) -> PairStats:
    """Accumulate :class:`PairStats` over an iterable of ``(X_chunk, Y_chunk)``."""
    stats = PairStats(d_in, d_out, n_folds)
    for X, Y in pairs:
        for s in range(0, X.shape[0], STATS_CHUNK):
            stats.update(X[s : s + STATS_CHUNK], Y[s : s + STATS_CHUNK])
    return stats
