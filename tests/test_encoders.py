"""Encoders: the bundled real models and the input contract."""
import numpy as np
import pytest

import langalign as la
from langalign.errors import EncoderNotAvailableError


@pytest.fixture(scope="module", params=["use-multilingual", "minilm"])
def enc(request):
    return la.load_encoder(request.param)


@pytest.mark.integration
def test_bundled_encoders_shapes(enc):
    assert enc.dim == {"use-multilingual": 512, "minilm": 384}[enc.name]
    out = enc.encode(["Hello world.", "안녕하세요", "", "x" * 50_000], batch_size=2)
    assert out.shape == (4, enc.dim) and out.dtype == np.float32 and np.isfinite(out).all()
    assert enc.encode([]).shape == (0, enc.dim)


@pytest.mark.integration
def test_encoder_bad_input(enc):
    with pytest.raises(ValueError):
        enc.encode(None)
    with pytest.raises(TypeError, match="single str"):
        enc.encode("a bare string")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        enc.encode(["ok", 5])


@pytest.mark.integration
def test_multilingual_encoder_places_translations_close():
    enc = la.load_encoder("use-multilingual")
    E = enc.encode(["The weather is nice today.", "오늘은 날씨가 좋다.", "I sold my car yesterday."])
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    assert E[0] @ E[1] > E[0] @ E[2]


def test_load_encoder_is_cached_and_accepts_aliases():
    assert la.load_encoder("use") is la.load_encoder("use-multilingual")
    assert sorted(la.available_encoders()) == ["e5-small", "minilm", "use-multilingual"]


def test_unknown_model_offline_gives_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderNotAvailableError, match="not available locally"):
        la.load_encoder("no-such-org/no-such-model-xyz")
    with pytest.raises(ValueError):
        la.load_encoder("")


def test_function_encoder_batches():
    calls = []

    def fn(texts):
        calls.append(len(texts))
        return np.ones((len(texts), 3))

    enc = la.FunctionEncoder(fn, "ones", 3)
    assert enc.encode([str(i) for i in range(10)], batch_size=4).shape == (10, 3)
    assert calls == [4, 4, 2]
    with pytest.raises(ValueError, match="batch_size"):
        enc.encode(["a"], batch_size=0)
