"""The core CLI commands as a user runs them: subprocesses on real files."""
import json
import subprocess
import sys

import numpy as np
import pytest

from langalign.data import load_sib200, load_sib200_parallel, write_table

pytestmark = pytest.mark.integration


def run(*args, ok=True):
    p = subprocess.run([sys.executable, "-m", "langalign.cli", *args], capture_output=True, text=True,
                       env={**__import__("os").environ, "LANGALIGN_NO_PROGRESS": "1"})
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    par = load_sib200_parallel("en", "ko", "train").sample(200, seed=0)
    write_table(d / "pairs.tsv", {"source": par.source, "target": par.target})
    en = load_sib200("en", "train").sample(300, seed=1)
    write_table(d / "train_en.tsv", {"text": en.texts, "label": en.labels})
    ko = load_sib200("ko", "test").sample(40, seed=2)
    write_table(d / "test_ko.tsv", {"text": ko.texts, "label": ko.labels})
    (d / "ko.txt").write_text("\n".join(ko.texts[:5]) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def aligner(files):
    out = files / "al"
    p = run("fit", "--pairs", str(files / "pairs.tsv"), "--source-encoder", "use-multilingual",
            "--output", str(out))
    assert "saved aligner use-multilingual -> use-multilingual" in p.stdout
    assert "held-out forward cosine" in p.stdout
    return out


def test_fit_writes_artefact(aligner):
    cfg = json.loads((aligner / "config.json").read_text())
    assert cfg["source_encoder"]["name"] == "use-multilingual" and cfg["training"]["n_pairs"] == 200
    assert (aligner / "model.safetensors").is_file()


def test_transform_texts_and_vectors(files, aligner):
    run("transform", "--aligner", str(aligner), "--direction", "to-source", "--input", str(files / "ko.txt"),
        "--output", str(files / "ko.npy"))
    V = np.load(files / "ko.npy")
    assert V.shape == (5, 512) and np.isfinite(V).all()
    p = run("transform", "--aligner", str(aligner), "--input", str(files / "ko.npy"),
            "--output", str(files / "back.npy"))
    assert "wrote 5 x 512 vectors (to-target)" in p.stdout


def test_train_predict_evaluate(files, aligner):
    model = files / "clf"
    p = run("train", "--aligner", str(aligner), "--mode", "reverse", "--data", str(files / "train_en.tsv"),
            "--output", str(model))
    assert "saved reverse classifier" in p.stdout and "7 classes" in p.stdout
    p = run("predict", "--model", str(model), "--input", str(files / "ko.txt"))
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 5 and all("\t" in line for line in lines)
    run("predict", "--model", str(model), "--input", str(files / "test_ko.tsv"), "--output", str(files / "p.jsonl"))
    assert len((files / "p.jsonl").read_text().splitlines()) == 40
    p = run("evaluate", "--model", str(model), "--data", str(files / "test_ko.tsv"), "--json", str(files / "r.json"))
    rep = json.loads((files / "r.json").read_text())
    assert rep["n"] == 40 and rep["accuracy"] > 0.4  # 7 classes: chance is ~0.14
    assert "accuracy" in p.stdout


def test_zero_shot_train(files):
    p = run("train", "--encoder", "use-multilingual", "--mode", "zero-shot", "--data", str(files / "train_en.tsv"),
            "--output", str(files / "zs"))
    assert "zero-shot" in p.stdout


def test_fit_from_shard_folders(files):
    # The bounded-memory path: encode each side to shards, fit from the folders.
    for col, out in (("source", "en"), ("target", "ko")):
        run("encode", "--encoder", "use-multilingual", "--input", str(files / "pairs.tsv"), "--column", col,
            "--output", str(files / "shards" / out), "--shard-size", "64")
    p = run("fit", "--source-embeddings", str(files / "shards" / "en"), "--target-embeddings",
            str(files / "shards" / "ko"), "--output", str(files / "al_shards"))
    assert "held-out forward cosine" in p.stdout
    cfg = json.loads((files / "al_shards" / "config.json").read_text())
    assert cfg["training"]["data"] == "shards" and cfg["training"]["n_pairs"] == 200
    assert 0 < cfg["training"]["n_held_out"] < 50
    np.save(files / "vectors.npy", np.ones((200, 512), dtype=np.float32))
    p = run("fit", "--source-embeddings", str(files / "shards" / "en"), "--target-embeddings",
            str(files / "vectors.npy"), "--output", str(files / "x"), ok=False)
    assert p.returncode == 2 and "both be shard folders" in p.stderr
    p = run("fit", "--source-embeddings", str(files / "shards" / "en"), "--target-embeddings",
            str(files / "shards" / "ko"), "--source-encoder", "minilm", "--output", str(files / "x"), ok=False)
    assert p.returncode == 2 and "holds vectors of encoder 'use-multilingual'" in p.stderr


@pytest.mark.parametrize("args,needle", [
    (["fit", "--pairs", "/nonexistent.tsv", "--output", "/tmp/x"], "no such file"),
    (["transform", "--aligner", "/nonexistent", "--input", "a.txt", "--output", "o.npy"], "does not exist"),
    (["train", "--mode", "reverse", "--data", "x.tsv", "--output", "o"], "needs --aligner"),
    (["predict", "--model", "/tmp", "--input", "x.txt"], "config.json is missing"),
])
def test_errors_are_one_line(args, needle):
    p = run(*args, ok=False)
    assert p.returncode == 2
    assert needle in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_help_has_examples():
    for cmd in ("fit", "transform", "train", "predict", "evaluate", "demo"):
        p = run(cmd, "--help")
        assert "example" in p.stdout
