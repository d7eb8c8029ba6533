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


class _SortedEncoder(la.FunctionEncoder):
    length_sorted = True


def test_length_sorted_encode_keeps_rows_in_input_order():
    calls = []

    def fn(texts):
        calls.append(list(texts))
        return np.array([[len(t), ord(t[0]) if t else 0] for t in texts], dtype=float)

    texts = ["bb", "a", "dddd", "", "ccc", "eeeee", "ff"]
    enc = _SortedEncoder(fn, "lengths", 2)
    out = enc.encode(texts, batch_size=3)
    assert out.tolist() == fn(texts).tolist()
    # longest first, ties in input order, so each call holds texts of similar length
    assert calls[:-1] == [["eeeee", "dddd", "ccc"], ["bb", "ff", "a"], [""]]
    unsorted = la.FunctionEncoder(fn, "lengths", 2)
    assert unsorted.encode(texts, batch_size=3).tolist() == out.tolist()


def test_length_sorted_encode_reports_nan_rows_in_input_order():
    def fn(texts):
        return np.array([[np.nan] if t == "bad" else [1.0] for t in texts])

    with pytest.raises(ValueError, match="rows 3$"):
        _SortedEncoder(fn, "nan", 1).encode(["a", "bb", "ccccc", "bad"], batch_size=2)


def test_backend_names_and_errors():
    from langalign.encoders import canonical_encoder_name, split_backend

    assert split_backend("minilm+onnx-int8") == ("minilm", "onnx-int8")
    assert split_backend("org/model+ONNX") == ("org/model", "onnx")
    assert split_backend("minilm") == ("minilm", None)
    # the float32 backend is the same encoder; int8 is another one
    assert canonical_encoder_name("all-MiniLM-L6-v2+onnx") == "minilm"
    assert canonical_encoder_name("all-MiniLM-L6-v2+onnx-int8") == "minilm+onnx-int8"
    with pytest.raises(ValueError, match="unknown encoder backend"):
        la.load_encoder("minilm", backend="tensorrt")
    with pytest.raises(ValueError, match="names backend"):
        la.load_encoder("minilm+onnx", backend="onnx-int8")
    enc = la.FunctionEncoder(lambda t: np.ones((len(t), 2)), "f", 2)
    assert la.load_encoder(enc, backend="torch") is enc
    with pytest.raises(EncoderNotAvailableError, match="no 'onnx' backend"):
        la.load_encoder(enc, backend="onnx")


def _reference_encode(enc, texts):
    """The straightforward encode: sentence-transformers on one text at a time, no padding, no sorting."""
    return np.concatenate([enc._model.encode([t], batch_size=1, convert_to_numpy=True) for t in texts])


def _sample_texts():
    from langalign.data import find_reference_data, load_sib200

    root = find_reference_data()
    en = list(load_sib200("en", "train", root / "sib200").texts)[:90]
    ko = list(load_sib200("ko", "test", root / "sib200").texts)[:30]
    return en + ko + ["", "x", "Short one.", "word " * 400]


@pytest.mark.integration
def test_minilm_fast_path_equals_reference_encode():
    from langalign.encoder_identity import check_encoder_identity

    enc = la.load_encoder("minilm")
    texts = _sample_texts()
    ref = _reference_encode(enc, texts)
    for batch_size in (256, 7):
        np.testing.assert_allclose(enc.encode(texts, batch_size=batch_size), ref, rtol=0, atol=1e-5)
    # fingerprints stay valid: an artefact recorded with the reference path accepts the fast path
    reference = la.FunctionEncoder(lambda t: _reference_encode(enc, t), "minilm", enc.dim)
    check_encoder_identity(reference.identity(), enc, "an artefact")
    assert np.abs(np.array(reference.probe_signature()) - np.array(enc.probe_signature())).max() <= 1e-3


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    mp = pytest.MonkeyPatch()
    mp.setenv("LANGALIGN_DATA_HOME", str(tmp_path_factory.mktemp("onnx-home")))
    yield
    mp.undo()


@pytest.mark.integration
def test_onnx_backend_is_the_same_encoder(onnx_home):
    from langalign.encoder_identity import check_encoder_identity

    enc = la.load_encoder("minilm")
    fast = la.load_encoder("minilm", backend="onnx")
    assert fast is la.load_encoder("minilm+onnx") and fast.name == "minilm" and fast.backend == "onnx"
    texts = _sample_texts()
    np.testing.assert_allclose(fast.encode(texts), _reference_encode(enc, texts), rtol=0, atol=1e-5)
    check_encoder_identity(enc.identity(), fast, "an artefact")
    assert fast.fingerprint() == enc.fingerprint()
    assert enc.backend == "torch" and enc.name == "minilm"  # the torch encoder is untouched


@pytest.mark.integration
def test_onnx_int8_backend_is_another_encoder(onnx_home, tmp_path):
    import pickle

    from langalign.errors import EncoderMismatchError

    enc = la.load_encoder("minilm")
    q = la.load_encoder("minilm", backend="onnx-int8")
    assert q.name == "minilm+onnx-int8" and la.load_encoder("minilm+onnx-int8") is q
    texts = _sample_texts()
    ref, got = enc.encode(texts), q.encode(texts)
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.mean() >= 0.98 and cos.min() >= 0.9
    assert not np.allclose(ref, got, atol=1e-3)  # really quantised
    # an aligner fitted on float32 MiniLM refuses int8 vectors unless forced
    align = la.LangAlign(enc, enc).fit_embeddings(ref[:100], ref[:100])
    align.save(tmp_path / "a")
    with pytest.raises(EncoderMismatchError, match="names differ and its vectors of the probe sentences differ"):
        la.LangAlign.load(tmp_path / "a", source_encoder=q, target_encoder=enc)
    with pytest.warns(RuntimeWarning, match="ignored: force=True"):
        la.LangAlign.load(tmp_path / "a", source_encoder=q, target_encoder=enc, force=True)
    # the session reopens after pickling (Ray actors, process pools)
    clone = pickle.loads(pickle.dumps(q))
    np.testing.assert_array_equal(clone.encode(texts[:5]), q.encode(texts[:5]))


def test_threads_setting(monkeypatch):
    from langalign.encoders import default_threads

    monkeypatch.delenv("LANGALIGN_THREADS", raising=False)
    assert default_threads() >= 1
    monkeypatch.setenv("LANGALIGN_THREADS", "1")
    assert default_threads() == 1
    for bad in ("two", "0"):
        monkeypatch.setenv("LANGALIGN_THREADS", bad)
        with pytest.raises(ValueError, match="LANGALIGN_THREADS"):
            default_threads()
