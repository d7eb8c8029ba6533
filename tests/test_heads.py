"""Task heads: accuracy on easy data, pickle-free round trips, strict loading."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from langalign.errors import ArtefactError
from langalign.heads import (
    LogisticRegressionHead, MLPHead, head_from_state, make_head, pair_features,
)

FAST_MLP = dict(hidden=32, epochs=15, batch_size=32, lr=3e-3, patience=5)


def blobs(n_per_class=60, k=3, d=16, seed=0, labels=None, scale=1.0):
    """Well-separated Gaussian blobs (directions differ, so L2-normalising keeps them apart)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 4
    X = np.concatenate([c + rng.normal(size=(n_per_class, d)) for c in centers]) * scale
    y = np.repeat(np.arange(k), n_per_class)
    if labels is not None:
        y = np.asarray(labels)[y]
    perm = rng.permutation(len(y))
    return X[perm].astype(np.float32), y[perm]


def make(kind, **kw):
    return LogisticRegressionHead(**kw) if kind == "logreg" else MLPHead(**{**FAST_MLP, **kw})


def roundtrip(head):
    """Through JSON and safetensors bytes, exactly as an artefact folder would store it."""
    config = json.loads(json.dumps(head.get_config()))
    tensors = st_load(st_save(head.state_dict()))
    return head_from_state(config, tensors)


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
@pytest.mark.parametrize("labels", [None, ["neg", "neu", "pos"]])
def test_high_accuracy_on_separable_blobs(kind, labels):
    X, y = blobs(labels=labels)
    Xte, yte = blobs(n_per_class=30, seed=0, labels=labels)
    head = make(kind).fit(X, y)
    assert head.score(Xte, yte) > 0.95
    assert list(head.classes_) == sorted(set(y.tolist()))
    proba = head.predict_proba(Xte)
    assert proba.shape == (len(yte), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert (head.classes_[proba.argmax(1)] == head.predict(Xte)).all()


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
def test_binary_heads(kind):
    X, y = blobs(k=2, labels=["no", "yes"])
    head = make(kind).fit(X, y)
    assert head.score(X, y) > 0.95
    assert head.predict_proba(X).shape == (len(y), 2)
    if kind == "logreg":
        assert head.coef_.shape == (1, X.shape[1]) and head.decision_function(X).shape == (len(y),)


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
@pytest.mark.parametrize("normalize,standardize", [(True, True), (False, False), (True, False)])
def test_state_roundtrip_gives_identical_predictions(kind, normalize, standardize):
    X, y = blobs(k=3, labels=[10, 20, 30])
    head = make(kind, normalize=normalize, standardize=standardize).fit(X, y)
    loaded = roundtrip(head)
    assert type(loaded) is type(head)
    assert loaded.get_params() == head.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), head.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))
    assert loaded.predict(X).dtype.kind == "i"  # int labels stay ints through JSON


def test_logreg_state_dict_and_config_are_plain():
    X, y = blobs()
    assert set(LogisticRegressionHead().fit(X, y).state_dict()) == {"coef", "intercept"}  # default: no scaler
    head = LogisticRegressionHead(class_weight={0: 2.0, 1: 1.0}, standardize=True).fit(X, y)
    sd = head.state_dict()
    assert set(sd) == {"coef", "intercept", "mean", "scale"}
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    cfg = head.get_config()
    assert cfg["class"] == "LogisticRegressionHead" and cfg["n_features"] == 16 and cfg["classes"] == [0, 1, 2]
    json.dumps(cfg)
    assert roundtrip(head).class_weight == {0: 2.0, 1: 1.0}  # int keys survive JSON


