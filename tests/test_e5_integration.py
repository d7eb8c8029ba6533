"""e5-small end to end with the real model: offline use in the Python API, and `langalign tune` in both modes."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest

import langalign as la
from langalign.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: everything must come from installed packages."""
    def refuse(self, *a, **k):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None))


def test_aligner_and_zero_shot_classifier_offline(no_network):
    from langalign.data import load_sib200, load_sib200_parallel
    from langalign.encoders import E5Encoder

    e5 = E5Encoder()  # a fresh load (not the process cache), from the folder in the data home
    train = load_sib200("en", "train")  # all 701: with 10 per class this head reaches only about 40%
    clf = la.CrossLingualClassifier(e5, mode="zero-shot").fit(train.texts, train.labels)
    ko = load_sib200("ko", "test").sample(60, seed=0)
    pred = clf.predict(ko.texts)
    assert len(pred) == 60 and np.mean(np.asarray(pred) == np.asarray(ko.labels)) > 0.7  # 82.4% on all 204
    par = load_sib200_parallel("en", "ko", "dev").sample(60, seed=0)
    align = la.LangAlign(e5, e5, mapper="procrustes", held_out=0.0).fit(par.source, par.target)
    assert align.to_source(["서울의 날씨는 어떤가요?"]).shape == (1, 384)


def _cli(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("mode", ["task", "parallel"])
def test_tune_e5_small(mode, tmp_path, capsys):
    from langalign.data import load_sib200, load_sib200_parallel

    out = tmp_path / f"e5-{mode}"
    common = ["--epochs", 1, "--batch-size", 8, "--max-seq-length", 32, "--lr", 2e-5, "--output", out]
    if mode == "task":
        train = load_sib200("en", "train").sample(28, seed=0)
        data = tmp_path / "train.tsv"
        data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(train.texts, train.labels,
                                                                                 strict=True)), encoding="utf-8")
        rc, stdout, err = _cli(capsys, "tune", "--base", "e5-small", "--data", data, *common)
    else:
        par = load_sib200_parallel("en", "ko", "dev").sample(24, seed=0)
        pairs = tmp_path / "pairs.tsv"
        pairs.write_text("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in zip(par.source, par.target,
                                                                                    strict=True)), encoding="utf-8")
        rc, stdout, err = _cli(capsys, "tune", "--base", "e5-small", "--mode", "parallel", "--pairs", pairs, *common)
    assert rc == 0, err
    enc = la.load_encoder(str(out))
    base = la.load_encoder("e5-small")
    assert enc.name.startswith("tuned:e5-small:") and enc.tuning["base"]["name"] == "e5-small"
    assert enc.dim == 384 and enc.fingerprint() != base.fingerprint()
    cfg = json.loads((out / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert cfg["prompts"]["query"] == "query: " and cfg["prompts"]["passage"] == "passage: "
    doc = enc.for_role("passage")
    assert doc.name == enc.name + ":passage" and doc.prompt == "passage: "
    V = enc.encode(["오늘 날씨가 좋네요.", "The weather is nice today."])
    assert np.isfinite(V).all() and V[0] @ V[1] > 0.5  # still a multilingual encoder after a few steps


def test_cli_index_search_and_encode_with_e5_small(tmp_path, capsys):
    from langalign.data import load_sib200

    en = load_sib200("en", "test").sample(40, seed=1)
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(en.texts) + "\n", encoding="utf-8")
    rc, stdout, err = _cli(capsys, "index", "build", "--encoder", "e5-small", "--input", docs, "--output",
                           tmp_path / "idx")
    assert rc == 0, err
    assert "with e5-small (384-d; documents as e5-small:passage)" in stdout
    rc, stdout, err = _cli(capsys, "index", "info", "--index", tmp_path / "idx", "--json")
    info = json.loads(stdout)
    assert info["encoder"] == "e5-small" and info["document_encoder"] == "e5-small:passage"
    # an English document's own text, as a query, finds it first
    rc, stdout, err = _cli(capsys, "search", "--index", tmp_path / "idx", "--query", en.texts[3], "--json",
                           "--top-k", 1)
    assert rc == 0, err
    assert json.loads(stdout)["hits"][0]["id"] == "3"
    rc, stdout, err = _cli(capsys, "encode", "--encoder", "e5-small:passage", "--input", docs, "--output",
                           tmp_path / "emb", "--json")
    assert rc == 0, err
    manifest = json.loads((tmp_path / "emb" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["encoder"] == "e5-small:passage" and manifest["dim"] == 384
