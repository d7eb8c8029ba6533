"""Bitext retrieval (cosine, CSLS, margin) in bounded memory.

Every scan walks the n x m similarity matrix in ``chunk_size x chunk_size`` blocks
and keeps only per-row reductions (a running top-k, or counts), so memory is
O(chunk_size^2 + n*k) whatever the pool size: 100k x 100k needs a few tens of MB,
not the 40 GB the full float32 matrix would take.

Scores, for a query x (row of Q) and a candidate y (row of C), with
``r_C(x)`` = mean cosine of x to its k nearest candidates and ``r_Q(y)`` = mean
cosine of y to its k nearest queries:

* ``cosine``: cos(x, y)
* ``csls`` (Conneau et al., 2018): 2 cos(x, y) - r_C(x) - r_Q(y)
* ``margin`` (Artetxe & Schwenk, 2019, ratio margin):
  cos(x, y) / ((r_C(x) + r_Q(y)) / 2), i.e. the sums over the k neighbours each
  divided by 2k. The denominator is clipped at 1e-6 so it can never flip sign.

All three are symmetric in the roles of Q and C, so the reverse direction reads
the same matrix column-wise.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._progress import progress
from .._validation import check_matrix

__all__ = ["TopK", "knn", "neighbourhood_means", "retrieve", "retrieval_scores", "topk_scan", "METHODS"]

METHODS = ("cosine", "csls", "margin")
DEFAULT_CHUNK = 2048
DEFAULT_NEIGHBOURHOOD_K = 10
_MARGIN_EPS = 1e-6
# Scores within this relative distance of the best correct candidate's score count
# as ties. It absorbs float32 rounding differences between a block product and a
# row-wise dot product (~1e-7); ties with wrong candidates are counted against
# the query, so a collapsed model (all vectors equal) scores 0, not 1.
_TIE_RTOL = 1e-5


class TopK(NamedTuple):
    """Top-k results, best first: ``scores`` (n, k) float32, ``indices`` (n, k) int64."""

    scores: np.ndarray
    indices: np.ndarray


def _normalize(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    out = np.zeros_like(X)
    np.divide(X, norms, out=out, where=norms > 0)  # zero rows stay zero: cosine 0 to everything
    return out


def _blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _check_inputs(Q: Any, C: Any, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    Qm = check_matrix(Q, "Q", allow_empty=False)
    Cm = check_matrix(C, "C", dim=Qm.shape[1], allow_empty=False)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _normalize(Qm), _normalize(Cm)


def _check_k(k: int, name: str = "k") -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


# A block scorer turns cosines of Q[q0:q1] x C[c0:c1] into method scores.
BlockScorer = Callable[[np.ndarray, slice, slice], np.ndarray]


class _Scorer:
    def __init__(self, method: str, r_q: np.ndarray | None = None, r_c: np.ndarray | None = None):
        self.method = method
        self.r_q = r_q
        self.r_c = r_c

    def block(self, cos: np.ndarray, qs: slice, cs: slice) -> np.ndarray:
        if self.method == "cosine":
            return cos
        assert self.r_q is not None and self.r_c is not None  # given for every method but cosine
        rq = self.r_q[qs, None]
        rc = self.r_c[None, cs]
        if self.method == "csls":
            return 2.0 * cos - rq - rc
        return cos / np.maximum((rq + rc) * 0.5, _MARGIN_EPS)

    def pairs(self, cos: np.ndarray, qi: np.ndarray, cj: np.ndarray) -> np.ndarray:
        if self.method == "cosine":
            return cos
        assert self.r_q is not None and self.r_c is not None  # given for every method but cosine
        rq = self.r_q[qi]
        rc = self.r_c[cj]
        if self.method == "csls":
            return 2.0 * cos - rq - rc
        return cos / np.maximum((rq + rc) * 0.5, _MARGIN_EPS)


def _merge_topk(run_s: np.ndarray, run_i: np.ndarray, s: np.ndarray, i: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Best k of the union of two (rows, *) score/index sets, unordered."""
    cat_s = np.concatenate([run_s, s], axis=1)
    cat_i = np.concatenate([run_i, i], axis=1)
    if cat_s.shape[1] <= k:
        return cat_s, cat_i
    part = np.argpartition(cat_s, -k, axis=1)[:, -k:]
    return np.take_along_axis(cat_s, part, axis=1), np.take_along_axis(cat_i, part, axis=1)


