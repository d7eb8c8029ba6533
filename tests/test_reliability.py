"""Issue 6, library level: encoder identity, safe loading, checkpoints, numerical guards."""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import langalign as la
from langalign import _version, artefacts
from langalign.errors import ArtefactError, EncoderMismatchError
from langalign.heads import make_head
from langalign.mappers import LinearMapper, MLPMapper, ProcrustesMapper, CenteringMapper
from langalign.mappers import checkpoint as ck
from langalign.mappers.stats import UnderdeterminedWarning
from langalign.transfer import CrossLingualClassifier

from _reliability_helpers import hashed_encoder, interrupting_save, pairs

TEXTS = [f"sentence number {i} about topic {i % 5}" for i in range(120)]


@pytest.fixture
def fitted(tmp_path):
    enc = hashed_encoder("fake-a")
    al = la.LangAlign(enc, enc, held_out=0).fit(TEXTS, TEXTS[::-1])
    al.save(tmp_path / "al")
    return enc, tmp_path / "al"


# ---------------------------------------------------------------- 1. encoder identity

def test_fingerprint_is_stable_cached_and_distinguishes_models():
    a1, a2, b = hashed_encoder("m", salt="a"), hashed_encoder("m", salt="a"), hashed_encoder("m", salt="b")
    assert a1.fingerprint() == a2.fingerprint() != b.fingerprint()
    assert a1.fingerprint() is a1.fingerprint()  # cached per object
    assert len(a1.identity()["probe"]) > 0


def test_artefact_records_encoder_identity(fitted):
    enc, path = fitted
    cfg = json.loads((path / "config.json").read_text())
    for side in ("source_encoder", "target_encoder"):
        assert cfg[side]["name"] == "fake-a" and cfg[side]["dim"] == 16
        assert cfg[side]["fingerprint"] == enc.fingerprint()


def test_same_name_different_model_is_refused_and_names_both(fitted):
    enc, path = fitted
    impostor = hashed_encoder("fake-a", salt="other")  # same name, other vectors
    with pytest.raises(EncoderMismatchError, match="probe sentences differ") as e:
        la.LangAlign.load(path, impostor, impostor)
    assert "fake-a" in str(e.value) and impostor.fingerprint() in str(e.value) and enc.fingerprint() in str(e.value)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        al = la.LangAlign.load(path, impostor, impostor, force=True)
    assert al.to_target(["x"]).shape == (1, 16)


