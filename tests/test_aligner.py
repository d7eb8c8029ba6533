"""LangAlign and its saved artefacts, on synthetic encoders (fast)."""
import json

import numpy as np
import pytest

import langalign as la
from langalign.errors import ArtefactError


def hash_encoder(name="fake", dim=16, shift=0.0):
    """Deterministic toy encoder: a vector seeded by the text, plus a language shift."""
    def fn(texts):
        out = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t.lower().strip("!?. "))) % (2**32))
            out.append(rng.normal(size=dim) + shift)
        return np.array(out, dtype=np.float32)
    return la.FunctionEncoder(fn, name=name, dim=dim)


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    W = rng.normal(size=(16, 12)) / 4
    Y = (X @ W + 0.01 * rng.normal(size=(300, 12))).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("mapper", ["linear", "procrustes", "mlp", "autoencoder"])
def test_save_load_round_trip_bit_identical(tmp_path, pairs, mapper):
    X, Y = pairs
    params = {"epochs": 3, "hidden_dim": 32, "device": "cpu"} if mapper in ("mlp", "autoencoder") else {}
    a = la.LangAlign("src-enc", "tgt-enc", mapper=mapper, mapper_params=params).fit_embeddings(X, Y)
    a.save(tmp_path / "al")
    b = la.LangAlign.load(tmp_path / "al")
    assert np.array_equal(a.to_target(X), b.to_target(X))
    assert np.array_equal(a.to_source(Y), b.to_source(Y))
    cfg = json.loads((tmp_path / "al" / "config.json").read_text())
    assert cfg["source_encoder"] == {"name": "src-enc", "dim": 16}
    assert cfg["target_encoder"] == {"name": "tgt-enc", "dim": 12}
    assert cfg["training"]["n_pairs"] == 300 and cfg["format_version"] == 1
    assert "forward" in cfg["held_out_scores"] and "langalign_version" in cfg
    assert sorted(p.name for p in (tmp_path / "al").iterdir()) == ["config.json", "model.safetensors"]


def test_forward_and_reverse_improve_heldout(pairs):
    X, Y = pairs
    a = la.LangAlign(None, None).fit_embeddings(X, Y)
    assert a.scores_["forward"]["top1"] > 0.9
    assert a.scores_["reverse"]["mean_cosine"] > 0.8
    assert a.to_target(X[:5]).shape == (5, 12) and a.to_source(Y[:5]).shape == (5, 16)


def test_reverse_false():
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    a = la.LangAlign(None, mapper="linear", reverse=False).fit_embeddings(X, X + 1)
    with pytest.raises(ValueError, match="reverse=False"):
        a.to_source(X)


def test_text_api_with_function_encoders(tmp_path):
    src, tgt = hash_encoder("en-toy", 16), hash_encoder("xx-toy", 16, shift=2.0)
    texts = [f"sentence number {i}" for i in range(200)]
    a = la.LangAlign(src, tgt, mapper="centering").fit(texts, [t + "!" for t in texts])
    Z = a.to_target(["sentence number 3"])
    assert Z.shape == (1, 16)
    s = a.score(texts[:50], [t + "!" for t in texts[:50]])
    assert s["forward"]["mse"] < s["raw"]["mse"]
    a.save(tmp_path / "m")
    b = la.LangAlign.load(tmp_path / "m", src, tgt)
    assert np.array_equal(b.to_target(["x"]), a.to_target(["x"]))
    with pytest.raises(ArtefactError, match="gives 8-d"):
        la.LangAlign.load(tmp_path / "m", hash_encoder("other", 8), tgt)


def test_text_input_errors():
    a = la.LangAlign(hash_encoder(), mapper="centering")
    with pytest.raises(ValueError, match="not fitted"):
        a.to_target(["x"])
    a.fit(["a", "b", "c"], ["a", "b", "c"])
    with pytest.raises(TypeError, match="single str"):
        a.to_target("just one string")
    with pytest.raises(ValueError, match="None"):
        a.to_target(None)
    with pytest.raises(TypeError, match=r"\[1\] is int"):
        a.to_target(["ok", 3])
    with pytest.raises(ValueError, match="differ in length"):
        a.fit(["a", "b"], ["a"])


