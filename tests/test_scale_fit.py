"""Exact fitting from shards equals the in-memory fit; neural mappers train from streamed shards."""
from __future__ import annotations

import numpy as np
import pytest

from langalign.mappers.linear import LinearMapper, ProcrustesMapper
from langalign.mappers.neural import AutoEncoderMapper, MLPMapper
from langalign.sharded_fit import fit_mapper_from_shards, fit_neural_from_shards
from langalign.streaming import ShardError, _save_npy_atomic, encode_to


def write_array_shards(path, A: np.ndarray, shard_size: int) -> None:
    """Shard an in-memory array through encode_to with an encoder that looks rows up by index."""
    from langalign.encoders import FunctionEncoder

    enc = FunctionEncoder(lambda texts: A[[int(t) for t in texts]], "rows", A.shape[1])
    encode_to(enc, path, (str(i) for i in range(A.shape[0])), shard_size=shard_size)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    n, d_in, d_out = 1500, 24, 20
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    W = rng.standard_normal((d_in, d_out)).astype(np.float32) / 5
    Y = (X @ W + 0.3 * rng.standard_normal((n, d_out)) + 1.0).astype(np.float32)
    return X, Y


@pytest.fixture(scope="module")
def shard_dirs(pairs, tmp_path_factory):
    X, Y = pairs
    root = tmp_path_factory.mktemp("pairs")
    write_array_shards(root / "x", X, 128)
    write_array_shards(root / "y", Y, 500)  # different shard sizes on the two sides
    return root / "x", root / "y"


@pytest.mark.parametrize("mapper", [
    LinearMapper(),                       # alpha="auto": per-fold CV sums must match
    LinearMapper(alpha=0.5),
    LinearMapper(alpha="auto", cv=3, fit_intercept=False),
    ProcrustesMapper(),
    ProcrustesMapper(normalize=True),     # rows normalised per chunk
], ids=["linear-auto", "linear-fixed", "linear-auto-cv3-noint", "procrustes", "procrustes-normalize"])
def test_sharded_fit_equals_in_memory(mapper, pairs, shard_dirs):
    X, Y = pairs
    mem = mapper.clone().fit(X, Y)
    sh = fit_mapper_from_shards(mapper.clone(), *shard_dirs)
    np.testing.assert_allclose(sh.coef_, mem.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sh.transform(X), mem.transform(X), rtol=1e-5, atol=1e-5)
    assert sh.n_pairs_ == mem.n_pairs_ == X.shape[0]
    if isinstance(mapper, LinearMapper):
        assert sh.choice_ == mem.choice_
        assert sh.cv_scores_.keys() == mem.cv_scores_.keys()
        np.testing.assert_allclose(list(sh.cv_scores_.values()), list(mem.cv_scores_.values()), rtol=1e-6)


def test_same_dim_identity_prior(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 12)).astype(np.float32)
    Y = X + 0.1 * rng.standard_normal((400, 12)).astype(np.float32) + 0.2
    write_array_shards(tmp_path / "x", X, 64)
    write_array_shards(tmp_path / "y", Y, 64)
    mem = LinearMapper().fit(X, Y)
    sh = fit_mapper_from_shards(LinearMapper(), tmp_path / "x", tmp_path / "y")
    assert sh.choice_ == mem.choice_ and sh.prior_ == "identity"
    np.testing.assert_allclose(sh.coef_, mem.coef_, rtol=1e-5, atol=1e-6)


def test_mismatched_or_unsupported(tmp_path, pairs, shard_dirs):
    X, _ = pairs
    write_array_shards(tmp_path / "short", X[:10], 5)
    with pytest.raises(ShardError, match="row-aligned"):
        fit_mapper_from_shards(LinearMapper(), shard_dirs[0], tmp_path / "short")
    from langalign.mappers.linear import CenteringMapper

    with pytest.raises(TypeError, match="CenteringMapper"):
        fit_mapper_from_shards(CenteringMapper(), *shard_dirs)


def test_nan_in_shard_is_reported(tmp_path):
    A = np.ones((20, 4), dtype=np.float32)
    write_array_shards(tmp_path / "x", A, 10)
    write_array_shards(tmp_path / "y", A, 10)
    bad = A[:10].copy()
    bad[3, 1] = np.nan
    _save_npy_atomic(tmp_path / "x" / "shard-00001.npy", bad)
    with pytest.raises(ValueError, match="NaN"):
        fit_mapper_from_shards(LinearMapper(alpha=1.0), tmp_path / "x", tmp_path / "y")


@pytest.mark.parametrize("cls", [MLPMapper, AutoEncoderMapper])
def test_neural_from_shards(cls, pairs, shard_dirs):
    X, Y = pairs
    kw = dict(hidden_dim=32, epochs=4, batch_size=64, device="cpu", patience=10, seed=0)
    if cls is MLPMapper:
        kw["n_layers"] = 3
    else:
        kw["bottleneck_dim"] = 8
    m = fit_mapper_from_shards(cls(**kw), *shard_dirs, shuffle_rows=300)
    assert m.is_fitted and m.d_in_ == 24 and m.d_out_ == 20 and m.n_pairs_ == 1500
    assert len(m.history_) == 5 and np.isfinite(m.history_[-1]["train_loss"])
    # residual: the linear base came from exact statistics; epoch 0 equals the linear map
    assert m.history_[0]["val_loss"] >= m.best_val_loss_
    out = m.transform(X[:7])
    assert out.shape == (7, 20) and np.isfinite(out).all()
    # saving works like for an in-memory fit
    from langalign.mappers.base import BaseMapper  # noqa: F401
    assert m.state_dict()


def test_neural_plain_form_and_repeatability(pairs, shard_dirs):
    kw = dict(hidden_dim=16, n_layers=2, epochs=2, device="cpu", residual=False, seed=3)
    a = fit_neural_from_shards(MLPMapper(**kw), *shard_dirs, shuffle_rows=256)
    b = fit_neural_from_shards(MLPMapper(**kw), *shard_dirs, shuffle_rows=256)
    X, _ = pairs
    np.testing.assert_array_equal(a.transform(X[:5]), b.transform(X[:5]))
    assert a.linear_ is None
