"""ContrastiveMapper (InfoNCE over in-batch negatives + an MSE term, on top of ridge) on small synthetic arrays."""
import numpy as np
import pytest

import langalign as la
from langalign.mappers import make_mapper
from langalign.mappers.contrastive import ContrastiveMapper

FAST = dict(epochs=40, batch_size=64, patience=5, seed=0, device="cpu")


def rotated_pairs(n=400, d=16, noise=0.3, seed=0):
    """Y = X rotated + noise, with a few directions where the noise is large (where ridge is blurred)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    Y = (np.tanh(X @ Q) * 2 + noise * rng.normal(size=(n, d))).astype(np.float32)  # not linear: room to learn
    return X, Y


def top1(mapped, Y):
    A = mapped / np.linalg.norm(mapped, axis=1, keepdims=True)
    B = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    return float(np.mean((A @ B.T).argmax(1) == np.arange(len(A))))


def test_make_mapper_name_and_registry():
    m = make_mapper("contrastive", epochs=3)
    assert isinstance(m, ContrastiveMapper) and m.epochs == 3
    assert la.ContrastiveMapper is ContrastiveMapper
    with pytest.raises(ValueError, match="unknown parameter"):
        make_mapper("contrastive", loss="mse")  # the loss is what the class is; not a parameter


@pytest.mark.parametrize("bad", [dict(mse_weight=-1.0), dict(temperature=0.0), dict(hidden_dim=-1),
                                 dict(batch_size=1)])
def test_bad_parameters_are_refused_at_fit(bad):
    X, Y = rotated_pairs(n=40)
    with pytest.raises(ValueError, match=next(iter(bad))):
        ContrastiveMapper(**{**FAST, **bad}).fit(X, Y)


def test_starts_at_ridge_and_never_ends_worse_on_held_out_pairs():
    X, Y = rotated_pairs()
    m = ContrastiveMapper(**FAST).fit(X, Y)
    assert m.history_[0]["epoch"] == 0
    assert m.best_val_loss_ <= m.history_[0]["val_loss"] + 1e-9
    # epoch 0 is exactly the ridge base (zero-initialised correction)
    zero = ContrastiveMapper(**{**FAST, "epochs": 0}).fit(X, Y)
    np.testing.assert_allclose(zero.transform(X), zero.linear_.transform(X), atol=1e-6)


def test_retrieval_beats_ridge_where_the_map_is_not_linear():
    X, Y = rotated_pairs(n=600, seed=1)
    rng = np.random.default_rng(2)
    idx = rng.permutation(len(X))
    tr, te = idx[:450], idx[450:]
    ridge = make_mapper("ridge").fit(X[tr], Y[tr])
    con = ContrastiveMapper(**{**FAST, "hidden_dim": 64, "epochs": 80}).fit(X[tr], Y[tr])
    assert top1(con.transform(X[te]), Y[te]) >= top1(ridge.transform(X[te]), Y[te])


@pytest.mark.parametrize("params", [dict(), dict(hidden_dim=32), dict(mse_weight=0.0, residual=False)])
def test_fixed_seed_repeats_and_save_load_round_trip(tmp_path, params):
    X, Y = rotated_pairs(n=120)
    a = ContrastiveMapper(**{**FAST, "epochs": 5, **params}).fit(X, Y)
    b = ContrastiveMapper(**{**FAST, "epochs": 5, **params}).fit(X, Y)
    assert np.array_equal(a.transform(X), b.transform(X))
    align = la.LangAlign(None, None, mapper=a.clone()).fit_embeddings(X, Y)
    align.save(tmp_path / "al")
    back = la.LangAlign.load(tmp_path / "al")
    assert type(back.forward_).__name__ == "ContrastiveMapper"
    np.testing.assert_array_equal(back.forward_.transform(X), align.forward_.transform(X))
    np.testing.assert_array_equal(back.reverse_.transform(Y), align.reverse_.transform(Y))


def test_infonce_term_ignores_scale_and_mse_term_does_not():
    import torch

    m = ContrastiveMapper(mse_weight=0.0, temperature=0.1)
    p = torch.randn(8, 4)
    t = torch.randn(8, 4)
    assert torch.isclose(m._loss(p, t), m._loss(3.0 * p, t))
    m2 = ContrastiveMapper(mse_weight=2.0, temperature=0.1)
    assert torch.isclose(m2._loss(p, t), m._loss(p, t) + 2.0 * ((p - t) ** 2).sum(1).mean())