def test_embedding_dim_mismatch_with_encoder():
    a = la.LangAlign(hash_encoder(dim=16), hash_encoder(dim=16))
    with pytest.raises(ValueError, match="dimension 8"):
        a.fit_embeddings(np.zeros((10, 8)), np.zeros((10, 16)))


def _saved(tmp_path, pairs):
    X, Y = pairs
    la.LangAlign("s", "t", mapper="linear").fit_embeddings(X, Y).save(tmp_path / "al")
    return tmp_path / "al"


def test_load_missing_file(tmp_path, pairs):
    p = _saved(tmp_path, pairs)
    (p / "model.safetensors").unlink()
    with pytest.raises(ArtefactError, match="model.safetensors is missing"):
        la.LangAlign.load(p)
    with pytest.raises(ArtefactError, match="does not exist"):
        la.LangAlign.load(tmp_path / "nope")


def test_load_corrupt_tensor_file(tmp_path, pairs):
    p = _saved(tmp_path, pairs)
    data = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtefactError, match="model.safetensors is corrupt"):
        la.LangAlign.load(p)


def test_load_wrong_dimensions(tmp_path, pairs):
    p = _saved(tmp_path, pairs)
    cfg = json.loads((p / "config.json").read_text())
    cfg["forward"]["d_in"] = 99
    (p / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="coef"):
        la.LangAlign.load(p)


def test_load_unknown_class_and_newer_version(tmp_path, pairs):
    p = _saved(tmp_path, pairs)
    cfg = json.loads((p / "config.json").read_text())
    cfg["forward"]["class"] = "os.system"
    (p / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="unknown mapper class"):
        la.LangAlign.load(p)
    cfg["format_version"] = 999
    (p / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="newer langalign"):
        la.LangAlign.load(p)
    (p / "config.json").write_text("{not json")
    with pytest.raises(ArtefactError, match="not valid JSON"):
        la.LangAlign.load(p)


def test_save_is_atomic_on_failure(tmp_path, pairs, monkeypatch):
    p = _saved(tmp_path, pairs)
    before = (p / "model.safetensors").read_bytes()
    import safetensors.numpy

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    X, Y = pairs
    with pytest.raises(OSError):
        la.LangAlign("s", "t").fit_embeddings(X, Y * 2).save(p)
    assert (p / "model.safetensors").read_bytes() == before  # old artefact intact
    assert [q.name for q in tmp_path.iterdir()] == ["al"]  # no temporary left behind


# -- domain shift: fall back toward the identity out of the pairs' domain ---------------------