def test_normalize_makes_head_scale_invariant():
    # Mapped embeddings often come out shorter than real ones; a normalised head does not care.
    X, y = blobs()
    head = LogisticRegressionHead().fit(X, y)
    np.testing.assert_array_equal(head.predict(0.1 * X), head.predict(X))


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
def test_corrupted_state_raises_artefact_error(kind):
    X, y = blobs()
    head = make(kind).fit(X, y)
    cfg, sd = head.get_config(), head.state_dict()
    name = "coef" if kind == "logreg" else "W1"

    bad = dict(sd, **{name: sd[name][:, :-1]})
    with pytest.raises(ArtefactError, match="shape"):
        head_from_state(cfg, bad)
    bad = {k: v.copy() for k, v in sd.items()}
    bad[name][0, 0] = np.nan
    with pytest.raises(ArtefactError, match="NaN"):
        head_from_state(cfg, bad)
    with pytest.raises(ArtefactError, match="missing"):
        head_from_state(cfg, {k: v for k, v in sd.items() if k != name})
    with pytest.raises(ArtefactError, match="unexpected"):
        head_from_state(cfg, dict(sd, extra=np.zeros(3, dtype=np.float32)))
    with pytest.raises(ArtefactError, match="dtype"):
        head_from_state(cfg, dict(sd, **{name: sd[name].astype(np.int32)}))
    with pytest.raises(ArtefactError, match="unknown head class"):
        head_from_state(dict(cfg, **{"class": "os.system"}), sd)
    with pytest.raises(ArtefactError, match="n_classes"):
        head_from_state(dict(cfg, classes=cfg["classes"][:2] + [99, 100]), sd)
    with pytest.raises(ArtefactError, match="unknown"):
        head_from_state(dict(cfg, params=dict(cfg["params"], bogus=1)), sd)
    with pytest.raises(ArtefactError, match="invalid"):
        head_from_state(dict(cfg, params=dict(cfg["params"], normalize="yes")), sd)
    other = MLPHead if kind == "logreg" else LogisticRegressionHead
    with pytest.raises(ArtefactError, match="not"):
        other.from_state(cfg, sd)


def test_mlp_is_deterministic_for_a_seed():
    X, y = blobs(seed=2)
    a = MLPHead(**FAST_MLP, seed=7, device="cpu").fit(X, y)
    b = MLPHead(**FAST_MLP, seed=7, device="cpu").fit(X, y)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    c = MLPHead(**FAST_MLP, seed=8, device="cpu").fit(X, y)
    assert not np.array_equal(a.state_dict()["W1"], c.state_dict()["W1"])


def test_mlp_early_stopping_keeps_best_epoch():
    X, _ = blobs()
    y = np.random.default_rng(1).integers(0, 2, size=len(X))  # pure noise: validation loss soon rises
    head = MLPHead(hidden=64, epochs=200, patience=3, lr=1e-2, batch_size=32, val_fraction=0.3).fit(X, y)
    assert head.n_epochs_ < 200  # stopped early
    assert head.n_epochs_ - head.best_epoch_ == 3
    assert head.best_epoch_ <= head.n_epochs_ and head.best_val_loss_ is not None
    no_val = MLPHead(hidden=16, epochs=4, val_fraction=0.0).fit(X, y)
    assert no_val.n_epochs_ == 4 and no_val.best_val_loss_ is None


def test_mlp_leaves_global_torch_state_alone():
    torch = pytest.importorskip("torch")
    X, y = blobs()
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPHead(**FAST_MLP).fit(X, y)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("kind", ["logreg", "mlp"])
def test_single_class_raises(kind):
    X = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="need at least 2 classes, got 1: 'x'"):
        make(kind).fit(X, ["x"] * 10)


def test_input_validation():
    X, y = blobs()
    head = LogisticRegressionHead()
    with pytest.raises(Exception, match="not fitted"):
        head.predict(X)
    head.fit(X, y)
    with pytest.raises(ValueError, match="dimension"):
        head.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        head.predict(np.full((2, 16), np.nan))
    with pytest.raises(TypeError, match="labels must be all integers or all strings"):
        LogisticRegressionHead().fit(X, y.astype(float) + 0.5)
    with pytest.raises(ValueError, match="rows"):
        LogisticRegressionHead().fit(X, y[:-1])
    with pytest.raises(ValueError, match="C must be"):
        LogisticRegressionHead(C=-1).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPHead(dropout=1.5).fit(X, y)


def test_make_head_and_params():
    assert isinstance(make_head("logreg", C=0.5), LogisticRegressionHead)
    mlp = make_head("mlp", hidden=8)
    assert isinstance(mlp, MLPHead) and mlp.get_params()["hidden"] == 8
    assert mlp.set_params(hidden=4).hidden == 4
    with pytest.raises(ValueError, match="unknown head"):
        make_head("svm")
    with pytest.raises(ValueError, match="no parameter"):
        make_head("logreg", hidden=3)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20), d=st.integers(1, 10), seed=st.integers(0, 1000))
def test_pair_features(n, d, seed):
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    F = pair_features(U, V)
    assert F.shape == (n, 4 * d) and F.dtype == np.float32
    np.testing.assert_allclose(F[:, :d], U, rtol=1e-6)
    np.testing.assert_allclose(F[:, d:2 * d], V, rtol=1e-6)
    np.testing.assert_allclose(F[:, 2 * d:3 * d], np.abs(U - V), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F[:, 3 * d:], U * V, rtol=1e-5, atol=1e-6)


