"""Distil mode (issue 24): a student learns a teacher's space from English alone; its vectors are recorded
as living in the teacher's space, so an index of teacher vectors answers them. Tiny random BERTs keep it fast."""
import json
import warnings

import numpy as np
import pytest

import langalign as la
from langalign.cli import main
from langalign.encoder_identity import vector_space
from langalign.errors import DataError, EncoderMismatchError
from langalign.tuning import EncoderTuner, TuningError
from test_tuning import build_tiny_model, toy_task, translate

FAST = dict(batch_size=8, lr=3e-3, seed=0, device="cpu", patience=None, freeze_embeddings=False, num_threads=1)


@pytest.fixture(scope="module", autouse=True)
def private_data_home(tmp_path_factory):
    """The teacher's vectors go through the embedding cache: keep it out of the user's data home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANGALIGN_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"student": str(build_tiny_model(root / "student", seed=0)),
                "teacher": str(build_tiny_model(root / "teacher", seed=1)),
                "teacher16": str(build_tiny_model(root / "teacher16", seed=2, hidden=16))}


@pytest.fixture(scope="module")
def english():
    return toy_task(48, 3)[0], toy_task(16, 4)[0]


def _mse(a, b):
    return float(np.mean((a - b) ** 2))


def test_distil_pulls_the_student_into_the_teachers_space(models, english, tmp_path):
    X, dev = english
    teacher = la.load_encoder(models["teacher"])
    base = la.load_encoder(models["student"])
    before = _mse(base.encode(dev), teacher.encode(dev))
    tuner = EncoderTuner(models["student"], "distil", teacher=models["teacher"], epochs=3, **FAST).fit(X)
    after = _mse(tuner.encoder_.encode(dev), teacher.encode(dev))
    assert after < 0.5 * before  # held-out English lands near the teacher's vectors
    ds = tuner.dev_scores_
    assert ds["metric"] == "mse" and ds["best"] < ds["before"] and "dev_top1" in ds
    out = tuner.save(tmp_path / "distilled")
    meta = json.loads((out / "langalign_tuning.json").read_text())
    assert meta["mode"] == "distil" and meta["parameters"]["teacher"] == models["teacher"]
    assert meta["vector_space"]["fingerprint"] == teacher.fingerprint() == meta["teacher"]["fingerprint"]
    loaded = la.load_encoder(str(out))
    assert vector_space(loaded)["fingerprint"] == teacher.fingerprint()
    assert vector_space(loaded)["name"] == teacher.name and loaded.fingerprint() != teacher.fingerprint()
    np.testing.assert_allclose(loaded.encode(dev[:4]), tuner.encoder_.encode(dev[:4]), atol=1e-5)


def test_an_index_of_teacher_vectors_answers_the_distilled_encoder_and_refuses_others(models, english, tmp_path):
    from langalign.index import SearchIndex

    X, dev = english
    EncoderTuner(models["student"], "distil", teacher=models["teacher"], epochs=1, **FAST).fit(X).save(
        tmp_path / "d")
    distilled = la.load_encoder(str(tmp_path / "d"))
    idx = SearchIndex(models["teacher"]).build(dev)
    hits = idx.search(dev[:3], top_k=2, encoder=distilled)
    assert len(hits) == 3 and all(len(h) == 2 for h in hits)
    from langalign.scale.cache import CachedEncoder

    assert idx.search(dev[:1], top_k=1, encoder=CachedEncoder(distilled))  # through the cache, too
    with pytest.raises(EncoderMismatchError, match="do not belong"):
        idx.search(dev[:1], encoder=la.load_encoder(models["student"]))  # the untuned student: another space
    with pytest.raises(ValueError, match="not both"):
        idx.search(dev[:1], encoder=distilled, aligner=object())


def test_translations_when_given_are_pulled_toward_the_teachers_english(models, english):
    X, dev = english
    teacher = la.load_encoder(models["teacher"])
    base = la.load_encoder(models["student"])
    before = _mse(base.encode(translate(dev)), teacher.encode(dev))
    tuner = EncoderTuner(models["student"], "distil", teacher=models["teacher"], epochs=3, **FAST).fit(
        X, translate(X), dev=(dev, translate(dev)))
    assert _mse(tuner.encoder_.encode(translate(dev)), teacher.encode(dev)) < 0.5 * before
    assert tuner.data_["translations"] and tuner.data_["dev_translations"]


def test_a_teacher_of_another_dimension_needs_the_start_map(models, english):
    X, _ = english
    with pytest.raises(TuningError, match="same dimension"):
        EncoderTuner(models["student"], "distil", teacher=models["teacher16"], epochs=1, **FAST).fit(X)
    tuner = EncoderTuner(models["student"], "distil", teacher=models["teacher16"], start_map=True, epochs=1,
                         **FAST).fit(X)
    assert tuner.encoder_.dim == 16 and tuner.start_map_["pairs"] == tuner.data_["n_train"]
    assert tuner.metadata()["vector_space"]["dim"] == 16


def test_the_start_map_starts_from_the_ridge_map(models, english):
    """With a zero learning rate the start map alone is trained: student(en) @ ridge is already near the teacher."""
    X, dev = english
    teacher = la.load_encoder(models["teacher"])
    base = la.load_encoder(models["student"])
    tuner = EncoderTuner(models["student"], "distil", teacher=models["teacher"], start_map=True, epochs=1,
                         **{**FAST, "lr": 1e-12}).fit(X)
    mapped = _mse(tuner.encoder_.encode(X), teacher.encode(X) / np.linalg.norm(teacher.encode(X), axis=1,
                                                                                keepdims=True))
    assert mapped < _mse(base.encode(X), teacher.encode(X))
    assert 0 < tuner.start_map_["train_cosine"] <= 1


def test_distil_settings_are_checked(models, english):
    X, _ = english
    with pytest.raises(TuningError, match="needs a teacher"):
        EncoderTuner(models["student"], "distil", **FAST).fit(X)
    with pytest.raises(TuningError, match="teacher is for distil mode"):
        EncoderTuner(models["student"], "task", teacher="minilm", **FAST).fit(X, ["a", "b"] * 24)
    with pytest.raises(TuningError, match="start_map is for distil mode"):
        EncoderTuner(models["student"], "parallel", start_map=True, **FAST).fit(X, translate(X))
    with pytest.raises(DataError, match="mismatched pairs"):
        EncoderTuner(models["student"], "distil", teacher=models["teacher"], **FAST).fit(X, translate(X)[:3])


def test_distil_resumes_from_its_checkpoint_to_the_same_weights(models, english, tmp_path):
    X, _ = english

    class Stop(Exception):
        pass

    def stop_after_one(epoch, logs):
        if epoch == 1:
            raise Stop

    kw = dict(teacher=models["teacher"], start_map=True, epochs=2, **FAST)
    with pytest.raises(Stop):
        EncoderTuner(models["student"], "distil", **kw).fit(X, checkpoint_dir=tmp_path / "ck", callback=stop_after_one)
    resumed = EncoderTuner(models["student"], "distil", **kw).fit(X, checkpoint_dir=tmp_path / "ck", resume=True)
    straight = EncoderTuner(models["student"], "distil", **kw).fit(X)
    assert resumed.resumed_from_ == 1
    np.testing.assert_allclose(resumed.encoder_.encode(X[:5]), straight.encoder_.encode(X[:5]), atol=1e-5)


def test_cli_tune_distil_from_a_pool_file(models, english, tmp_path, capsys):
    X, _ = english
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(X) + "\n", encoding="utf-8")
    out = tmp_path / "cli-distilled"
    rc = main(["tune", "--base", models["student"], "--mode", "distil", "--teacher", models["teacher"],
               "--pool", str(pool), "--epochs", "1", "--batch-size", "8", "--lr", "3e-3", "--device", "cpu",
               "--no-freeze-embeddings", "--output", str(out)])
    assert rc == 0 and "distil" in capsys.readouterr().out
    meta = json.loads((out / "langalign_tuning.json").read_text())
    assert meta["data"]["n_train"] + meta["data"]["n_dev"] == len(X)
    rc = main(["tune", "--base", models["student"], "--mode", "task", "--teacher", "minilm", "--data", str(pool),
               "--output", str(tmp_path / "x")])
    assert rc != 0 and "--teacher and --pool are for --mode distil" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_serve_lists_a_distilled_encoder_in_its_teachers_space(models, english, tmp_path):
    from langalign.serving.config import ServeConfig
    from langalign.serving.registry import Registry

    X, _ = english
    EncoderTuner(models["student"], "distil", teacher=models["teacher"], epochs=1, **FAST).fit(X).save(
        tmp_path / "d")
    reg = Registry(ServeConfig(encoders=[str(tmp_path / "d")])).load()
    cards = [c["langalign"] for c in reg.model_cards() if c["langalign"].get("kind") == "embedding"]
    teacher = la.load_encoder(models["teacher"])
    assert any(c["fingerprint"] == teacher.fingerprint() and "distilled" in c["description"] for c in cards)
