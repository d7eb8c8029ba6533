"""Closed-form linear maps: ridge (shrunk toward a prior map) and orthogonal Procrustes.

Both are fitted from *sufficient statistics* (counts, sums, cross-products),
accumulated chunk by chunk. The in-memory ``fit`` and a sharded fit over
millions of pairs therefore run the same code and give the same answer.

One exception, for cost: an in-memory ridge fit with fewer pairs than input
dimensions (5 pairs of 4096-d vectors) is solved in the dual, n x n form (kernel
ridge on the pairs, see :class:`_DualRidge`): the d x d statistics and their
eigendecompositions would cost O(d^3) per fold for a map the pairs fix only on
an n-dimensional span. It gives the same map and the same cross-validation choice.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import warnings

import numpy as np

from .._validation import (check_bool_param, check_choice_param, check_float_param, check_int_param, check_matrix,
                           check_pairs, is_number)
from .base import BaseMapper, expect_shape

# Rows per chunk when accumulating cross-products: bounds float64 temporaries (also the chunk the shard fit uses).
STATS_CHUNK = 65536
# Most cross-validation folds: PairStats holds one d x d matrix per fold.
MAX_CV = 100
# Most candidate strengths in a user's ``alphas`` grid (each is scored on every fold).
MAX_ALPHAS = 1000


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


class _RidgePath:
    """Ridge solutions toward a prior ``W0`` for many strengths, from one eigendecomposition.

    With ``Cxx = V diag(lam) V^T``, the solution for strength ``a`` is ``W = V M`` with
    ``M = (V^T Cxy + a V^T W0) / (lam + a)`` row-wise, so each candidate costs
    O(d · d_out) in the eigenbasis; ``W`` itself is only formed for the final choice.
    """

    def __init__(self, total: tuple, W0: np.ndarray, fit_intercept: bool):
        n, sx, sy, sxx, sxy, _ = total
        if fit_intercept:
            self.mx, self.my = sx / n, sy / n
            cxx = sxx - n * np.outer(self.mx, self.mx)
            cxy = sxy - n * np.outer(self.mx, self.my)
        else:
            self.mx, self.my = np.zeros_like(sx), np.zeros_like(sy)
            cxx, cxy = sxx, sxy
        lam, self.V = np.linalg.eigh(cxx)
        self.lam = np.clip(lam, 0.0, None)
        self.P = self.V.T @ cxy
        self.P0 = self.V.T @ W0
        self.mxV = self.mx @ self.V

    def solve_eigenbasis(self, cand: tuple[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """``(M, b)`` with ``W = V M``."""
        kind, a = cand
        if kind == "identity":
            return self.P0, np.zeros(self.P0.shape[1])
        M = self.P0 if kind == "shift" else (self.P + a * self.P0) / (self.lam + a)[:, None]
        return M, self.my - self.mxV @ M

    def solve(self, cand: tuple[str, float]) -> tuple[np.ndarray, np.ndarray]:
        M, b = self.solve_eigenbasis(cand)
        return self.V @ M, b


class _FoldScorer:
    """Sum of squared errors of ``y ≈ x V M + b`` over one fold, from its sums alone.

    SSE = syy - 2<VM, Sxy> - 2 sy·b + ||G V M||² + 2 (sx V M)·b + n ||b||², where
    ``G^T G = Sxx`` of the fold. G has rank <= min(n_fold, d), so each candidate
    costs O(rank · d · d_out), never a d x d x d product.
    """

    def __init__(self, fold: tuple, V: np.ndarray):
        self.n, sx, self.sy, sxx, sxy, self.syy = fold
        evals, evecs = np.linalg.eigh(sxx)
        keep = evals > max(float(evals[-1]), 0.0) * 1e-12
        G = np.sqrt(evals[keep])[:, None] * evecs[:, keep].T
        self.GV = G @ V
        self.A = V.T @ sxy
        self.sxV = sx @ V

    def sse(self, M: np.ndarray, b: np.ndarray) -> float:
        GVM = self.GV @ M
        return float(self.syy - 2.0 * np.sum(M * self.A) - 2.0 * self.sy @ b + np.sum(GVM * GVM)
                     + 2.0 * (self.sxV @ M) @ b + self.n * (b @ b))


class _DualRidge:
    """Ridge toward the prior on fewer pairs than input dimensions, in the dual (n x n) form.

    With centred ``Xc`` (n x d), ``R = Yc - Xc W0`` and ``Xc Xc^T = U diag(s) U^T``, the map
    ``W = W0 + Xc^T U diag(1/(s + a)) U^T R`` equals the primal ``(Xc^T Xc + a I)^-1 (Xc^T Yc + a W0)``
    (push-through identity) at O(n^2 d) instead of O(d^3). Outside the span of the pairs
    it is the prior, as in the primal form.
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray, prior: str, fit_intercept: bool):
        if fit_intercept:
            self.mx, self.my = X.mean(0), Y.mean(0)
        else:
            self.mx, self.my = np.zeros(X.shape[1]), np.zeros(Y.shape[1])
        self.identity = prior == "identity"
        self.Xc = X - self.mx
        Yc = Y - self.my
        s, self.U = np.linalg.eigh(self.Xc @ self.Xc.T)
        self.s = np.clip(s, 0.0, None)
        self.B = self.U.T @ (Yc - self.Xc if self.identity else Yc)

    def _prior(self, Z: np.ndarray) -> np.ndarray:
        """``Z @ W0`` without forming W0 (a d x d identity)."""
        return Z.copy() if self.identity else np.zeros((Z.shape[0], self.B.shape[1]))

    def scorer(self, X: np.ndarray, Y: np.ndarray):
        """``cand -> SSE`` of held-out pairs ``(X, Y)``; O(n^2) per candidate after O(n^2 d) set-up."""
        Zt = X - self.mx
        A = (Zt @ self.Xc.T) @ self.U
        E0 = self._prior(Zt) + self.my - Y  # residual of the prior map (+ shift)
        e0 = float(np.sum(E0 * E0))
        c = np.einsum("ij,ij->j", A, E0 @ self.B.T)
        H = (A.T @ A) * (self.B @ self.B.T)
        e_id = float(np.sum((X - Y) ** 2)) if self.identity else float("nan")  # only a candidate then

        def sse(cand: tuple[str, float]) -> float:
            kind, a = cand
            if kind == "identity":
                return e_id
            if kind == "shift":
                return e0
            D = 1.0 / (self.s + a)
            return float(e0 + 2.0 * (c @ D) + D @ H @ D)

        return sse

    def solve(self, cand: tuple[str, float]) -> tuple[np.ndarray, np.ndarray]:
        kind, a = cand
        d_in, d_out = self.Xc.shape[1], self.B.shape[1]
        if kind == "identity":
            return np.eye(d_in), np.zeros(d_out)
        W = np.eye(d_in) if self.identity else np.zeros((d_in, d_out))
        if kind == "ridge":
            W += self.Xc.T @ ((self.U / (self.s + a)) @ self.B)
        return W, self.my - self.mx @ W


