"""Exact fitting from shards equals the in-memory fit; neural mappers train from streamed shards."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langalign.mappers import LinearMapper, ProcrustesMapper
from langalign.mappers.neural import AutoEncoderMapper, MLPMapper
from langalign.scale.sharded_fit import fit_mapper_from_shards, fit_neural_from_shards
from langalign.scale.streaming import ShardError, _save_npy_atomic, encode_to


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



@pytest.mark.parametrize("normalize", [False, True])
def test_sharded_shrunk_procrustes_equals_in_memory(tmp_path, normalize):
    # Equal dimensions: the shrinkage toward the identity is cross-validated from per-fold
    # sums, so the shards must land in the same folds as the in-memory rows.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    Y = X + 0.8 * rng.standard_normal((300, 12)).astype(np.float32) + 0.2
    write_array_shards(tmp_path / "x", X, 37)
    write_array_shards(tmp_path / "y", Y, 100)
    mem = ProcrustesMapper(normalize=normalize).fit(X, Y)
    sh = fit_mapper_from_shards(ProcrustesMapper(normalize=normalize), tmp_path / "x", tmp_path / "y")
    assert sh.choice_ == mem.choice_ and len(mem.cv_scores_) > 2
    np.testing.assert_allclose(list(sh.cv_scores_.values()), list(mem.cv_scores_.values()), rtol=1e-6)
    np.testing.assert_allclose(sh.transform(X), mem.transform(X), rtol=1e-5, atol=1e-5)

def test_mismatched_or_unsupported(tmp_path, pairs, shard_dirs):
    X, _ = pairs
    write_array_shards(tmp_path / "short", X[:10], 5)
    with pytest.raises(ShardError, match="row-aligned"):
        fit_mapper_from_shards(LinearMapper(), shard_dirs[0], tmp_path / "short")
    from langalign.mappers import CenteringMapper

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


# ---------------------------------------------------------------- held-out rows and LangAlign.fit_shards

def test_held_out_mask_is_chunk_invariant_and_has_the_asked_share():
    from langalign.scale.sharded_fit import _val_mask, held_out_mask

    whole = held_out_mask(0, 200_000, 0.1)
    parts = np.concatenate([held_out_mask(0, 777, 0.1), held_out_mask(777, 200_000 - 777, 0.1)])
    assert np.array_equal(whole, parts)
    assert abs(whole.mean() - 0.1) < 0.005
    assert not held_out_mask(0, 1000, 0.0).any()
    # independent of the neural trainer's validation rows (different hash)
    both = (whole & _val_mask(0, 200_000, 0.1)).mean()
    assert abs(both - 0.01) < 0.002


def test_held_out_rows_are_left_out_of_the_exact_fit(pairs, shard_dirs):
    from langalign.scale.sharded_fit import held_out_mask

    X, Y = pairs
    keep = ~held_out_mask(0, X.shape[0], 0.2)
    mem = LinearMapper().fit(X[keep], Y[keep])
    sh = fit_mapper_from_shards(LinearMapper(), *shard_dirs, held_out=0.2)
    assert sh.n_pairs_ == int(keep.sum()) < X.shape[0]
    np.testing.assert_allclose(sh.coef_, mem.coef_, rtol=1e-5, atol=1e-6)
    assert sh.choice_ == mem.choice_
    with pytest.raises(ValueError, match="held_out"):
        fit_mapper_from_shards(LinearMapper(), *shard_dirs, held_out=1.0)


def test_langalign_fit_shards_equals_fit_embeddings(pairs, shard_dirs):
    from langalign import LangAlign

    X, Y = pairs
    sh = LangAlign("rows", "rows", held_out=0.0).fit_shards(*shard_dirs)
    mem = LangAlign("rows", "rows", held_out=0.0).fit_embeddings(X, Y)
    np.testing.assert_allclose(sh.to_target(X[:50]), mem.to_target(X[:50]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sh.to_source(Y[:50]), mem.to_source(Y[:50]), rtol=1e-5, atol=1e-5)
    assert sh.training_["n_pairs"] == 1500 and sh.training_["n_held_out"] == 0 and sh.scores_ == {}


def test_langalign_fit_shards_holds_out_scores_and_saves(tmp_path, pairs, shard_dirs):
    from langalign import LangAlign
    from langalign.scale.sharded_fit import held_out_mask

    X, Y = pairs
    al = LangAlign("rows", "rows", held_out=0.1).fit_shards(*shard_dirs)
    held = held_out_mask(0, X.shape[0], 0.1)
    assert al.training_["n_held_out"] == int(held.sum()) > 100
    assert al.scores_["n"] == int(held.sum())
    # the scores are those of the held-out rows, which the maps never saw
    ref = al.score_embeddings(X[held], Y[held])
    assert al.scores_["forward"] == ref["forward"] and "reverse" in al.scores_
    np.testing.assert_allclose(al.forward_.coef_, LinearMapper().fit(X[~held], Y[~held]).coef_, rtol=1e-5,
                               atol=1e-6)
    back = LangAlign.load(al.save(tmp_path / "al"))
    np.testing.assert_array_equal(back.to_target(X[:5]), al.to_target(X[:5]))
    assert back.training_["data"] == "shards"


def test_fit_shards_checks_the_encoders(pairs, shard_dirs):
    from langalign import EncoderMismatchError, LangAlign

    with pytest.raises(EncoderMismatchError, match="holds vectors of encoder 'rows'"):
        LangAlign("use-multilingual", "rows").fit_shards(*shard_dirs)
    al = LangAlign("use-multilingual", "rows", held_out=0.0)
    al.force = True
    with pytest.warns(RuntimeWarning, match="ignored: force=True"):
        al.fit_shards(*shard_dirs)


@pytest.fixture(scope="module")
def short_dir(pairs, shard_dirs):
    X, _ = pairs
    write_array_shards(shard_dirs[0].parent / "short", X[:100], 64)


def test_fit_shards_checks_row_counts_and_completeness(short_dir, shard_dirs):
    from langalign import LangAlign
    from langalign.scale.streaming import MANIFEST

    short = shard_dirs[0].parent / "short"
    with pytest.raises(ShardError, match="row-aligned"):
        LangAlign("rows").fit_shards(shard_dirs[0], short)
    m = json.loads((short / MANIFEST).read_text())
    (short / MANIFEST).write_text(json.dumps({**m, "complete": False}))
    try:  # an interrupted encode: say so, not "rows differ"
        with pytest.raises(ShardError, match="incomplete"):
            LangAlign("rows").fit_shards(shard_dirs[0], short)
    finally:
        (short / MANIFEST).write_text(json.dumps(m))


def test_neural_from_shards_too_few_training_rows(tmp_path, pairs):
    X, Y = pairs
    write_array_shards(tmp_path / "x", X[:12], 8)
    write_array_shards(tmp_path / "y", Y[:12], 8)
    with pytest.raises(ValueError, match="for training after the validation split"):
        fit_neural_from_shards(MLPMapper(hidden_dim=8, n_layers=2, epochs=1, val_fraction=0.95, device="cpu"),
                               tmp_path / "x", tmp_path / "y")


def test_neural_shards_resume_matches_uninterrupted(tmp_path, monkeypatch, pairs, shard_dirs):
    from _reliability_helpers import interrupting_save

    from langalign.mappers import checkpoint as ck

    kw = dict(hidden_dim=16, n_layers=2, epochs=5, patience=10, batch_size=64, device="cpu", seed=1)
    X, _ = pairs
    ref = fit_neural_from_shards(MLPMapper(**kw), *shard_dirs, shuffle_rows=300, held_out=0.1)
    orig = ck.save
    monkeypatch.setattr(ck, "save", interrupting_save(orig, 2))
    with pytest.raises(KeyboardInterrupt):
        fit_neural_from_shards(MLPMapper(**kw), *shard_dirs, shuffle_rows=300, held_out=0.1,
                               checkpoint_dir=tmp_path / "ck")
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["epoch-00002"]
    saved = []

    def record(folder, key, **k):
        saved.append(k["epoch"])
        orig(folder, key, **k)

    monkeypatch.setattr(ck, "save", record)
    got = fit_neural_from_shards(MLPMapper(**kw), *shard_dirs, shuffle_rows=300, held_out=0.1,
                                 checkpoint_dir=tmp_path / "ck", resume=True)
    monkeypatch.setattr(ck, "save", orig)
    assert saved == [3, 4, 5]  # it continued after epoch 2, it did not start again
    np.testing.assert_array_equal(got.transform(X[:20]), ref.transform(X[:20]))
    assert json.dumps(got.history_) == json.dumps(ref.history_)  # NaN-safe comparison
    assert got.best_epoch_ == ref.best_epoch_
    # other shuffling windows are another run: refused, not mixed
    with pytest.raises(ck.CheckpointError, match="other training pairs"):
        fit_neural_from_shards(MLPMapper(**kw), *shard_dirs, shuffle_rows=200, held_out=0.1,
                               checkpoint_dir=tmp_path / "ck", resume=True)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(12, 200), shard_x=st.integers(1, 64), shard_y=st.integers(1, 64),
       held_out=st.sampled_from([0.0, 0.1, 0.3]), seed=st.integers(0, 2**16))
def test_sharded_fit_with_held_out_matches_in_memory_on_kept_rows(tmp_path_factory, n, shard_x, shard_y,
                                                                   held_out, seed):
    from langalign.scale.sharded_fit import held_out_mask

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    Y = (X @ rng.standard_normal((6, 5)) + 0.5 * rng.standard_normal((n, 5))).astype(np.float32)
    keep = ~held_out_mask(0, n, held_out)
    if keep.sum() < 8:
        return
    d = tmp_path_factory.mktemp("prop")
    write_array_shards(d / "x", X, shard_x)
    write_array_shards(d / "y", Y, shard_y)
    for mapper in (LinearMapper(), ProcrustesMapper()):
        sh = fit_mapper_from_shards(mapper.clone(), d / "x", d / "y", held_out=held_out)
        mem = mapper.clone().fit(X[keep], Y[keep])
        np.testing.assert_allclose(sh.transform(X), mem.transform(X), rtol=1e-4, atol=1e-4)
