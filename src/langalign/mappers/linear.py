"""Closed-form linear maps: ridge (shrunk toward a prior map) and orthogonal Procrustes.

Both are fitted from *sufficient statistics* (counts, sums, cross-products),
accumulated chunk by chunk. The in-memory ``fit`` and a sharded fit over
millions of pairs therefore run the same code and give the same answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import warnings

import numpy as np

from .._validation import check_matrix, check_pairs
from .base import BaseMapper, expect_shape

# Rows per chunk when accumulating cross-products: bounds float64 temporaries.
_CHUNK = 65536


class UnderdeterminedWarning(UserWarning):
    """A map was fitted from fewer pairs than it has free directions (see ProcrustesMapper)."""


def _check_spread(total: tuple, owner: str) -> None:
    """Refuse sums of pairs whose X or Y side has (numerically) zero variance.

    Works on sufficient statistics, so in-memory and sharded fits are guarded alike.
    """
    n, sx, sy, sxx, _, syy = total
    if n < 2:
        return
    var_x = float(np.trace(sxx)) - float(sx @ sx) / n
    var_y = float(syy) - float(sy @ sy) / n
    for side, var, sq in (("X", var_x, float(np.trace(sxx))), ("Y", var_y, float(syy))):
        if var <= 1e-10 * max(sq, 1e-30):
            raise ValueError(f"{owner}: all {n} {side} vectors are identical (constant input); a map fitted on "
                             "them would send every input to one point. Check the input texts (all empty? one "
                             "repeated text?) or the encoder")


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
        # Fold by global row index: deterministic and independent of chunking,
        # so a sharded fit sees exactly the folds of an in-memory fit.
        idx = np.arange(start, start + count, dtype=np.int64)
        # A multiplicative hash spreads consecutive (often topic-sorted) rows over folds.
        return ((idx * 2654435761) % 4294967296) % self.n_folds

    def update(self, X: np.ndarray, Y: np.ndarray) -> "PairStats":
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

    def merge(self, other: "PairStats") -> "PairStats":
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
        for s in range(0, X.shape[0], _CHUNK):
            stats.update(X[s : s + _CHUNK], Y[s : s + _CHUNK])
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
        if kind == "shift":
            M = self.P0
        else:
            M = (self.P + a * self.P0) / (self.lam + a)[:, None]
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
    """

    kind = "linear"

    def __init__(self, alpha: float | str = "auto", prior: str = "auto", fit_intercept: bool = True,
                 cv: int = 5, alphas: list[float] | None = None):
        self.alpha = alpha
        self.prior = prior
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.alphas = alphas

    # -- fitting -------------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> "LinearMapper":
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        n_folds = self._n_folds(X.shape[0])
        stats = accumulate([(X, Y)], X.shape[1], Y.shape[1], n_folds)
        return self.fit_stats(stats)

    def _n_folds(self, n: int) -> int:
        if self.alpha != "auto":
            return 1
        return int(max(2, min(self.cv, n // 2)))

    def fit_stats(self, stats: PairStats) -> "LinearMapper":
        """Fit from accumulated :class:`PairStats` (the path sharded/distributed fits use)."""
        d_in, d_out = stats.d_in, stats.d_out
        prior = self.prior
        if prior == "auto":
            prior = "identity" if d_in == d_out else "zero"
        if prior not in ("identity", "zero"):
            raise ValueError(f"prior must be 'auto', 'identity' or 'zero', got {self.prior!r}")
        if prior == "identity" and d_in != d_out:
            raise ValueError(f"prior='identity' needs equal dimensions, got {d_in} -> {d_out}; use prior='zero'")
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
            self.cv_scores_ = {_label(c): float(m) for c, m in zip(candidates, mse)}
        else:
            chosen = ("ridge", float(self.alpha))
            self.cv_scores_ = {}
        W, b = _RidgePath(total, W0, self.fit_intercept).solve(chosen)
        self.coef_ = W.astype(np.float32)
        self.intercept_ = b.astype(np.float32)
        self.alpha_ = chosen[1] if chosen[0] == "ridge" else float("inf")
        self.choice_ = _label(chosen)
        self.prior_ = prior
        self.n_pairs_ = int(total[0])
        self.d_in_, self.d_out_ = d_in, d_out
        return self

    def _candidates(self, total: tuple, prior: str) -> list[tuple[str, float]]:
        n, sx, _, sxx, _, _ = total
        cxx = sxx - np.outer(sx, sx) / n
        scale = max(float(np.trace(cxx)) / cxx.shape[0], 1e-12)  # mean eigenvalue
        grid = self.alphas if self.alphas is not None else list(scale * np.logspace(-3, 3, 13))
        cands: list[tuple[str, float]] = [("ridge", float(a)) for a in grid]
        if prior == "identity":
            cands += [("shift", float("inf")), ("identity", float("inf"))]
        return cands

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_ + self.intercept_

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

    def _prep(self, X: np.ndarray) -> np.ndarray:
        if self.normalize:
            X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return X

    def _n_folds(self, n: int) -> int:
        if not self.shrink:
            return 1
        return int(max(2, min(self.cv, n // 2)))

    def fit(self, X: Any, Y: Any) -> "ProcrustesMapper":
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        folds = self._n_folds(X.shape[0]) if X.shape[1] == Y.shape[1] else 1
        stats = accumulate([(self._prep(X), self._prep(Y))], X.shape[1], Y.shape[1], folds)
        return self.fit_stats(stats)

    def fit_stats(self, stats: PairStats) -> "ProcrustesMapper":
        """Fit from sums of (already normalised, if ``normalize``) pairs."""
        if not isinstance(self.shrink, (bool, np.bool_)):
            raise ValueError(f"shrink must be True or False, got {self.shrink!r}")
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
            self.cv_scores_ = {_procrustes_label(c): float(m) for c, m in zip(candidates, mse)}
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

    def fit(self, X: Any, Y: Any) -> "CenteringMapper":
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

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        self.shift_ = expect_shape(tensors, "shift", (self.d_out_,), type(self).__name__).astype(np.float32)