class LinearMapper(BaseMapper):
    """Ridge regression ``y ≈ x W + b`` in closed form, shrunk toward a prior map.

    The penalty is ``alpha * ||W - W0||²``. With ``prior="identity"`` (the default
    when both sides have the same dimension, i.e. one multilingual encoder) a
    large ``alpha`` leaves the vectors as they are apart from a mean shift, so a
    map fitted on a few hundred pairs cannot drift far from "doing nothing".
    With ``prior="zero"`` it is plain ridge (the only choice across encoders of
    different dimensions).

    ``alpha="auto"`` picks the strength by K-fold cross-validation on the pairs
    (held-out squared error, computed exactly from per-fold sums). Candidates are
    a log grid scaled to the data, plus, under the identity prior, the identity
    with a mean shift (alpha=inf) and the untouched identity, so the chosen map
    is never worse on held-out pairs than leaving the vectors alone.
    The choice is recorded in ``alpha_`` and ``cv_scores_``.

    The grid is relative to the data: ``trace(Cov(X)) / d`` (its mean eigenvalue)
    times 10^-3 .. 10^3. Under the identity prior it reaches further down when Y
    is spread less than X (X scaled by 1000, say): the prior is then far from any
    good map, and only a weaker pull toward it keeps the ridge bias small.

    With fewer pairs than input dimensions the in-memory fit runs in the dual
    (n x n) form (same result, cost O(n^2 d)) and warns: the map is fixed only on
    the span of the pairs, the prior decides the rest.
    """

    kind = "linear"

    def __init__(self, alpha: float | str = "auto", prior: str = "auto", fit_intercept: bool = True,
                 cv: int = 5, alphas: list[float] | None = None):
        self.alpha = alpha
        self.prior = prior
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.alphas = alphas

    def _validate_params(self) -> None:
        is_auto = isinstance(self.alpha, str) and self.alpha == "auto"
        if not is_auto and (not is_number(self.alpha) or not np.isfinite(float(self.alpha))
                            or float(self.alpha) <= 0):
            raise ValueError(f"alpha must be 'auto' or a finite number > 0 (the ridge strength), "
                             f"got {self.alpha!r}")
        check_choice_param("prior", self.prior, ("auto", "identity", "zero"))
        check_bool_param("fit_intercept", self.fit_intercept)
        check_int_param("cv", self.cv, 2, MAX_CV)
        if self.alphas is not None:
            if isinstance(self.alphas, (str, bytes, dict)) or not hasattr(self.alphas, "__len__"):
                raise ValueError(f"alphas must be None or a list of numbers > 0, got {self.alphas!r}")
            if not 1 <= len(self.alphas) <= MAX_ALPHAS:
                raise ValueError(f"alphas must list 1 to {MAX_ALPHAS} strengths (None for the automatic grid), "
                                 f"got {len(self.alphas)}")
            for i, a in enumerate(self.alphas):
                check_float_param(f"alphas[{i}]", a, 0.0, lo_open=True)

    def _resolve_prior(self, d_in: int, d_out: int) -> str:
        prior = self.prior
        if prior == "auto":
            prior = "identity" if d_in == d_out else "zero"
        if prior == "identity" and d_in != d_out:
            raise ValueError(f"prior='identity' needs equal dimensions, got {d_in} -> {d_out}; use prior='zero'")
        return prior

    # -- fitting -------------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> LinearMapper:
        self._validate_params()
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        if X.shape[0] < X.shape[1]:
            return self._fit_dual(X, Y)
        n_folds = self._n_folds(X.shape[0])
        stats = accumulate([(X, Y)], X.shape[1], Y.shape[1], n_folds)
        return self.fit_stats(stats)

    def _n_folds(self, n: int) -> int:
        self._validate_params()  # before a sharded fit accumulates statistics for these folds
        if self.alpha != "auto":
            return 1
        return int(max(2, min(self.cv, n // 2)))

    def _fit_dual(self, X: np.ndarray, Y: np.ndarray) -> LinearMapper:
        """Few pairs in many dimensions: the same fit and CV choice as :meth:`fit_stats`, in n x n form."""
        n, d_in, d_out = X.shape[0], X.shape[1], Y.shape[1]
        prior = self._resolve_prior(d_in, d_out)
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        sx, sy = X64.sum(0), Y64.sum(0)
        _check_spread_terms(n, sx, sy, float(np.einsum("ij,ij->", X64, X64)), float(np.einsum("ij,ij->", Y64, Y64)),
                            type(self).__name__)
        warnings.warn(f"LinearMapper: {n} pairs for {d_in}-d inputs: the map is fitted only on the "
                      f"{n}-dimensional span of the pairs (the {prior} prior decides the rest), and the choice "
                      "of ridge strength rests on very few held-out pairs; use more pairs than dimensions for a "
                      "reliable map", UnderdeterminedWarning, stacklevel=3)
        if self.alpha == "auto":
            n_folds = self._n_folds(n)
            folds = fold_ids(0, n, n_folds)
            cx, cy = X64 - sx / n, Y64 - sy / n
            candidates = self._grid(float(np.einsum("ij,ij->", cx, cx)), float(np.einsum("ij,ij->", cy, cy)),
                                    d_in, prior)
            sse = np.zeros(len(candidates))
            for k in range(n_folds):
                te = folds == k
                if not te.any() or te.all():
                    continue
                score = _DualRidge(X64[~te], Y64[~te], prior, self.fit_intercept).scorer(X64[te], Y64[te])
                for j, cand in enumerate(candidates):
                    sse[j] += score(cand)
            mse = sse / (n * d_out)
            chosen = candidates[int(np.argmin(mse))]
            self.cv_scores_ = {_label(c): float(m) for c, m in zip(candidates, mse, strict=True)}
        else:
            chosen = ("ridge", float(self.alpha))
            self.cv_scores_ = {}
        W, b = _DualRidge(X64, Y64, prior, self.fit_intercept).solve(chosen)
        return self._install(W, b, chosen, prior, n, d_in, d_out)

    def fit_stats(self, stats: PairStats) -> LinearMapper:
        """Fit from accumulated :class:`PairStats` (the path sharded/distributed fits use)."""
        self._validate_params()
        d_in, d_out = stats.d_in, stats.d_out
        prior = self._resolve_prior(d_in, d_out)
        W0 = np.eye(d_in) if prior == "identity" else np.zeros((d_in, d_out))
        total = stats.total()
        if total[0] < 2:
            raise ValueError(f"need at least 2 pairs to fit, got {total[0]}")
        _check_spread(total, type(self).__name__)

        if self.alpha == "auto":
            if stats.n_folds < 2:
                raise ValueError("alpha='auto' needs PairStats accumulated with n_folds >= 2")
            candidates = self._candidates(total, prior)
            sse = np.zeros(len(candidates))
            for k in range(stats.n_folds):
                if stats.n[k] == 0:
                    continue
                solver = _RidgePath(stats.total(exclude=k), W0, self.fit_intercept)
                scorer = _FoldScorer(stats.fold(k), solver.V)
                for j, cand in enumerate(candidates):
                    sse[j] += scorer.sse(*solver.solve_eigenbasis(cand))
            mse = sse / (total[0] * d_out)
            best = int(np.argmin(mse))
            chosen = candidates[best]
            self.cv_scores_ = {_label(c): float(m) for c, m in zip(candidates, mse, strict=True)}
        else:
            chosen = ("ridge", float(self.alpha))
            self.cv_scores_ = {}
        W, b = _RidgePath(total, W0, self.fit_intercept).solve(chosen)
        return self._install(W, b, chosen, prior, int(total[0]), d_in, d_out)

    def _install(self, W: np.ndarray, b: np.ndarray, chosen: tuple[str, float], prior: str, n: int, d_in: int,
                 d_out: int) -> LinearMapper:
        self.coef_ = W.astype(np.float32)
        self.intercept_ = b.astype(np.float32)
        self.alpha_ = chosen[1] if chosen[0] == "ridge" else float("inf")
        self.choice_ = _label(chosen)
        self.prior_ = prior
        self.n_pairs_ = int(n)
        self.d_in_, self.d_out_ = d_in, d_out
        return self

    def _candidates(self, total: tuple, prior: str) -> list[tuple[str, float]]:
        n, sx, sy, sxx, _, syy = total
        cxx = sxx - np.outer(sx, sx) / n
        return self._grid(float(np.trace(cxx)), float(syy) - float(sy @ sy) / n, cxx.shape[0], prior)

    def _grid(self, tr_cxx: float, tr_cyy: float, d_in: int, prior: str) -> list[tuple[str, float]]:
        """Candidate strengths from the centred spreads ``trace(Cxx)``, ``trace(Cyy)`` (sums over pairs)."""
        scale = max(tr_cxx / d_in, 1e-12)  # mean eigenvalue
        if self.alphas is not None:
            grid = list(self.alphas)
        else:
            # Ridge toward W0 has relative bias ~ (alpha / eigenvalue) * ||W0 - W|| / ||W||. Under the identity
            # prior, Y spread `ratio` times less than X makes that norm ratio ~ 1/ratio: extend the grid down by
            # as many half-decades, so the weakest pull is as small, relative to the data, as with matched scales.
            ratio = np.sqrt(max(tr_cyy, 0.0) / max(tr_cxx, 1e-300))
            extra = int(min(24, np.floor(2 * np.log10(1 / ratio) + 1e-9))) if prior == "identity" and 0 < ratio < 1 \
                else 0
            steps = np.logspace(-3, 3, 13) if extra <= 0 else np.logspace(-3 - 0.5 * extra, 3, 13 + extra)
            grid = list(scale * steps)
        cands: list[tuple[str, float]] = [("ridge", float(a)) for a in grid]
        if prior == "identity":
            cands += [("shift", float("inf")), ("identity", float("inf"))]
        return cands

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_ + self.intercept_

    def _state_shapes(self, d_in: int, d_out: int, config: dict[str, Any], where: str, field: str) -> dict:
        return {"coef": ((d_in, d_out), f"{field}.d_in, {field}.d_out"), "intercept": ((d_out,), f"{field}.d_out")}

    def _fit_info(self) -> dict[str, Any]:
        return {"alpha": self.alpha_, "choice": self.choice_, "prior": self.prior_, "n_pairs": self.n_pairs_,
                "cv_mse": self.cv_scores_}

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        name = type(self).__name__
        self.coef_ = expect_shape(tensors, "coef", (self.d_in_, self.d_out_), name).astype(np.float32)
        self.intercept_ = expect_shape(tensors, "intercept", (self.d_out_,), name).astype(np.float32)
        info = config.get("fit_info", {})
        self.alpha_ = float(info.get("alpha", "nan"))
        self.choice_ = info.get("choice", "")
        self.prior_ = info.get("prior", "")
        self.n_pairs_ = int(info.get("n_pairs", 0))
        self.cv_scores_ = info.get("cv_mse", {})


def _label(c: tuple[str, float]) -> str:
    return c[0] if c[0] != "ridge" else f"ridge(alpha={c[1]:.4g})"


class ProcrustesMapper(BaseMapper):
    """Orthogonal map: ``y ≈ (x - mean_x) W + mean_y`` with ``W`` orthogonal.

    ``W = U V^T`` from the SVD of the centred cross-covariance ``X^T Y``. When the
    dimensions differ, ``W`` is the closest *semi-orthogonal* matrix (orthonormal
    columns if d_in >= d_out, orthonormal rows otherwise): it is an isometry from
    the smaller space into the larger, or a norm-preserving projection from the
    larger onto an orthonormal basis of the smaller. ``normalize=True`` scales
    every row to unit length before centring (common for word/sentence vectors).

    ``shrink=True`` (the default; equal dimensions only) shrinks the rotation
    toward the identity, as :class:`LinearMapper` does: ``W`` is the orthogonal
    polar factor of ``X^T Y + beta * n * I`` (the rotation that best fits the pairs
    plus ``beta`` times agreement with the identity), so it stays orthogonal and
    tends to the identity as ``beta`` grows. ``beta`` is chosen by ``cv``-fold
    cross-validation on the pairs (held-out squared error, exact from per-fold
    sums) over a log grid scaled to the data, ``beta=0`` (the plain rotation), the
    identity with a mean shift and the untouched identity; so on held-out pairs
    the chosen map is never worse than leaving the vectors alone. A rotation fitted
    on a few hundred pairs of 512-d vectors otherwise lowers their cosine to the
    translations. The choice is in ``choice_``, ``strength_`` and ``cv_scores_``.
    ``shrink=False`` (mapper name ``"procrustes-plain"``) is the plain rotation.
    """

    kind = "procrustes"

    def __init__(self, center: bool = True, normalize: bool = False, shrink: bool = True, cv: int = 5):
        self.center = center
        self.normalize = normalize
        self.shrink = shrink
        self.cv = cv

    def _validate_params(self) -> None:
        check_bool_param("center", self.center)
        check_bool_param("normalize", self.normalize)
        check_bool_param("shrink", self.shrink)
        check_int_param("cv", self.cv, 2, MAX_CV)

    def _prep(self, X: np.ndarray) -> np.ndarray:
        if self.normalize:
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return X

    def _n_folds(self, n: int) -> int:
        if not self.shrink:
            return 1
        return int(max(2, min(self.cv, n // 2)))

    def fit(self, X: Any, Y: Any) -> ProcrustesMapper:
        self._validate_params()
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        folds = self._n_folds(X.shape[0]) if X.shape[1] == Y.shape[1] else 1
        stats = accumulate([(self._prep(X), self._prep(Y))], X.shape[1], Y.shape[1], folds)
        return self.fit_stats(stats)

    def fit_stats(self, stats: PairStats) -> ProcrustesMapper:
        """Fit from sums of (already normalised, if ``normalize``) pairs."""
        self._validate_params()
        total = stats.total()
        n, sx, sy, _, sxy, _ = total
        if n < 2:
            raise ValueError(f"need at least 2 pairs to fit, got {n}")
        _check_spread(total, type(self).__name__)
        mx, my = (sx / n, sy / n) if self.center else (np.zeros_like(sx), np.zeros_like(sy))
        if not np.any(sxy - n * np.outer(mx, my)):
            raise ValueError("the cross-covariance of X and Y is zero (constant inputs?); no rotation can be fitted")
        shrink = bool(self.shrink) and stats.d_in == stats.d_out
        if shrink:
            if stats.n_folds < 2:
                raise ValueError("shrink=True needs PairStats accumulated with n_folds >= 2 "
                                 "(ProcrustesMapper._n_folds); or use shrink=False")
            candidates = self._candidates(total)
            sse = np.zeros(len(candidates))
            for k in range(stats.n_folds):
                if stats.n[k] == 0:
                    continue
                train, fold = stats.total(exclude=k), stats.fold(k)
                for j, cand in enumerate(candidates):
                    sse[j] += _orthogonal_sse(fold, *_procrustes_solve(train, cand, self.center))
            mse = sse / (n * stats.d_out)
            chosen = candidates[int(np.argmin(mse))]
            self.cv_scores_ = {_procrustes_label(c): float(m) for c, m in zip(candidates, mse, strict=True)}
        else:
            chosen = ("rotation", 0.0)
            self.cv_scores_ = {}
        k = min(stats.d_in, stats.d_out)
        if chosen == ("rotation", 0.0) and n - int(self.center) < k:
            # Decision: warn, not fail. The SVD still gives a valid orthogonal map that is
            # exact on the span of the pairs; outside it the rotation is arbitrary (any
            # completion fits equally well), so vectors far from the pairs map unreliably.
            warnings.warn(f"ProcrustesMapper: {n} pairs for a {stats.d_in}->{stats.d_out} map: the rotation is "
                          f"fixed only on the {n - int(self.center)}-dimensional span of the pairs and arbitrary "
                          f"elsewhere; use at least {k + int(self.center)} pairs (ideally many more), "
                          "shrink=True or LinearMapper (ridge toward the identity)", UnderdeterminedWarning,
                          stacklevel=3)
        W, mean_in, mean_out, s = _procrustes_solve(total, chosen, self.center, with_singular=True)
        self.coef_ = W.astype(np.float32)
        self.mean_in_ = mean_in.astype(np.float32)
        self.mean_out_ = mean_out.astype(np.float32)
        self.rank_ = int((s > s[0] * 1e-10).sum())
        self.choice_ = _procrustes_label(chosen)
        self.strength_ = chosen[1]
        self.n_pairs_ = n
        self.d_in_, self.d_out_ = stats.d_in, stats.d_out
        return self

    def _candidates(self, total: tuple) -> list[tuple[str, float]]:
        n, sx, sy, _, sxy, _ = total
        mx, my = (sx / n, sy / n) if self.center else (np.zeros_like(sx), np.zeros_like(sy))
        s = np.linalg.svd((sxy - n * np.outer(mx, my)) / n, compute_uv=False)
        scale = max(float(s.mean()), 1e-12)  # mean singular value of the per-pair cross-covariance
        cands = [("rotation", 0.0)] + [("rotation", float(scale * r)) for r in (0.1, 0.3, 1.0, 3.0, 10.0)]
        if self.center:
            cands.append(("shift", float("inf")))
        return cands + [("identity", float("inf"))]

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return (self._prep(X) - self.mean_in_) @ self.coef_ + self.mean_out_

    def _fit_info(self) -> dict[str, Any]:
        return {"n_pairs": self.n_pairs_, "rank": self.rank_, "choice": self.choice_, "strength": self.strength_,
                "cv_mse": self.cv_scores_}

    def _state_shapes(self, d_in: int, d_out: int, config: dict[str, Any], where: str, field: str) -> dict:
        return {"coef": ((d_in, d_out), f"{field}.d_in, {field}.d_out"), "mean_in": ((d_in,), f"{field}.d_in"),
                "mean_out": ((d_out,), f"{field}.d_out")}

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef_, "mean_in": self.mean_in_, "mean_out": self.mean_out_}

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        name = type(self).__name__
        self.coef_ = expect_shape(tensors, "coef", (self.d_in_, self.d_out_), name).astype(np.float32)
        self.mean_in_ = expect_shape(tensors, "mean_in", (self.d_in_,), name).astype(np.float32)
        self.mean_out_ = expect_shape(tensors, "mean_out", (self.d_out_,), name).astype(np.float32)
        info = config.get("fit_info", {})
        self.n_pairs_ = int(info.get("n_pairs", 0))
        self.rank_ = int(info.get("rank", 0))
        # Artefacts saved before shrinkage existed hold a plain rotation.
        self.choice_ = info.get("choice", "rotation")
        self.strength_ = float(info.get("strength", 0.0))
        self.cv_scores_ = info.get("cv_mse", {})


def _procrustes_solve(total: tuple, cand: tuple[str, float], center: bool, with_singular: bool = False):
    """``(W, mean_in, mean_out)`` of one candidate fitted on ``total`` (plus singular values if asked).

    ``("rotation", beta)``: polar factor of the centred ``X^T Y + beta * n * I``
    (``beta=0``: plain Procrustes; any shape); ``("shift", inf)``: ``W = I`` with
    the means; ``("identity", inf)``: the vectors unchanged.
    """
    n, sx, sy, _, sxy, _ = total
    mx, my = (sx / n, sy / n) if center else (np.zeros_like(sx), np.zeros_like(sy))
    kind, beta = cand
    if kind != "rotation":
        eye = np.eye(sxy.shape[0])
        if kind == "identity":
            mx, my = np.zeros_like(sx), np.zeros_like(sy)
        out = (eye, mx, my)
        return (*out, np.ones(sxy.shape[0])) if with_singular else out
    cxy = sxy - n * np.outer(mx, my)
    if beta:
        cxy = cxy + (beta * n) * np.eye(cxy.shape[0])
        if not with_singular:
            return _polar(cxy), mx, my
    U, s, Vt = np.linalg.svd(cxy, full_matrices=False)
    out = (U @ Vt, mx, my)
    return (*out, s) if with_singular else out


def _polar(A: np.ndarray) -> np.ndarray:
    """Orthogonal polar factor ``A (A^T A)^(-1/2)`` of a square ``A`` (= ``U V^T`` of its SVD).

    Through a symmetric eigendecomposition, about three times cheaper than an SVD:
    cross-validation solves one per candidate and fold. Falls back to the SVD when
    ``A`` is close to singular (the eigenvalues would lose too much precision).
    """
    lam, V = np.linalg.eigh(A.T @ A)
    if lam[0] <= lam[-1] * 1e-8:
        U, _, Vt = np.linalg.svd(A)
        return U @ Vt
    return (A @ (V / np.sqrt(lam))) @ V.T


def _orthogonal_sse(fold: tuple, W: np.ndarray, mean_in: np.ndarray, mean_out: np.ndarray) -> float:
    """Sum of squared errors of ``y ≈ (x - mean_in) W + mean_out`` over one fold, from its sums.

    With ``b = mean_out - mean_in W``: SSE = syy - 2<W, Sxy> - 2 sy·b + tr(W^T Sxx W)
    + 2 (sx W)·b + n ||b||²; ``W`` is square orthogonal here, so tr(W^T Sxx W) = tr(Sxx).
    """
    n, sx, sy, sxx, sxy, syy = fold
    b = mean_out - mean_in @ W
    return float(syy - 2.0 * np.sum(W * sxy) - 2.0 * sy @ b + np.trace(sxx) + 2.0 * (sx @ W) @ b + n * (b @ b))


def _procrustes_label(c: tuple[str, float]) -> str:
    if c[0] != "rotation":
        return c[0]
    return "rotation" if c[1] == 0 else f"rotation(beta={c[1]:.4g})"


class CenteringMapper(BaseMapper):
    """Mean shift only: ``y ≈ x - mean_x + mean_y`` (the "centring" baseline).

    Needs equal dimensions. Removes the language-specific offset that a
    multilingual encoder adds to every sentence, and nothing else.
    """

    kind = "centering"

    def __init__(self):
        pass

    def fit(self, X: Any, Y: Any) -> CenteringMapper:
        self._validate_params()
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"centring needs equal dimensions, got {X.shape[1]} -> {Y.shape[1]}")
        if X.shape[0] < 1 or Y.shape[0] < 1:
            raise ValueError("need at least one vector on each side")
        self.shift_ = (Y.mean(0) - X.mean(0)).astype(np.float32)
        self.d_in_ = self.d_out_ = X.shape[1]
        return self

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X + self.shift_

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"shift": self.shift_}

    def _state_shapes(self, d_in: int, d_out: int, config: dict[str, Any], where: str, field: str) -> dict:
        if d_in != d_out:
            from ..errors import ArtefactError

            raise ArtefactError(f"{where}: {field}: a centring map needs d_in == d_out, got {d_in} and {d_out}")
        return {"shift": ((d_out,), f"{field}.d_out")}

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        self.shift_ = expect_shape(tensors, "shift", (self.d_out_,), type(self).__name__).astype(np.float32)
