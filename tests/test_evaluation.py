"""Evaluation metrics: agreement with scikit-learn / brute force, and bounded memory."""
from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from langalign.evaluation import (
    alignment_scores, classification_report, cosine_pairs, format_report, knn, mcnemar,
    neighbourhood_means, orthogonality_deviation, retrieval_scores, retrieve, sts_scores,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- classification -------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:A single label was found")
@SETTINGS
@given(st.data())
def test_classification_report_matches_sklearn(data):
    n = data.draw(st.integers(1, 60))
    pool = data.draw(st.sampled_from([["a", "b", "c", "d"], [0, 1, 2], [3, 7]]))
    yt = data.draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    yp = data.draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    rep = classification_report(yt, yp)
    labels = sorted(set(yt) | set(yp))
    assert rep["labels"] == labels
    assert rep["n"] == n
    assert math.isclose(rep["accuracy"], skm.accuracy_score(yt, yp))
    assert math.isclose(rep["macro_f1"], skm.f1_score(yt, yp, average="macro", labels=labels, zero_division=0),
                        abs_tol=1e-12)
    p, r, f, s = skm.precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    for i, lab in enumerate(labels):
        pc = rep["per_class"][str(lab)]
        assert math.isclose(pc["precision"], p[i], abs_tol=1e-12)
        assert math.isclose(pc["recall"], r[i], abs_tol=1e-12)
        assert math.isclose(pc["f1"], f[i], abs_tol=1e-12)
        assert pc["support"] == s[i]
    assert rep["confusion_matrix"] == skm.confusion_matrix(yt, yp, labels=labels).tolist()
    json.dumps(rep)  # native types only


def test_classification_report_explicit_labels_and_format():
    rep = classification_report(["x", "y", "x", "z"], ["x", "x", "x", "z"], labels=["z", "x", "y"])
    assert rep["labels"] == ["z", "x", "y"]
    assert rep["confusion_matrix"] == [[1, 0, 0], [0, 2, 0], [0, 1, 0]]
    assert rep["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    text = format_report(rep)
    assert "macro avg" in text and "accuracy" in text and "confusion matrix" in text
    assert all(lab in text for lab in ("x", "y", "z"))


def test_classification_report_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        classification_report([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        classification_report([], [])


def test_mcnemar_hand_computed():
    y = np.ones(40, dtype=int)
    # b = 5 (A right, B wrong), c = 1: exact two-sided binomial p = 2 * P(X <= 1 | 6, 0.5) = 14/64.
    a = np.array([1] * 5 + [0] * 1 + [1] * 30 + [0] * 4)
    b = np.array([0] * 5 + [1] * 1 + [1] * 30 + [0] * 4)
    res = mcnemar(y, a, b)
    assert (res["b"], res["c"], res["method"]) == (5, 1, "exact")
    assert math.isclose(res["p_value"], 14 / 64)
    assert res["statistic"] == 1.0

    # b = 20, c = 10: chi2 = (|20 - 10| - 1)^2 / 30 = 2.7, p = P(chi2_1 > 2.7) = erfc(sqrt(2.7 / 2)).
    y = np.zeros(50, dtype=int)
    a = np.array([0] * 20 + [1] * 10 + [0] * 20)
    b = np.array([1] * 20 + [0] * 10 + [0] * 20)
    res = mcnemar(y, a, b)
    assert (res["b"], res["c"], res["method"]) == (20, 10, "chi2")
    assert math.isclose(res["statistic"], 2.7)
    assert math.isclose(res["p_value"], math.erfc(math.sqrt(2.7 / 2)), rel_tol=1e-9)


def test_mcnemar_no_discordant_pairs_and_symmetric_exact():
    y = ["a", "b", "a"]
    res = mcnemar(y, ["a", "a", "a"], ["a", "a", "a"])
    assert res["b"] == res["c"] == 0 and res["p_value"] == 1.0
    # b = c gives p = 1 (capped) in the exact test.
    res = mcnemar([1, 1], [1, 0], [0, 1])
    assert res["p_value"] == 1.0


# --- STS and alignment -----------------------------------------------------------------

def test_sts_scores_and_cosine_pairs():
    rng = np.random.default_rng(0)
    U = rng.normal(size=(50, 8))
    V = U + 0.1 * rng.normal(size=U.shape)
    cos = cosine_pairs(U, V)
    ref = np.sum(U * V, 1) / (np.linalg.norm(U, axis=1) * np.linalg.norm(V, axis=1))
    np.testing.assert_allclose(cos, ref, rtol=1e-5)
    gold = np.arange(50.0)
    res = sts_scores(gold ** 3, gold)  # monotone, not linear
    assert res["spearman"] == pytest.approx(1.0) and res["pearson"] < 1.0 and res["n"] == 50
    assert math.isnan(sts_scores(np.ones(5), np.arange(5))["spearman"])
    assert cosine_pairs(np.zeros((1, 3)), np.ones((1, 3)))[0] == 0.0
    with pytest.raises(ValueError):
        sts_scores([1.0, 2.0], [1.0])


def test_alignment_scores_and_orthogonality():
    rng = np.random.default_rng(1)
    T = rng.normal(size=(30, 6))
    res = alignment_scores(T, T)
    assert res["mse"] == pytest.approx(0.0) and res["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert alignment_scores(T, 2 * T)["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    Qm, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert orthogonality_deviation(Qm) < 1e-10
    assert orthogonality_deviation(Qm[:, :3]) < 1e-10  # tall, orthonormal columns
    assert orthogonality_deviation(Qm[:3, :]) < 1e-10  # wide, orthonormal rows
    assert orthogonality_deviation(np.zeros((4, 4))) == pytest.approx(1.0)
    assert orthogonality_deviation(2 * np.eye(3)) == pytest.approx(3.0)


# --- retrieval ----------------------------------------------------------------------------

def _margin_safe(method, *arrays):
    """For margin, shift data so cosines are positive, as with real (anisotropic) encoders.

    On isotropic random data a neighbourhood mean can be ~0, the margin's
    denominator then explodes and float32 vs float64 rounding decides the ranking.
    """
    if method != "margin":
        return arrays
    return tuple((a + 3.0).astype(np.float32) for a in arrays)


def _brute_scores(Q, C, method, k=10):
    Qn = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-30)
    Cn = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-30)
    S = (Qn @ Cn.T).astype(np.float64)
    if method == "cosine":
        return S
    kq, kc = min(k, S.shape[1]), min(k, S.shape[0])
    r_q = -np.sort(-S, axis=1)[:, :kq].mean(1)
    r_c = -np.sort(-S.T, axis=1)[:, :kc].mean(1)
    if method == "csls":
        return 2 * S - r_q[:, None] - r_c[None, :]
    return S / np.maximum((r_q[:, None] + r_c[None, :]) / 2, 1e-6)


def _brute_ranks(S, correct):
    """rank = 1 + #scores above the best correct one + #wrong ones tied with it."""
    best = np.where(correct, S, -np.inf).max(1)
    tol = 1e-5 * np.maximum(1, np.abs(best))[:, None]
    ahead = (S > best[:, None] + tol) | ((np.abs(S - best[:, None]) <= tol) & ~correct)
    return 1 + ahead.sum(1)


@SETTINGS
@given(n=st.integers(1, 40), m=st.integers(1, 40), d=st.integers(2, 8), k=st.integers(1, 12),
       chunk=st.integers(1, 16), method=st.sampled_from(["cosine", "csls", "margin"]),
       seed=st.integers(0, 2**16))
def test_chunked_retrieve_matches_brute_force(n, m, d, k, chunk, method, seed):
    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(n, d)).astype(np.float32)
    C = rng.normal(size=(m, d)).astype(np.float32)
    Q, C = _margin_safe(method, Q, C)
    S = _brute_scores(Q, C, method)
    top = retrieve(Q, C, k=k, method=method, chunk_size=chunk)
    kk = min(k, m)
    assert top.scores.shape == top.indices.shape == (n, kk)
    ref = -np.sort(-S, axis=1)[:, :kk]
    np.testing.assert_allclose(top.scores, ref, rtol=1e-4, atol=1e-4)
    # Indices are right up to ties: each returned index really has the returned score.
    np.testing.assert_allclose(np.take_along_axis(S, top.indices, 1), top.scores, rtol=1e-4, atol=1e-4)
    assert all(len(set(row)) == kk for row in top.indices.tolist())
    if method == "cosine":
        nn = knn(Q, C, k, chunk_size=chunk)
        np.testing.assert_allclose(nn.scores, ref, rtol=1e-5, atol=1e-5)
    r = neighbourhood_means(Q, C, k=k, chunk_size=chunk)
    np.testing.assert_allclose(r, -np.sort(-_brute_scores(Q, C, "cosine"), axis=1)[:, :kk].mean(1),
                               rtol=1e-4, atol=1e-5)


@SETTINGS
@given(n=st.integers(2, 30), m=st.integers(2, 30), d=st.integers(2, 6), chunk=st.integers(1, 11),
       method=st.sampled_from(["cosine", "csls", "margin"]), n_texts=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_chunked_retrieval_scores_match_brute_force(n, m, d, chunk, method, n_texts, seed):
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(m, d)).astype(np.float32)
    gold = rng.integers(0, m, size=n)
    Q = (C[gold] + rng.normal(scale=1.0, size=(n, d))).astype(np.float32)
    Q, C = _margin_safe(method, Q, C)
    qtexts = [f"q{t}" for t in rng.integers(0, n_texts, size=n)]
    ctexts = [f"c{t}" for t in rng.integers(0, n_texts, size=m)]
    res = retrieval_scores(Q, C, gold=gold, method=method, ks=(1, 3), query_texts=qtexts,
                           candidate_texts=ctexts, chunk_size=chunk)
    S = _brute_scores(Q, C, method)
    # Correct pairs: query group x candidate group linked by some gold pair.
    qa, ca = np.array(qtexts), np.array(ctexts)
    linked = {(qtexts[i], ctexts[g]) for i, g in enumerate(gold)}
    correct = np.array([[(qa[i], ca[j]) in linked for j in range(m)] for i in range(n)])
    ranks = _brute_ranks(S, correct)
    assert res["q2c"]["accuracy"] == pytest.approx(np.mean(ranks == 1))
    assert res["q2c"]["recall@3"] == pytest.approx(np.mean(ranks <= 3))
    assert res["q2c"]["mrr"] == pytest.approx(np.mean(1 / ranks))
    has = correct.any(0)
    ranks_c = _brute_ranks(S.T[has], correct.T[has])
    assert res["c2q"]["n"] == int(has.sum())
    assert res["c2q"]["accuracy"] == pytest.approx(np.mean(ranks_c == 1))
    assert res["c2q"]["mrr"] == pytest.approx(np.mean(1 / ranks_c))
    json.dumps(res)


@pytest.mark.parametrize("method", ["cosine", "csls", "margin"])
def test_identity_retrieval_with_small_noise(method):
    rng = np.random.default_rng(3)
    Q = rng.normal(size=(500, 32)).astype(np.float32)
    C = Q + 0.01 * rng.normal(size=Q.shape).astype(np.float32)
    res = retrieval_scores(Q, C, method=method, chunk_size=128)
    assert res["q2c"]["accuracy"] > 0.99 and res["c2q"]["accuracy"] > 0.99
    assert res["accuracy"] > 0.99 and res["q2c"]["mrr"] > 0.99
    top = retrieve(Q, C, k=1, method=method, chunk_size=100)
    assert np.mean(top.indices[:, 0] == np.arange(500)) > 0.99


def test_duplicate_candidates_count_as_correct():
    rng = np.random.default_rng(4)
    C = rng.normal(size=(6, 8)).astype(np.float32)
    C[5] = C[1]  # candidate 5 is a verbatim duplicate of candidate 1 ...
    ctexts = ["a", "b", "c", "d", "e", "b"]
    Q = C.copy()
    Q[1] = C[1] + 1e-3
    gold = np.array([0, 5, 2, 3, 4, 5])  # ... and gold points at 5, query 1 retrieves 1 or 5
    top = retrieve(Q, C, k=1)
    assert top.indices[1, 0] in (1, 5)
    plain = retrieval_scores(Q, C, gold=gold)
    dedup = retrieval_scores(Q, C, gold=gold, candidate_texts=ctexts)
    assert dedup["q2c"]["accuracy"] == 1.0
    assert plain["q2c"]["accuracy"] < 1.0  # without texts, the tie with the wrong copy counts against it
    # Reverse direction: candidate 1 has no gold query of its own; candidate 5 accepts query 1 or 5.
    assert dedup["c2q"]["n"] == 6 and dedup["c2q"]["accuracy"] == 1.0


def test_duplicate_queries_share_gold():
    C = np.eye(4, dtype=np.float32)
    Q = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    gold = np.array([0, 1, 2])  # query 2 duplicates query 1 but has another gold translation
    qt = ["x", "y", "y"]
    res = retrieval_scores(Q, C, gold=gold, query_texts=qt, both_directions=False)
    assert res["q2c"]["accuracy"] == 1.0
    assert retrieval_scores(Q, C, gold=gold, both_directions=False)["q2c"]["accuracy"] == pytest.approx(2 / 3)


def test_collapsed_embeddings_score_zero_not_one():
    # All-equal vectors tie everywhere; ties with wrong candidates count against the query.
    Q = np.ones((10, 4), dtype=np.float32)
    res = retrieval_scores(Q, Q, chunk_size=3)
    assert res["q2c"]["accuracy"] == 0.0 and res["q2c"]["mrr"] == pytest.approx(0.1)


def test_retrieval_input_errors():
    Q = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown retrieval method"):
        retrieve(Q, Q, method="dot")
    with pytest.raises(ValueError, match="gold=None"):
        retrieval_scores(Q, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="gold indices"):
        retrieval_scores(Q, Q, gold=[0, 1, 3])
    with pytest.raises(ValueError, match="dimension"):
        knn(Q, np.zeros((3, 5)), 1)
    with pytest.raises(ValueError, match="candidate_texts"):
        retrieval_scores(Q, Q, candidate_texts=["a"])


def test_large_retrieval_runs_in_bounded_memory():
    n, d = 20_000, 8
    rng = np.random.default_rng(5)
    Q = rng.normal(size=(n, d)).astype(np.float32)
    C = Q + 0.05 * rng.normal(size=(n, d)).astype(np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        top = retrieve(Q, C, k=5, method="cosine", chunk_size=1024)
        res = retrieval_scores(Q, C, method="cosine", ks=(1, 5), chunk_size=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = n * n * 4  # 1.6 GB
    assert peak < 100e6 < full_matrix  # measured ~17 MB; one 20k x 1024 slab alone is 80 MB
    assert top.indices.shape == (n, 5)
    assert res["q2c"]["accuracy"] > 0.9


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=60))
def test_cohen_kappa_matches_sklearn_and_gives_constant_predictions_no_credit(pairs):
    from langalign.evaluation import cohen_kappa

    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    if len(set(a)) == 1 or len(set(b)) == 1:
        assert cohen_kappa(a, b) == 0.0
    else:
        assert math.isclose(cohen_kappa(a, b), skm.cohen_kappa_score(a, b), abs_tol=1e-12)