def test_other_name_is_refused_lazily_when_loaded_by_name(fitted, monkeypatch):
    from langalign import encoders

    enc, path = fitted
    other = hashed_encoder("fake-b", salt="b")
    cfg = json.loads((path / "config.json").read_text())
    cfg["target_encoder"]["name"] = "fake-b"  # recorded name resolves to a different model
    (path / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setitem(encoders._cache, "fake-a", enc)
    monkeypatch.setitem(encoders._cache, "fake-b", other)
    al = la.LangAlign.load(path)  # nothing computed yet
    assert al.to_target(["hello"]).shape == (1, 16)  # source side is the recorded model
    with pytest.raises(EncoderMismatchError, match="fake-b"):
        al.to_source(["hello"])  # target side: fingerprint of fake-b != recorded one


def test_wrong_dimension_embeddings_name_the_encoder(fitted):
    enc, path = fitted
    al = la.LangAlign.load(path)
    with pytest.raises(EncoderMismatchError, match="'fake-a' \\(16-d\\)"):
        al.to_target(np.zeros((3, 8), np.float32))
    fresh = la.LangAlign.load(path)
    fresh._src = hashed_encoder("fake-a", dim=32)  # a recorded name that now resolves to a 32-d model
    with pytest.raises(EncoderMismatchError, match="dimensions differ"):
        fresh.to_target(["text"])


def test_classifier_refuses_other_encoder(tmp_path):
    enc = hashed_encoder("fake-a")
    clf = CrossLingualClassifier(enc, mode="zero-shot").fit(TEXTS, [i % 2 for i in range(len(TEXTS))])
    clf.save(tmp_path / "clf")
    with pytest.raises(EncoderMismatchError):
        CrossLingualClassifier.load(tmp_path / "clf", hashed_encoder("fake-a", salt="z"),
                                    hashed_encoder("fake-a", salt="z"))
    ok = CrossLingualClassifier.load(tmp_path / "clf", enc, enc)
    assert list(ok.predict(TEXTS[:4])) == list(clf.predict(TEXTS[:4]))


def test_shard_folder_refuses_same_name_other_model(tmp_path):
    from langalign.scale.streaming import ShardError, encode_to

    encode_to(hashed_encoder("fake-a"), tmp_path / "s", TEXTS[:10], shard_size=4)
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["fingerprint"]
    with pytest.raises(ShardError, match="fingerprint"):
        encode_to(hashed_encoder("fake-a", salt="z"), tmp_path / "s", TEXTS[:10], shard_size=4)


def test_cache_refuses_same_name_other_model(tmp_path):
    from langalign.scale.cache import CacheError, EmbeddingCache, cached_encode

    cache = EmbeddingCache(tmp_path / "c")
    first = hashed_encoder("fake-a")
    first.fingerprint()  # known (as after encode_to or saving an artefact): the cache records it
    cached_encode(first, TEXTS[:5], cache)
    with pytest.raises(CacheError, match="fingerprint"):
        cached_encode(hashed_encoder("fake-a", salt="z"), TEXTS[:5], cache)


# ---------------------------------------------------------------- 2. safe loading

def _aligner(tmp_path, X=None, Y=None):
    if X is None:
        X, Y = pairs(100, 8, 8)
    la.LangAlign("src", "tgt", held_out=0).fit_embeddings(X, Y).save(tmp_path / "al")
    return tmp_path / "al"


def test_config_path_fields_are_never_followed(tmp_path):
    path = _aligner(tmp_path)
    evil = tmp_path / "evil_model"
    evil.mkdir()
    cfg = json.loads((path / "config.json").read_text())
    cfg["source_encoder"]["name"] = str(evil)  # a model folder that would be loaded (and run)
    (path / "config.json").write_text(json.dumps(cfg))
    al = la.LangAlign.load(path)
    with pytest.raises(ArtefactError, match="local path"):
        al.to_target(["text"])


@pytest.mark.parametrize("which", ["config.json", "model.safetensors"])
def test_symlink_out_of_folder_is_refused(tmp_path, which):
    path = _aligner(tmp_path)
    outside = tmp_path / ("outside_" + which)
    os.replace(path / which, outside)
    os.symlink(outside, path / which)
    with pytest.raises(ArtefactError, match="outside the artefact folder"):
        la.LangAlign.load(path)


def test_non_float_and_nan_tensors_are_refused(tmp_path):
    path = _aligner(tmp_path)
    t = load_file(str(path / "model.safetensors"))
    k = next(iter(t))
    bad = dict(t)
    bad[k] = t[k].astype(np.int32)
    save_file(bad, str(path / "model.safetensors"))
    with pytest.raises(ArtefactError, match="dtype"):
        la.LangAlign.load(path)
    bad[k] = t[k].copy()
    bad[k].flat[0] = np.inf
    save_file(bad, str(path / "model.safetensors"))
    with pytest.raises(ArtefactError, match="NaN or inf"):
        la.LangAlign.load(path)


@pytest.mark.parametrize("mutate", [
    lambda c: c.update(source_encoder="x"),
    lambda c: c["forward"].update(d_in="sixteen"),
    lambda c: c.update(forward=[1, 2]),
    lambda c: c["forward"].update(fit_info=[]),
    lambda c: c.update(mapper_params=7),
])
def test_malformed_configs_give_artefact_error(tmp_path, mutate):
    path = _aligner(tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    mutate(cfg)
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError):
        la.LangAlign.load(path)


def test_older_versions_migrate_newer_refused(tmp_path, monkeypatch):
    path = _aligner(tmp_path)
    seen = []

    def v1_to_v2(cfg):
        seen.append(cfg["format_version"])
        return {**cfg, "migrated": True}

    monkeypatch.setattr(_version, "ARTEFACT_FORMAT_VERSION", 2)
    monkeypatch.setitem(artefacts.MIGRATIONS, 1, v1_to_v2)
    cfg, _ = artefacts.load_artefact(path, "aligner")
    assert seen == [1] and cfg["migrated"] and cfg["format_version"] == 2
    raw = json.loads((path / "config.json").read_text())
    raw["format_version"] = 3
    (path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ArtefactError, match="newer langalign"):
        la.LangAlign.load(path)


# ---------------------------------------------------------------- 3. checkpoints

P = dict(hidden_dim=32, n_layers=3, epochs=8, patience=3, batch_size=32, device="cpu", dropout=0.2)


def test_checkpoint_resume_matches_uninterrupted(tmp_path, monkeypatch):
    X, Y = pairs(240, 12, 10)
    ref = MLPMapper(**P).fit(X, Y)
    orig = ck.save
    monkeypatch.setattr(ck, "save", interrupting_save(orig, 2))
    with pytest.raises(KeyboardInterrupt):
        MLPMapper(**P).fit(X, Y, checkpoint_dir=tmp_path / "ck")
    monkeypatch.setattr(ck, "save", orig)
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["epoch-00002"]
    got = MLPMapper(**P).fit(X, Y, checkpoint_dir=tmp_path / "ck", resume=True)
    assert np.array_equal(ref.transform(X), got.transform(X))
    assert json.dumps(got.history_) == json.dumps(ref.history_)  # NaN-safe comparison
    assert got.best_epoch_ == ref.best_epoch_


def test_resume_refuses_other_data(tmp_path):
    X, Y = pairs(100, 8, 8)
    MLPMapper(**{**P, "epochs": 1}).fit(X, Y, checkpoint_dir=tmp_path / "ck")
    with pytest.raises(ck.CheckpointError, match="other training pairs"):
        MLPMapper(**P).fit(X + 1, Y, checkpoint_dir=tmp_path / "ck", resume=True)


def test_damaged_newest_checkpoint_falls_back(tmp_path):
    X, Y = pairs(100, 8, 8)
    MLPMapper(**{**P, "epochs": 2, "patience": 99}).fit(X, Y, checkpoint_dir=tmp_path / "ck")
    newest = tmp_path / "ck" / "epoch-00002"
    older = tmp_path / "ck" / "epoch-00001"
    import shutil
    shutil.copytree(newest, older)
    (newest / "state.safetensors").write_bytes(b"garbage")
    state = ck.load_latest(tmp_path / "ck", ck.run_key(X, Y, MLPMapper(**{**P, "epochs": 2, "patience": 99})
                                                     .get_params(), "MLPMapper"))
    assert state["path"].endswith("epoch-00001")


# ---------------------------------------------------------------- 4. numerical guards

@pytest.mark.parametrize("mapper", [LinearMapper(), ProcrustesMapper(), MLPMapper(**P)])
def test_constant_inputs_are_refused(mapper):
    X, Y = pairs(50, 8, 8)
    with pytest.raises(ValueError, match="identical"):
        mapper.fit(np.ones_like(X), Y)
    with pytest.raises(ValueError, match="identical"):
        mapper.clone().fit(X, np.zeros_like(Y))


def test_centering_accepts_constant_input_as_documented():
    X, Y = pairs(50, 8, 8)
    out = CenteringMapper().fit(np.ones_like(X), Y).transform(np.ones((1, 8)))
    assert np.allclose(out, Y.mean(0), atol=1e-5)


def test_procrustes_with_fewer_pairs_than_dims_warns():
    X, Y = pairs(5, 16, 16)
    with pytest.warns(UnderdeterminedWarning, match="5 pairs"):
        ProcrustesMapper().fit(X, Y)


def test_nan_rows_reported_in_every_entry_point():
    X, Y = pairs(60, 8, 8)
    Xb = X.copy()
    Xb[[3, 17]] = np.nan
    al = la.LangAlign("a", "b", held_out=0).fit_embeddings(X, Y)
    for call in (lambda: al.fit_embeddings(Xb, Y), lambda: al.to_target(Xb), lambda: al.to_source(Xb),
                 lambda: make_head("logreg").fit(Xb, [i % 2 for i in range(60)]),
                 lambda: CrossLingualClassifier(al, mode="reverse").fit_embeddings(Xb, [i % 2 for i in range(60)])):
        with pytest.raises(ValueError, match="2 row\\(s\\): 3, 17"):
            call()


def test_encoder_producing_nan_is_reported():
    from langalign.encoders import FunctionEncoder

    enc = FunctionEncoder(lambda t: np.array([[np.nan] * 4 if "bad" in s else [1.0] * 4 for s in t]), "nanny", 4)
    with pytest.raises(ValueError, match="rows 1"):
        enc.encode(["ok", "bad", "ok"])


def test_single_class_is_a_clear_error():
    X, _ = pairs(30, 8, 8)
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_head("logreg").fit(X, ["a"] * 30)