def test_pair_features_shape_mismatch():
    with pytest.raises(ValueError, match="rows"):
        pair_features(np.zeros((3, 2)), np.zeros((4, 2)))


# -- defaults chosen by the dev protocol; heads saved under the old defaults -----------------

def _protocol_params(config: str) -> dict:
    prep, c = (config.removeprefix("mlp ").split(" ") + [None])[:2]
    params = {"normalize": prep.startswith("l2"), "standardize": "std" in prep}
    if c is not None:
        params["C"] = float(c.removeprefix("C="))
    return params


def test_head_defaults_are_the_ones_the_dev_protocol_chose():
    # results/head_protocol.json is written by bench/head_protocol.py (train/dev splits only);
    # changing a default without rerunning it, or rerunning it to another choice, fails here.
    from pathlib import Path

    meta = json.loads((Path(__file__).parents[1] / "results" / "head_protocol.json").read_text())["meta"]
    lr = LogisticRegressionHead().get_params()
    assert {k: lr[k] for k in ("normalize", "standardize", "C")} == _protocol_params(meta["chosen"])
    mlp = MLPHead().get_params()
    assert {k: mlp[k] for k in ("normalize", "standardize")} == _protocol_params(meta["mlp_chosen"])
    assert make_head("logreg").get_params() == lr


OLD_DEFAULT_PARAMS = {"C": 1.0, "max_iter": 1000, "class_weight": None, "normalize": True, "standardize": True}


def _old_default_head_artefact(d=6, k=3, seed=0):
    """What LogisticRegressionHead() saved before the defaults changed (L2 + standardise, C=1)."""
    rng = np.random.default_rng(seed)
    config = {"class": "LogisticRegressionHead", "format": 1, "params": dict(OLD_DEFAULT_PARAMS),
              "classes": ["a", "b", "c"][:k], "n_features": d, "n_classes": k}
    tensors = {"coef": rng.normal(size=(k, d)), "intercept": rng.normal(size=k),
               "mean": rng.normal(size=d) * 0.1, "scale": rng.uniform(0.5, 2.0, size=d)}
    return config, tensors


def _old_pipeline_predict(tensors, X):
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    Z = (Z - tensors["mean"]) / tensors["scale"]
    return np.array(["a", "b", "c"])[(Z @ tensors["coef"].T + tensors["intercept"]).argmax(1)]


def test_head_saved_with_the_old_defaults_loads_and_predicts_unchanged():
    config, tensors = _old_default_head_artefact()
    X = np.random.default_rng(1).normal(size=(200, 6))
    head = roundtrip_state(config, tensors)
    assert head.get_params() == OLD_DEFAULT_PARAMS  # the saved settings, not today's defaults
    np.testing.assert_array_equal(head.predict(X), _old_pipeline_predict(tensors, X))
    # A config that does not list the preprocessing (hand-written, truncated) means what
    # format 1 meant when it was written: L2 + standardise, C=1.
    params = {k: v for k, v in OLD_DEFAULT_PARAMS.items() if k not in ("normalize", "standardize", "C")}
    head = roundtrip_state({**config, "params": params}, tensors)
    assert head.get_params() == OLD_DEFAULT_PARAMS
    np.testing.assert_array_equal(head.predict(X), _old_pipeline_predict(tensors, X))


def test_classifier_saved_with_the_old_default_head_loads_unchanged(tmp_path):
    import langalign as la
    from langalign.transfer import CrossLingualClassifier

    X, y = blobs(d=16, labels=["a", "b", "c"])
    enc = la.FunctionEncoder(lambda t: np.zeros((len(t), 16)), "toy", 16)
    old = CrossLingualClassifier(enc, mode="zero-shot", head_params=dict(OLD_DEFAULT_PARAMS)).fit_embeddings(X, y)
    old.save(tmp_path / "clf")
    cfg = json.loads((tmp_path / "clf" / "config.json").read_text())
    cfg["head_params"] = {}  # as saved when these were the defaults: no explicit head_params
    (tmp_path / "clf" / "config.json").write_text(json.dumps(cfg))
    loaded = CrossLingualClassifier.load(tmp_path / "clf", enc, enc)
    assert loaded.head_.get_params() == OLD_DEFAULT_PARAMS
    np.testing.assert_array_equal(loaded.predict_embeddings(X), old.predict_embeddings(X))


def roundtrip_state(config, tensors):
    config = json.loads(json.dumps(config))
    return head_from_state(config, st_load(st_save({k: np.asarray(v) for k, v in tensors.items()})))
