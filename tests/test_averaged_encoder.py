"""AveragedEncoder: routes into one space (an encoder of that space, a bridge into it), averaged.

Synthetic encoders: "english" is the space; "other" is a second model whose vectors are a fixed rotation of
english's plus noise, so a bridge fitted on pairs maps them back.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import langalign as la
from langalign.encoder_identity import vector_space
from langalign.errors import EncoderMismatchError
from langalign.index import SearchIndex

D = 16
ROT = np.linalg.qr(np.random.default_rng(1).standard_normal((D, D)))[0]


def _base(texts: list[str]) -> np.ndarray:
    seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little") for t in texts]
    return np.stack([np.random.default_rng(s).standard_normal(D) for s in seeds]).astype(np.float32)


def _other(texts: list[str]) -> np.ndarray:
    noise = np.stack([np.random.default_rng(len(t) + 7).standard_normal(D) for t in texts])
    return (_base(texts) @ ROT + 0.3 * noise).astype(np.float32)


ENGLISH = la.FunctionEncoder(_base, "toy-english", D)
OTHER = la.FunctionEncoder(_other, "toy-other", D)
TEXTS = [f"sentence number {i} about topic {i % 7}" for i in range(300)]


@pytest.fixture(scope="module")
def bridge() -> la.LangAlign:
    return la.LangAlign(ENGLISH, OTHER, mapper="linear").fit(TEXTS[:200], TEXTS[:200])


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_the_mean_of_unit_vectors_in_the_shared_space(bridge):
    avg = la.AveragedEncoder([ENGLISH, bridge])
    V = avg.encode(TEXTS[200:220])
    expected = _unit(_unit(ENGLISH.encode(TEXTS[200:220])) + _unit(bridge.to_source(TEXTS[200:220])))
    np.testing.assert_allclose(V, expected, atol=1e-5)
    assert avg.dim == D and "bridge toy-other->toy-english" in avg.name
    assert vector_space(avg)["name"] == "toy-english"
    assert vector_space(avg)["fingerprint"] == ENGLISH.fingerprint()


def test_weights_move_the_result_toward_a_route(bridge):
    B = _unit(bridge.to_source(TEXTS[200:230]))
    near_bridge = la.AveragedEncoder([ENGLISH, bridge], weights=[1, 9]).encode(TEXTS[200:230])
    equal = la.AveragedEncoder([ENGLISH, bridge]).encode(TEXTS[200:230])
    assert (np.sum(near_bridge * B, axis=1) > np.sum(equal * B, axis=1)).all()


def test_an_index_of_the_space_answers_it_and_ranks_translations_first(bridge):
    idx = SearchIndex(ENGLISH).build(TEXTS[200:])
    avg = la.AveragedEncoder([bridge, bridge], name="twice the bridge")
    hits = idx.search(TEXTS[200:210], top_k=1, encoder=avg)
    assert [h[0].text for h in hits] == TEXTS[200:210]  # the bridged "other" vectors find their own sentences


def test_routes_of_other_spaces_and_bad_arguments_are_refused(bridge):
    with pytest.raises(EncoderMismatchError, match="another space"):
        la.AveragedEncoder([ENGLISH, OTHER])
    with pytest.raises(EncoderMismatchError, match="another space"):
        la.AveragedEncoder([OTHER, bridge])
    rescaled = la.FunctionEncoder(lambda t: _base(t) * 3.0, "toy-english", D)  # same name, another model
    with pytest.raises(EncoderMismatchError, match="fingerprints"):
        la.AveragedEncoder([ENGLISH, rescaled])
    with pytest.raises(ValueError, match="at least 2 routes"):
        la.AveragedEncoder([ENGLISH])
    with pytest.raises(ValueError, match="not fitted"):
        la.AveragedEncoder([ENGLISH, la.LangAlign(ENGLISH, OTHER)])
    with pytest.raises(TypeError, match="Encoder or a fitted LangAlign"):
        la.AveragedEncoder([ENGLISH, "minilm"])
    for w in ([1], [1, 0], [1, -1], [1, float("nan")]):
        with pytest.raises(ValueError, match="positive finite"):
            la.AveragedEncoder([ENGLISH, bridge], weights=w)
    forward_only = la.LangAlign(ENGLISH, OTHER, reverse=False).fit(TEXTS[:200], TEXTS[:200])
    with pytest.raises(ValueError, match="reverse=False"):
        la.AveragedEncoder([ENGLISH, forward_only])
    idx = SearchIndex(OTHER).build(TEXTS[:20])
    with pytest.raises(EncoderMismatchError, match="do not belong"):
        idx.search(TEXTS[:1], encoder=la.AveragedEncoder([ENGLISH, bridge]))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=8),
       st.floats(min_value=0.01, max_value=100), st.floats(min_value=0.01, max_value=100))
def test_any_texts_and_weights_give_unit_rows(texts, w1, w2):
    avg = la.AveragedEncoder([ENGLISH, ENGLISH], weights=[w1, w2])
    V = avg.encode(texts)
    assert V.shape == (len(texts), D) and np.allclose(np.linalg.norm(V, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(V, _unit(ENGLISH.encode(texts)), atol=1e-5)  # both routes point the same way


# -- saved folders --------------------------------------------------------------------------
def test_saved_and_loaded_it_gives_the_same_vectors_and_checks_its_encoders(bridge, tmp_path):
    avg = la.AveragedEncoder([ENGLISH, bridge], weights=[1, 2], name="toy-avg")
    folder = avg.save(tmp_path / "avg")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    back = la.AveragedEncoder.load(folder, encoders=[ENGLISH, OTHER])
    np.testing.assert_allclose(back.encode(TEXTS[200:230]), avg.encode(TEXTS[200:230]), atol=1e-6)
    assert back.name == "toy-avg" and back.weights == pytest.approx([1 / 3, 2 / 3])
    assert vector_space(back) == vector_space(avg)
    # a FunctionEncoder has no name to load by: the message says how to pass it
    with pytest.raises(la.errors.EncoderNotAvailableError, match="encoders=\\[encoder\\]"):
        la.AveragedEncoder.load(folder, encoders=[OTHER])
    rescaled = la.FunctionEncoder(lambda t: _base(t) * 3.0, "toy-english", D)  # same name, another model
    with pytest.raises(EncoderMismatchError, match="probe"):
        la.AveragedEncoder.load(folder, encoders=[rescaled, OTHER])


def test_saving_never_replaces_a_users_folder_and_a_damaged_config_is_refused(bridge, tmp_path):
    avg = la.AveragedEncoder([ENGLISH, bridge])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(la.errors.ArtefactError, match="refusing"):
        avg.save(mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    folder = avg.save(tmp_path / "avg")
    avg.save(folder)  # its own earlier save is replaced
    import json

    cfg = json.loads((folder / "config.json").read_text())
    cfg["weights"] = [1.0, -1.0]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(la.errors.ArtefactError, match="positive numbers"):
        la.AveragedEncoder.load(folder, encoders=[ENGLISH, OTHER])
    cfg["weights"], cfg["routes"] = [1.0], cfg["routes"][:1]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(la.errors.ArtefactError, match="2 to 16 routes"):
        la.AveragedEncoder.load(folder, encoders=[ENGLISH, OTHER])


def test_cli_average_then_search_with_it_as_the_query_encoder(bridge, tmp_path, capsys, monkeypatch):
    import json

    from langalign import encoders
    from langalign.cli import main

    monkeypatch.setitem(encoders._cache, "toy-english", ENGLISH)  # load_encoder("toy-english") returns it
    monkeypatch.setitem(encoders._cache, "toy-other", OTHER)
    bridge.save(tmp_path / "bridge")
    SearchIndex(ENGLISH).build(TEXTS[200:]).save(tmp_path / "idx")
    assert main(["average", "--route", "toy-english", "--route", str(tmp_path / "bridge"), "--weight", "1",
                 "--weight", "3", "--name", "toy-avg", "--output", str(tmp_path / "avg")]) == 0
    assert "2 routes into 'toy-english'" in capsys.readouterr().out
    assert la.load_encoder(str(tmp_path / "avg")).weights == pytest.approx([0.25, 0.75])
    assert main(["search", "--index", str(tmp_path / "idx"), "--query-encoder", str(tmp_path / "avg"),
                 "--query", TEXTS[203], "--query", TEXTS[250], "--top-k", "1", "--json"]) == 0
    hits = [json.loads(line)["hits"][0]["text"] for line in capsys.readouterr().out.splitlines()]
    assert hits == [TEXTS[203], TEXTS[250]]
    assert main(["average", "--route", "toy-english", "--output", str(tmp_path / "one")]) == 2
    assert "at least two --route" in capsys.readouterr().err
    assert main(["search", "--index", str(tmp_path / "idx"), "--query-encoder", "toy-other", "--query", "x"]) == 2
    assert "do not belong" in capsys.readouterr().err  # an encoder of another space is refused


def test_a_service_lists_a_saved_averaged_encoder_by_its_name(bridge, tmp_path, monkeypatch):
    from langalign import encoders
    from langalign.serving.config import ServeConfig
    from langalign.serving.registry import Registry

    monkeypatch.setitem(encoders._cache, "toy-english", ENGLISH)
    monkeypatch.setitem(encoders._cache, "toy-other", OTHER)
    folder = la.AveragedEncoder([ENGLISH, bridge], name="toy-avg").save(tmp_path / "avg")
    reg = Registry(ServeConfig(encoders=[str(folder)])).load()
    assert list(reg.encoders) == ["toy-avg"] and isinstance(reg.encoders["toy-avg"], la.AveragedEncoder)