def two_domain_pairs(seed=0, d=16, n=400):
    """Pairs from domain A (target = source rotated a little + offset); inputs from A and from B."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    Q, _ = np.linalg.qr(np.eye(d) + 0.3 * rng.normal(size=(d, d)))
    Y = (A @ Q + 0.5).astype(np.float32)
    X = A.astype(np.float32)
    new_a = (rng.normal(size=(300, d)) @ Q + 0.5).astype(np.float32)           # same domain, unseen rows
    new_b = (rng.normal(size=(300, d)) * 0.5 @ Q + 0.5 + 2.0).astype(np.float32)  # another domain
    return X, Y, new_a, new_b


def test_domain_shift_is_near_zero_in_domain_and_large_out_of_it():
    X, Y, new_a, new_b = two_domain_pairs()
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y)
    a, b = al.domain_shift(new_a), al.domain_shift(new_b)
    assert a["shift"] < 0.01 and a["trust"] == 1.0
    assert b["shift"] > 0.5 and b["trust"] == 0.0
    # few in-domain inputs: the sampling noise is taken out, so they do not look shifted
    assert al.domain_shift(new_a[:10])["shift"] < 0.05
    assert al.domain_shift(X, side="source")["shift"] == 0.0


def test_adapt_keeps_the_map_in_domain_and_falls_back_out_of_it():
    X, Y, new_a, new_b = two_domain_pairs()
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y)
    mapped_a, mapped_b = al.to_source(new_a), al.to_source(new_b)
    al.adapt(new_a)
    np.testing.assert_array_equal(al.to_source(new_a), mapped_a)
    al.adapt(new_b)
    assert al.adapted_["reverse"]["trust"] == 0.0
    np.testing.assert_array_equal(al.to_source(new_b), new_b)  # identity = the zero-shot input
    assert not np.allclose(al.to_source(new_b), mapped_b)
    al.adapt(new_b, fallback="shift")
    shift = al.domain_["source"]["mean"] - al.domain_["target"]["mean"]
    np.testing.assert_allclose(al.to_source(new_b), new_b + shift, atol=1e-5)
    np.testing.assert_array_equal(al.to_target(X), al.forward_.transform(X))  # the other direction untouched


def test_partial_trust_blends_linearly():
    from langalign.domain_shift import SHIFT_FULL_MAP, SHIFT_NO_MAP, map_trust

    assert map_trust(0.0) == 1.0 and map_trust(SHIFT_NO_MAP) == 0.0
    mid = float(np.sqrt(SHIFT_FULL_MAP * SHIFT_NO_MAP))
    assert abs(map_trust(mid) - 0.5) < 1e-9
    X, Y, new_a, _ = two_domain_pairs()
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y)
    al.adapted_["reverse"] = {"trust": 0.25, "fallback": "identity"}
    np.testing.assert_allclose(al.to_source(new_a), 0.25 * al.reverse_.transform(new_a) + 0.75 * new_a, atol=1e-5)


def test_adaptation_survives_save_and_load(tmp_path):
    X, Y, _, new_b = two_domain_pairs()
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y).adapt(new_b, fallback="shift")
    al.save(tmp_path / "al")
    back = la.LangAlign.load(tmp_path / "al")
    assert back.adapted_["reverse"]["fallback"] == "shift"
    np.testing.assert_array_equal(back.to_source(new_b), al.to_source(new_b))
    assert back.domain_shift(new_b) == al.domain_shift(new_b)


def test_aligner_saved_before_domain_records_loads_and_says_why_it_cannot_adapt(tmp_path):
    X, Y, _, new_b = two_domain_pairs()
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y)
    al.save(tmp_path / "al")
    cfg = json.loads((tmp_path / "al" / "config.json").read_text())
    for key in ("domain", "adapted"):
        cfg.pop(key)
    (tmp_path / "al" / "config.json").write_text(json.dumps(cfg))
    # An artefact from before domain records has no domain tensors either (extra tensors are refused on load).
    from safetensors.numpy import load_file, save_file

    w = tmp_path / "al" / "model.safetensors"
    save_file({k: v for k, v in load_file(str(w)).items() if not k.startswith("domain.")}, str(w),
              metadata={"format": "langalign", "kind": "aligner"})
    old = la.LangAlign.load(tmp_path / "al")
    np.testing.assert_array_equal(old.to_source(new_b), al.to_source(new_b))
    with pytest.raises(ValueError, match="no record of its training inputs"):
        old.adapt(new_b)


def test_adapt_needs_equal_dimensions_and_a_known_fallback(pairs):
    X, Y = pairs  # 16 -> 12
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y)
    with pytest.raises(ValueError, match="equal dimensions"):
        al.adapt(Y)
    X, Y, _, new_b = two_domain_pairs()
    al = la.LangAlign("s", "t", held_out=0).fit_embeddings(X, Y)
    with pytest.raises(ValueError, match="fallback"):
        al.adapt(new_b, fallback="nearest")
    with pytest.raises(ValueError, match="at least 2"):
        al.domain_shift(new_b[:1])