def _update_topk(run_s: np.ndarray, run_i: np.ndarray, S: np.ndarray, c0: int, k: int) -> None:
    """Fold a score block into the running top-k (in place; rows already hold k entries).

    Only entries above a row's current k-th best can enter its top-k. After the
    first few blocks those are rare, so gathering them sparsely and merging is far
    cheaper than partitioning the whole block (argpartition dominates otherwise).
    """
    kth = run_s.min(axis=1)
    hits = S > kth[:, None]
    counts = np.count_nonzero(hits, axis=1)
    widest = int(counts.max()) if counts.size else 0
    if widest == 0:
        return
    if k + widest >= S.shape[1]:
        # Dense case (early blocks, or sorted data): partition the block itself.
        if S.shape[1] > k:
            part = np.argpartition(S, -k, axis=1)[:, -k:]
            s, i = np.take_along_axis(S, part, axis=1), part + c0
        else:
            s, i = S, np.broadcast_to(np.arange(c0, c0 + S.shape[1]), S.shape)
        run_s[:], run_i[:] = _merge_topk(run_s, run_i, s, i, k)
        return
    rows = np.flatnonzero(counts)
    r, c = np.nonzero(hits[rows])
    starts = np.concatenate([[0], np.cumsum(counts[rows])[:-1]])
    pos = np.arange(r.size) - starts[r]
    pad_s = np.full((rows.size, widest), -np.inf, dtype=np.float32)
    pad_i = np.full((rows.size, widest), -1, dtype=np.int64)
    pad_s[r, pos] = S[rows[r], c]
    pad_i[r, pos] = c + c0
    run_s[rows], run_i[rows] = _merge_topk(run_s[rows], run_i[rows], pad_s, pad_i, k)


