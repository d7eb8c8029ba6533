"""The Ray Data path (encoder actors, per-block statistics) gives the same mapper as the local path."""
from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from langalign.encoders import FunctionEncoder  # noqa: E402
from langalign.mappers import LinearMapper, ProcrustesMapper  # noqa: E402

DIM = 12
_A = (np.eye(DIM) + 0.3 * np.random.default_rng(5).standard_normal((DIM, DIM))).astype(np.float32)


def _vec(texts, salt=""):
    out = np.empty((len(texts), DIM), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256((salt + t).encode()).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).standard_normal(DIM)
    return out


def _src(texts):
    return _vec(texts)


def _tgt(texts):
    return _vec(texts) @ _A + 0.3 * _vec(texts, "n") + 0.5


SRC = FunctionEncoder(_src, "toy-src", DIM)
TGT = FunctionEncoder(_tgt, "toy-tgt", DIM)


@pytest.fixture(scope="module")
def ray_local():
    import ray.cloudpickle

    # Test-module functions must travel by value: workers cannot import this file.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def texts():
    src = [f"sentence number {i}" for i in range(700)]
    tgt = [f"phrase {i}" for i in range(700)]
    return src, tgt


@pytest.fixture(scope="module")
def encoded(ray_local, texts):
    from langalign.scale.ray_backend import dataset_from_pairs, encode_dataset

    ds = dataset_from_pairs(*texts, num_blocks=5)
    ds = encode_dataset(ds, SRC, text_column="source", output_column="x", concurrency=2, batch_size=64,
                        num_cpus=0.5)
    ds = encode_dataset(ds, TGT, text_column="target", output_column="y", concurrency=1, batch_size=100,
                        num_cpus=0.5)
    return ds.materialize()


def test_encoding_matches_local(encoded, texts):
    rows = sorted(encoded.take_all(), key=lambda r: r["row"])
    X = np.stack([r["x"] for r in rows])
    # Equal up to float32 rounding: a matrix product over a batch of 64 rows may sum in another
    # order (BLAS blocking) than over all rows at once.
    np.testing.assert_allclose(X, SRC.encode(texts[0]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack([r["y"] for r in rows]), TGT.encode(texts[1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mapper", [LinearMapper(), LinearMapper(alpha=2.0), ProcrustesMapper(normalize=True)],
                         ids=["linear-auto", "linear-fixed", "procrustes-normalize"])
def test_ray_fit_equals_local_fit(encoded, texts, mapper):
    from langalign.scale.ray_backend import fit_mapper_ray

    local = mapper.clone().fit(SRC.encode(texts[0]), TGT.encode(texts[1]))
    dist = fit_mapper_ray(mapper.clone(), encoded, x_col="x", y_col="y", index_col="row")
    np.testing.assert_allclose(dist.coef_, local.coef_, rtol=1e-5, atol=1e-6)
    assert dist.n_pairs_ == local.n_pairs_ == 700
    if isinstance(mapper, LinearMapper):
        assert dist.choice_ == local.choice_
        np.testing.assert_allclose(list(dist.cv_scores_.values()), list(local.cv_scores_.values()), rtol=1e-6)


def test_shuffled_blocks_keep_folds(encoded, texts):
    """Blocks in another order (and rows shuffled) still give the local folds, via the row index."""
    from langalign.scale.ray_backend import fit_mapper_ray

    shuffled = encoded.random_shuffle(seed=1).repartition(3)
    local = LinearMapper().fit(SRC.encode(texts[0]), TGT.encode(texts[1]))
    dist = fit_mapper_ray(LinearMapper(), shuffled, x_col="x", y_col="y")
    np.testing.assert_allclose(dist.coef_, local.coef_, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="row index"):
        fit_mapper_ray(LinearMapper(), shuffled, x_col="x", y_col="y", index_col=None)
