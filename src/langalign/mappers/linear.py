"""The ridge map, shrunk toward a prior map (the identity with equal dimensions), strength by cross-validation.

It is fitted from *sufficient statistics* (counts, sums, cross-products, :mod:`.stats`), accumulated chunk
by chunk, like :class:`~langalign.mappers.procrustes.ProcrustesMapper`: the in-memory ``fit`` and a sharded
fit over millions of pairs therefore run the same code and give the same answer.

One exception, for cost: an in-memory ridge fit with fewer pairs than input
dimensions (5 pairs of 4096-d vectors) is solved in the dual, n x n form (kernel
ridge on the pairs, see :class:`_DualRidge`): the d x d statistics and their
eigendecompositions would cost O(d^3) per fold for a map the pairs fix only on
an n-dimensional span. It gives the same map and the same cross-validation choice.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import (check_bool_param, check_choice_param, check_float_param, check_int_param, check_matrix,
                           check_pairs, is_number)
from .base import BaseMapper, expect_shape
from .stats import MAX_CV, PairStats, UnderdeterminedWarning, _check_spread, _check_spread_terms, accumulate, fold_ids

# Most candidate strengths in a user's ``alphas`` grid (each is scored on every fold).
MAX_ALPHAS = 1000


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