def topk_scan(Qn: np.ndarray, Cn: np.ndarray, k: int, score: BlockScorer, chunk: int,
              show: bool | None, desc: str) -> TopK:
    """The ``k`` best candidates per query by ``score``, in ``chunk x chunk`` blocks (never the full matrix).

    ``Qn`` / ``Cn`` are unit-normalised rows; ``score(cos_block, query_slice, candidate_slice)`` turns a block of
    cosines into scores (identity for cosine, a CSLS or margin correction otherwise). Shared by :func:`knn`,
    :func:`retrieve` and :class:`langalign.index.SearchIndex`; ``show`` / ``desc`` drive the progress bar.
    """
    n, m = Qn.shape[0], Cn.shape[0]
    k = min(k, m)
    out_s = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    n_blocks = -(-n // chunk)
    for q0, q1 in progress(_blocks(n, chunk), total=n_blocks, desc=desc, show=show, unit="block"):
        # -inf/-1 placeholders: every real score beats them, so they leave after k entries.
        run_s = np.full((q1 - q0, k), -np.inf, dtype=np.float32)
        run_i = np.full((q1 - q0, k), -1, dtype=np.int64)
        for c0, c1 in _blocks(m, chunk):
            S = score(Qn[q0:q1] @ Cn[c0:c1].T, slice(q0, q1), slice(c0, c1)).astype(np.float32, copy=False)
            _update_topk(run_s, run_i, S, c0, k)
        order = np.argsort(-run_s, axis=1, kind="stable")
        out_s[q0:q1] = np.take_along_axis(run_s, order, axis=1)
        out_i[q0:q1] = np.take_along_axis(run_i, order, axis=1)
    return TopK(out_s, out_i)


def knn(Q: Any, C: Any, k: int, chunk_size: int = DEFAULT_CHUNK, show_progress: bool | None = None) -> TopK:
    """The k candidates (rows of C) with the highest cosine to each row of Q, best first.

    ``k`` larger than ``len(C)`` is clipped. Ties are broken arbitrarily.
    """
    k = _check_k(k)
    Qn, Cn = _check_inputs(Q, C, chunk_size)
    return topk_scan(Qn, Cn, k, lambda cos, qs, cs: cos, int(chunk_size), show_progress, "knn")


def _neighbourhood_means_normed(Qn: np.ndarray, Cn: np.ndarray, k: int, chunk: int,
                                show: bool | None) -> np.ndarray:
    top = topk_scan(Qn, Cn, k, lambda cos, qs, cs: cos, chunk, show, "neighbourhood")
    return top.scores.mean(axis=1, dtype=np.float64).astype(np.float32)


def neighbourhood_means(Q: Any, C: Any, k: int = DEFAULT_NEIGHBOURHOOD_K, chunk_size: int = DEFAULT_CHUNK,
                        show_progress: bool | None = None) -> np.ndarray:
    """Mean cosine of each row of Q to its k nearest rows of C (``r_C`` in CSLS), float32 (n,)."""
    k = _check_k(k)
    Qn, Cn = _check_inputs(Q, C, chunk_size)
    return _neighbourhood_means_normed(Qn, Cn, k, int(chunk_size), show_progress)


def _make_scorer(Qn: np.ndarray, Cn: np.ndarray, method: str, neighbourhood_k: int, chunk: int,
                 show: bool | None) -> _Scorer:
    if method not in METHODS:
        raise ValueError(f"unknown retrieval method {method!r}; choose from {', '.join(METHODS)}")
    if method == "cosine":
        return _Scorer(method)
    kk = _check_k(neighbourhood_k, "neighbourhood_k")
    r_q = _neighbourhood_means_normed(Qn, Cn, kk, chunk, show)  # r_C(x) for each query
    r_c = _neighbourhood_means_normed(Cn, Qn, kk, chunk, show)  # r_Q(y) for each candidate
    return _Scorer(method, r_q, r_c)


def retrieve(Q: Any, C: Any, k: int = 10, method: str = "cosine",
             neighbourhood_k: int = DEFAULT_NEIGHBOURHOOD_K, chunk_size: int = DEFAULT_CHUNK,
             show_progress: bool | None = None) -> TopK:
    """Top-k candidates for each query under ``method`` ("cosine", "csls", "margin").

    Returns ``TopK(scores, indices)``, best first (unpacks as ``scores, idx = ...``).
    ``neighbourhood_k`` is the k of the CSLS/margin neighbourhood terms (10 in both papers).
    """
    k = _check_k(k)
    Qn, Cn = _check_inputs(Q, C, chunk_size)
    chunk = int(chunk_size)
    scorer = _make_scorer(Qn, Cn, method, neighbourhood_k, chunk, show_progress)
    return topk_scan(Qn, Cn, k, scorer.block, chunk, show_progress, f"retrieve ({method})")


def _group_ids(texts: Sequence[str] | None, n: int, name: str) -> np.ndarray:
    """Equal texts share an id; without texts every row is its own group."""
    if texts is None:
        return np.arange(n, dtype=np.int64)
    texts = list(texts)
    if len(texts) != n:
        raise ValueError(f"{name} has {len(texts)} entries but there are {n} embeddings")
    ids: dict[str, int] = {}
    return np.fromiter((ids.setdefault(t, len(ids)) for t in texts), dtype=np.int64, count=n)


def _correct_pairs(qgroup: np.ndarray, cgroup: np.ndarray, gold: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """All (query, candidate) pairs that count as a correct match.

    A gold link i -> gold[i] makes every query with query i's text match every
    candidate with gold[i]'s text. Returns (query idx, candidate idx, sorted valid
    group-pair codes, number of candidate groups) - the codes let a block check
    correctness of arbitrary pairs with a binary search.
    """
    n_cg = int(cgroup.max()) + 1
    codes = np.unique(qgroup * n_cg + cgroup[gold])
    vq, vc = codes // n_cg, codes % n_cg

    def members(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(groups, kind="stable")
        sizes = np.bincount(groups)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return order, starts, sizes

    q_order, q_starts, q_sizes = members(qgroup)
    c_order, c_starts, c_sizes = members(cgroup)
    sq, sc = q_sizes[vq], c_sizes[vc]
    tot = sq * sc  # each group pair expands to its full cross product
    pair = np.repeat(np.arange(len(codes)), tot)
    local = np.arange(int(tot.sum())) - np.repeat(np.cumsum(tot) - tot, tot)
    qi = q_order[q_starts[vq[pair]] + local // sc[pair]]
    cj = c_order[c_starts[vc[pair]] + local % sc[pair]]
    return qi, cj, codes, n_cg


def _is_correct(qg: np.ndarray, cg: np.ndarray, codes: np.ndarray, n_cg: int) -> np.ndarray:
    x = qg * n_cg + cg
    pos = np.minimum(np.searchsorted(codes, x), len(codes) - 1)
    return codes[pos] == x


def _summarise(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": int(ranks.size)}
    if ranks.size == 0:
        return out
    out["accuracy"] = float(np.mean(ranks == 1))
    for k in ks:
        out[f"recall@{k}"] = float(np.mean(ranks <= k))
    out["mrr"] = float(np.mean(1.0 / ranks))
    out["median_rank"] = float(np.median(ranks))
    return out


def retrieval_scores(Q: Any, C: Any, gold: Sequence[int] | np.ndarray | None = None, method: str = "cosine",
                     ks: Sequence[int] = (1, 5, 10), both_directions: bool = True,
                     query_texts: Sequence[str] | None = None, candidate_texts: Sequence[str] | None = None,
                     neighbourhood_k: int = DEFAULT_NEIGHBOURHOOD_K, chunk_size: int = DEFAULT_CHUNK,
                     show_progress: bool | None = None) -> dict[str, Any]:
    """Bitext retrieval accuracy, recall@k and MRR, exact and in bounded memory.

    ``gold[i]`` is the index in C of query i's translation (identity when None,
    which needs len(Q) == len(C)). With ``candidate_texts``/``query_texts``,
    duplicate sentences are interchangeable: retrieving any candidate whose text
    equals the gold candidate's text is correct, and queries with equal texts
    share their gold candidates (both directions).

    Each query's rank is 1 + the number of candidates scoring higher than its
    best-scoring correct candidate; wrong candidates tied with it (within a
    relative 1e-5) also count against it. accuracy = share of rank 1,
    recall@k = share of rank <= k, mrr = mean of 1/rank. "q2c" ranks C for each
    query; "c2q" ranks Q for each candidate that is some query's gold (others are
    skipped; "n" says how many were scored). "accuracy" at the top level is the
    mean over the directions computed.
    """
    chunk = int(chunk_size)
    Qn, Cn = _check_inputs(Q, C, chunk)
    n, m = Qn.shape[0], Cn.shape[0]
    ks = tuple(_check_k(k, "ks entry") for k in ks)
    if gold is None:
        if n != m:
            raise ValueError(f"gold=None means row i matches row i, but Q has {n} rows and C has {m}")
        gold_arr = np.arange(n, dtype=np.int64)
    else:
        gold_arr = np.asarray(gold)
        if gold_arr.shape != (n,) or gold_arr.dtype.kind not in "iu":
            raise ValueError(f"gold must be {n} integer indices into C, got shape {gold_arr.shape} "
                             f"dtype {gold_arr.dtype}")
        gold_arr = gold_arr.astype(np.int64)
        if gold_arr.min() < 0 or gold_arr.max() >= m:
            raise ValueError(f"gold indices must lie in [0, {m}), got range "
                             f"[{gold_arr.min()}, {gold_arr.max()}]")
    qgroup = _group_ids(query_texts, n, "query_texts")
    cgroup = _group_ids(candidate_texts, m, "candidate_texts")

    scorer = _make_scorer(Qn, Cn, method, neighbourhood_k, chunk, show_progress)

    # Best score among each row's correct partners, from row-wise dot products.
    qi, cj, codes, n_cg = _correct_pairs(qgroup, cgroup, gold_arr)
    pair_scores = np.empty(qi.size, dtype=np.float32)
    step = max(chunk * 8, 1)
    for s0, s1 in _blocks(qi.size, step):
        cos = np.einsum("ij,ij->i", Qn[qi[s0:s1]], Cn[cj[s0:s1]])
        pair_scores[s0:s1] = scorer.pairs(cos, qi[s0:s1], cj[s0:s1])
    best_q = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best_q, qi, pair_scores)
    best_c = np.full(m, -np.inf, dtype=np.float32)
    np.maximum.at(best_c, cj, pair_scores)
    has_c = np.isfinite(best_c)
    best_c[~has_c] = np.inf  # candidates nobody maps to: counted against nothing, then dropped
    tol_q = (_TIE_RTOL * np.maximum(1.0, np.abs(best_q))).astype(np.float32)
    tol_c = np.where(has_c, _TIE_RTOL * np.maximum(1.0, np.abs(np.where(has_c, best_c, 0))), 0).astype(np.float32)

    # One scan over the matrix counts, for every row and column, the entries that
    # beat (or tie with, if wrong) its best correct partner.
    ahead_q = np.zeros(n, dtype=np.int64)
    ahead_c = np.zeros(m, dtype=np.int64)
    n_blocks = -(-n // chunk)
    for q0, q1 in progress(_blocks(n, chunk), total=n_blocks, desc=f"retrieval ({method})",
                           show=show_progress, unit="block"):
        qs = slice(q0, q1)
        bq, tq = best_q[qs, None], tol_q[qs, None]
        for c0, c1 in _blocks(m, chunk):
            cs = slice(c0, c1)
            S = scorer.block(Qn[qs] @ Cn[cs].T, qs, cs).astype(np.float32, copy=False)
            ahead_q[qs] += np.count_nonzero(S > bq + tq, axis=1)
            r, c = np.nonzero(np.abs(S - bq) <= tq)
            wrong = ~_is_correct(qgroup[q0 + r], cgroup[c0 + c], codes, n_cg)
            ahead_q[qs] += np.bincount(r[wrong], minlength=q1 - q0)
            if both_directions:
                bc, tc = best_c[None, cs], tol_c[None, cs]
                ahead_c[cs] += np.count_nonzero(S > bc + tc, axis=0)
                r, c = np.nonzero(np.abs(S - bc) <= tc)
                wrong = ~_is_correct(qgroup[q0 + r], cgroup[c0 + c], codes, n_cg)
                ahead_c[cs] += np.bincount(c[wrong], minlength=c1 - c0)

    result: dict[str, Any] = {
        "method": method,
        "neighbourhood_k": None if method == "cosine" else int(neighbourhood_k),
        "n_queries": int(n),
        "n_candidates": int(m),
        "q2c": _summarise(ahead_q + 1, ks),
    }
    accs = [result["q2c"]["accuracy"]]
    if both_directions:
        result["c2q"] = _summarise(ahead_c[has_c] + 1, ks)
        if "accuracy" in result["c2q"]:
            accs.append(result["c2q"]["accuracy"])
    result["accuracy"] = float(np.mean(accs))
    return result
