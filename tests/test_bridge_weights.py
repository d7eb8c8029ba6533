"""Weighted fits and the English-only bridge with parallel pairs (fit_bridge), on synthetic data (fast)."""
import json

import numpy as np
import pytest

import langalign as la
from langalign.weights import BRIDGE_PAIR_SHARE, bridge_pair_weight
from langalign.mappers import LinearMapper, MLPMapper


def toy(name, dim, salt=""):
    def fn(texts):
        out = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(salt + t)) % (2**32))
            out.append(rng.normal(size=dim))
        return np.array(out, dtype=np.float32)
    return la.FunctionEncoder(fn, name=name, dim=dim)


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 8)).astype(np.float32)
    Y = (X @ rng.normal(size=(8, 6)) + 0.1 * rng.normal(size=(120, 6))).astype(np.float32)
    return X, Y


def fixed(**kw):
    return la.LangAlign(None, None, mapper="linear", mapper_params={"alpha": 1.0}, held_out=0.0, **kw)


def test_integer_weights_equal_repeated_rows(data):
    X, Y = data
    w = np.random.default_rng(2).integers(0, 4, size=len(X))
    a = fixed().fit_embeddings(X, Y, sample_weight=w)
    b = fixed().fit_embeddings(np.repeat(X, w, axis=0), np.repeat(Y, w, axis=0))
    np.testing.assert_allclose(a.to_target(X), b.to_target(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.to_source(Y), b.to_source(Y), rtol=1e-4, atol=1e-5)
    assert a.training_["weighted"] is True and a.training_["n_train"] == int(w.sum())


def test_unit_weights_are_the_unweighted_fit(data):
    X, Y = data
    a = la.LangAlign(None, None).fit_embeddings(X, Y, sample_weight=np.ones(len(X)))
    b = la.LangAlign(None, None).fit_embeddings(X, Y)
    np.testing.assert_array_equal(a.to_target(X), b.to_target(X))


def test_held_out_rows_are_never_fitted_on_whatever_their_weight(data):
    X, Y = data
    a = la.LangAlign(None, None, held_out=0.25).fit_embeddings(X, Y, sample_weight=np.full(len(X), 3))
    assert a.training_["n_held_out"] == 30 and a.training_["n_train"] == 3 * 90


@pytest.mark.parametrize("bad, msg", [(np.ones(5), "one weight per pair"), (np.full(120, -1), "whole numbers"),
                                      (np.full(120, 0.5), "whole numbers"), (np.zeros(120), "training rows")])
def test_bad_weights_are_refused(data, bad, msg):
    X, Y = data
    with pytest.raises(ValueError, match=msg):
        la.LangAlign(None, None, held_out=0.0).fit_embeddings(X, Y, sample_weight=bad)


def test_auto_pair_weight():
    assert bridge_pair_weight(1000, 0) == 1
    k = bridge_pair_weight(10_000, 100)
    assert abs(k * 100 / (k * 100 + 10_000) - BRIDGE_PAIR_SHARE) < 0.01
    assert bridge_pair_weight(10, 1000) == 1  # never below one copy
    assert bridge_pair_weight(10, 5, 7) == 7
    for bad in (0, 1.5, "many"):
        with pytest.raises(ValueError, match="pair_weight"):
            bridge_pair_weight(10, 5, bad)


def test_fit_bridge_english_only_is_fit_english_english():
    src, tgt = toy("toy-en", 8), toy("toy-multi", 6, "m")
    english = [f"sentence {i}" for i in range(80)]
    a = la.LangAlign(src, tgt, held_out=0.0).fit_bridge(english)
    b = la.LangAlign(src, tgt, held_out=0.0, mapper="bridge").fit(english, english)
    np.testing.assert_allclose(a.to_source(["x y"]), b.to_source(["x y"]), rtol=1e-5, atol=1e-6)
    assert a.training_["bridge"] == {"english": 80, "parallel": 0, "pair_weight": 1, "pair_weight_rule": "auto",
                                     "mapper": "bridge"}
    # the bridge's default map is the residual MLP chosen on dev splits; plain fit keeps the linear default
    assert isinstance(a.reverse_, MLPMapper) and (a.reverse_.hidden_dim, a.reverse_.n_layers) == (1024, 2)
    assert isinstance(la.LangAlign(src, tgt, held_out=0.0).fit(english, english).reverse_, LinearMapper)
    assert a.mapper == "default"  # fit_bridge does not rewrite the constructor's parameter


def test_fit_bridge_pairs_pull_the_map_toward_their_translations(tmp_path):
    src, tgt = toy("toy-en", 8), toy("toy-multi", 8, "m")
    english = [f"sentence {i}" for i in range(200)]
    par_en = [f"pair {i}" for i in range(40)]
    par_xx = [f"paar {i}" for i in range(40)]  # the "translations": other target vectors
    err = {}
    for w in (1, 20):
        a = la.LangAlign(src, tgt, held_out=0.0, mapper="linear",
                         mapper_params={"alpha": 1.0}).fit_bridge(english, (par_en, par_xx), pair_weight=w)
        err[w] = float(np.mean((a.to_target(par_en) - tgt.encode(par_xx)) ** 2))
    assert err[20] < err[1]  # more weight on the pairs: their translations are matched better
    a.save(tmp_path / "br")
    cfg = json.loads((tmp_path / "br" / "config.json").read_text())
    assert cfg["training"]["bridge"] == {"english": 200, "parallel": 40, "pair_weight": 20, "pair_weight_rule": "given",
                                         "mapper": "linear"}


def test_fit_bridge_bad_parallel():
    src, tgt = toy("toy-en", 8), toy("toy-multi", 6, "m")
    english = [f"s {i}" for i in range(30)]
    with pytest.raises(ValueError, match="differ in length"):
        la.LangAlign(src, tgt).fit_bridge(english, (["a", "b"], ["c"]))
    with pytest.raises(ValueError, match="a pair"):
        la.LangAlign(src, tgt).fit_bridge(english, ["a", "b", "c"])  # type: ignore[arg-type]


def test_full_benchmark_bridges_with_the_built_english_pool(monkeypatch, tmp_path):
    """A full benchmark run takes its bridge pool from the english-pool corpus when one is built."""
    import langalign.data as data
    from langalign.benchmark import tasks as T

    seen = {}

    def fake_pool(home=None, max_sentences=None, seed=0, **kw):
        seen.update(home=home, max_sentences=max_sentences, seed=seed)
        return [f"sentence {i}" for i in range(5)]

    monkeypatch.setattr(data, "load_english_pool", fake_pool)
    pool, desc = T.english_pool({}, tmp_path, 10_000, 3, quick=False, home=tmp_path)
    assert pool == [f"sentence {i}" for i in range(5)] and "english-pool corpus" in desc
    assert seen == {"home": tmp_path, "max_sentences": T.BRIDGE_POOL_CORPUS, "seed": 3}
