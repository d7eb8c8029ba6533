"""The tuned pipeline with the real e5-small, on the command line: tune on English -> self-bridge / realign -> head.

Small on purpose (a short tuning run, a few hundred sentences): it checks that every step takes the tuned
encoder and that the results read Korean far above chance. The measured pipeline (full tuning, dev choices,
test read once) is ``bench/tuned_pipeline.py`` -> ``results/tuned_pipeline.md``.
"""
from __future__ import annotations

import numpy as np
import pytest

import langalign as la
from langalign.cli import main
from langalign.data import load_sib200, load_sib200_parallel, write_parallel, write_table

pytestmark = pytest.mark.integration


def _cli(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def test_tune_then_self_bridge_and_realign_on_the_command_line(tmp_path, capsys):
    train = load_sib200("en", "train").sample(140, seed=0)
    write_table(tmp_path / "train_en.tsv", {"text": train.texts, "category": train.labels})
    tuned = tmp_path / "tuned"
    _cli(capsys, "tune", "--base", "e5-small", "--data", tmp_path / "train_en.tsv", "--label-column", "category",
         "--loss", "softmax", "--epochs", 1, "--batch-size", 16, "--max-seq-length", 64, "--lr", 5e-5,
         "--output", tuned)
    enc = la.load_encoder(str(tuned))
    assert enc.name.startswith("tuned:e5-small:")

    # (b) the self-bridge: English text alone, the untuned model's vectors mapped into the tuned space
    english = load_sib200("en", "dev").texts + load_sib200("en", "train").sample(200, seed=1).texts
    (tmp_path / "english.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    _cli(capsys, "fit", "--english", tmp_path / "english.txt", "--source-encoder", tuned, "--target-encoder",
         "e5-small", "--mapper", "linear", "--output", tmp_path / "bridge")
    _cli(capsys, "train", "--aligner", tmp_path / "bridge", "--source-encoder", tuned, "--mode", "reverse",
         "--data", tmp_path / "train_en.tsv", "--label-column", "category", "--output", tmp_path / "clf-bridge")
    # (a) realign with pairs of the tuned encoder on both sides
    write_parallel(load_sib200_parallel("en", "ko", "train").sample(200, seed=2), tmp_path / "en-ko.tsv")
    _cli(capsys, "fit", "--pairs", tmp_path / "en-ko.tsv", "--source-encoder", tuned, "--target-encoder", tuned,
         "--output", tmp_path / "realign")
    _cli(capsys, "train", "--aligner", tmp_path / "realign", "--source-encoder", tuned, "--target-encoder", tuned,
         "--mode", "reverse", "--data", tmp_path / "train_en.tsv", "--label-column", "category",
         "--output", tmp_path / "clf-realign")

    ko = load_sib200("ko", "test").sample(80, seed=0)
    write_table(tmp_path / "ko.tsv", {"text": ko.texts})
    for name, extra in (("clf-bridge", ["--source-encoder", tuned]),
                        ("clf-realign", ["--source-encoder", tuned, "--target-encoder", tuned])):
        _cli(capsys, "predict", "--model", tmp_path / name, "--input", tmp_path / "ko.tsv", "--column", "text",
             *extra, "--output", tmp_path / f"{name}.tsv")
        rows = (tmp_path / f"{name}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        pred = [r.rsplit("\t", 1)[1] for r in rows]
        acc = float(np.mean(np.asarray(pred) == np.asarray(ko.labels)))
        assert acc > 0.5, (name, acc)  # 7 classes (chance 0.14); 140 English examples, a short tuning run
    # the artefacts name the tuned space: plain e5-small in its place is refused
    rc = main(["predict", "--model", str(tmp_path / "clf-realign"), "--input", str(tmp_path / "ko.tsv"),
               "--column", "text", "--source-encoder", "e5-small", "--target-encoder", "e5-small"])
    assert rc != 0
