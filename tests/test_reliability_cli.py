"""Issue 6, CLI level: hostile inputs, atomic outputs, --force, --checkpoint-dir/--resume (kill + resume)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from langalign import encoders
from langalign.cli import main

from _reliability_helpers import hashed_encoder, pairs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fake_encoders(monkeypatch, tmp_path):
    monkeypatch.setitem(encoders._cache, "fake-a", hashed_encoder("fake-a"))
    monkeypatch.setitem(encoders._cache, "fake-z", hashed_encoder("fake-z", salt="z"))
    monkeypatch.setenv("LANGALIGN_NO_PROGRESS", "1")
    monkeypatch.setenv("LANGALIGN_DATA_HOME", str(tmp_path / "home"))


def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err):
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("pairs:", "training data:", "test data:"))]
    assert len(lines) == 1 and lines[0].startswith("langalign: error: "), err
    assert "Traceback" not in err


@pytest.fixture
def artefacts(tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    src = [f"english sentence {i} topic {i % 3}" for i in range(80)]
    tgt = [f"target sentence {i} topic {i % 3}" for i in range(80)]
    (d / "pairs.tsv").write_text("source\ttarget\n" + "".join(f"{a}\t{b}\n" for a, b in zip(src, tgt, strict=True)))
    (d / "train.tsv").write_text("text\tlabel\n" + "".join(f"{a}\t{i % 3}\n" for i, a in enumerate(src)))
    (d / "test.tsv").write_text("text\tlabel\n" + "".join(f"{a}\t{i % 3}\n" for i, a in enumerate(tgt)))
    (d / "ok.txt").write_text("one\ntwo\n")
    rc, out, err = cli(capsys, "fit", "--pairs", d / "pairs.tsv", "--source-encoder", "fake-a",
                       "--output", tmp_path / "al")
    assert rc == 0, err
    rc, out, err = cli(capsys, "train", "--aligner", tmp_path / "al", "--data", d / "train.tsv",
                       "--output", tmp_path / "clf")
    assert rc == 0, err
    return tmp_path


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    d = tmp / "bad"
    d.mkdir(exist_ok=True)
    (d / "empty.txt").write_bytes(b"")
    (d / "empty.tsv").write_bytes(b"")
    (d / "folder.txt").mkdir(exist_ok=True)
    (d / "folder.tsv").mkdir(exist_ok=True)
    mixed = "안녕하세요\n".encode() + "안녕하세요\n".encode("cp949")
    (d / "mixed.txt").write_bytes(mixed)
    (d / "mixed.tsv").write_bytes(b"source\ttarget\ntext\tlabel\n" + mixed)
    (d / "blank.txt").write_bytes(b"\n" * 1_000_000)
    (d / "blank.tsv").write_bytes(b"text\tlabel\n" + b"\n" * 1_000_000)
    return {"missing": d / "missing", "empty": d / "empty", "folder": d / "folder", "mixed": d / "mixed",
            "blank": d / "blank"}


CASES = ["missing", "empty", "folder", "mixed", "blank"]


@pytest.mark.parametrize("case", CASES)
def test_every_command_on_bad_input_is_one_line_error_without_output(artefacts, capsys, case):
    t = artefacts
    bad = _bad_inputs(t)[case]
    out = t / "out"
    commands = [
        (["fit", "--pairs", f"{bad}.tsv", "--source-encoder", "fake-a", "--output", out / "al"], out / "al"),
        (["transform", "--aligner", t / "al", "--input", f"{bad}.txt", "--output", out / "v.npy"], out / "v.npy"),
        (["train", "--aligner", t / "al", "--data", f"{bad}.tsv", "--output", out / "m"], out / "m"),
        (["predict", "--model", t / "clf", "--input", f"{bad}.txt", "--output", out / "p.tsv"], out / "p.tsv"),
        (["evaluate", "--model", t / "clf", "--data", f"{bad}.tsv", "--json", out / "r.json"], out / "r.json"),
        (["encode", "--encoder", "fake-a", "--input", f"{bad}.txt", "--output", out / "emb"], out / "emb"),
    ]
    for args, produced in commands:
        rc, _, err = cli(capsys, *args)
        assert_one_line_error(rc, err)
        assert not produced.exists(), (args, "left an output behind")
        assert not out.exists() or not any(p.name.endswith(".tmp") or ".tmp-" in p.name for p in out.rglob("*"))


def test_artefact_arguments_that_are_not_artefacts(artefacts, capsys):
    t = artefacts
    for where in (t / "missing", t / "in" / "ok.txt", t / "in"):
        for args in (["transform", "--aligner", where, "--input", t / "in" / "ok.txt", "--output", t / "v.npy"],
                     ["predict", "--model", where, "--input", t / "in" / "ok.txt"]):
            assert_one_line_error(*cli(capsys, *args)[::2])


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(artefacts, capsys):
    f = artefacts / "in" / "secret.txt"
    f.write_text("x\n")
    f.chmod(0)
    rc, _, err = cli(capsys, "transform", "--aligner", artefacts / "al", "--input", f, "--output", artefacts / "v.npy")
    assert_one_line_error(rc, err)


def test_unwritable_output_is_one_line_error(artefacts, capsys):
    # Works as root too: the output's parent is a file, not a folder.
    t = artefacts
    rc, _, err = cli(capsys, "transform", "--aligner", t / "al", "--input", t / "in" / "ok.txt",
                     "--output", t / "in" / "ok.txt" / "v.npy")
    assert_one_line_error(rc, err)


def test_ten_megabyte_line_and_million_blank_lines_give_correct_output(artefacts, capsys):
    t = artefacts
    (t / "big.txt").write_text("word " * 2_000_000 + "\nshort\n")
    rc, out, err = cli(capsys, "transform", "--aligner", t / "al", "--input", t / "big.txt", "--output", t / "v.npy")
    assert rc == 0, err
    assert np.load(t / "v.npy").shape == (2, 16)
    rc, out, err = cli(capsys, "predict", "--model", t / "clf", "--input", t / "big.txt")
    assert rc == 0 and len(out.strip().splitlines()) == 2
    rc, out, err = cli(capsys, "encode", "--encoder", "fake-a", "--input", t / "big.txt", "--output", t / "emb",
                       "--json", "--shard-size", "100000")
    assert rc == 0, err
    assert json.loads(out)["count"] == 2
    # Blank lines among texts are kept, row for row, by every command (issue 10 item 12)
    (t / "blanks.txt").write_bytes(b"\n" * 200_000 + b"last\n")
    rc, out, err = cli(capsys, "encode", "--encoder", "fake-a", "--input", t / "blanks.txt", "--output", t / "emb2",
                       "--json", "--shard-size", "100000")
    assert rc == 0, err
    assert json.loads(out)["count"] == 200_001


def test_failed_write_leaves_no_partial_file(artefacts, capsys):
    t = artefacts
    (t / "tab.txt").write_text("a text\twith a tab\n")
    rc, _, err = cli(capsys, "predict", "--model", t / "clf", "--input", t / "tab.txt", "--output", t / "p.tsv")
    assert_one_line_error(rc, err)
    assert not (t / "p.tsv").exists() and not list(t.glob(".p.tsv*"))


def test_force_flag(artefacts, capsys):
    t = artefacts
    args = ["transform", "--aligner", t / "al", "--input", t / "in" / "ok.txt", "--output", t / "v.npy",
            "--source-encoder", "fake-z"]
    rc, _, err = cli(capsys, *args)
    assert_one_line_error(rc, err)
    assert "'fake-a'" in err and "'fake-z'" in err and not (t / "v.npy").exists()
    rc, _, err = cli(capsys, *args, "--force")
    assert rc == 0 and (t / "v.npy").exists()
    rc, _, err = cli(capsys, "predict", "--model", t / "clf", "--input", t / "in" / "ok.txt",
                     "--target-encoder", "fake-z")
    assert_one_line_error(rc, err)


def test_single_class_training_data(artefacts, capsys):
    t = artefacts
    (t / "one.tsv").write_text("text\tlabel\n" + "".join(f"text {i}\tonly\n" for i in range(20)))
    rc, _, err = cli(capsys, "train", "--aligner", t / "al", "--data", t / "one.tsv", "--output", t / "m")
    assert_one_line_error(rc, err)
    assert "at least 2 classes" in err and not (t / "m").exists()


def test_nan_embeddings_cli(tmp_path, capsys):
    X, Y = pairs(50, 8, 8)
    X[7] = np.nan
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    rc, _, err = cli(capsys, "fit", "--source-embeddings", tmp_path / "x.npy", "--target-embeddings",
                     tmp_path / "y.npy", "--output", tmp_path / "al")
    assert_one_line_error(rc, err)
    assert "1 row(s): 7" in err
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "y.npy").read_bytes()[:100])
    rc, _, err = cli(capsys, "fit", "--source-embeddings", tmp_path / "trunc.npy", "--target-embeddings",
                     tmp_path / "y.npy", "--output", tmp_path / "al")
    assert_one_line_error(rc, err)


# ---------------------------------------------------------------- kill + resume

MLP = {"hidden_dim": 32, "n_layers": 3, "epochs": 12, "patience": 100, "batch_size": 32, "device": "cpu",
       "dropout": 0.2}


def _fit_args(tmp: Path, out: Path, extra=()):
    return ["fit", "--source-embeddings", tmp / "x.npy", "--target-embeddings", tmp / "y.npy",
            "--source-encoder", "src", "--target-encoder", "tgt", "--mapper", "mlp",
            "--mapper-params", json.dumps(MLP), "--held-out", "0", "--output", out, *extra]


def test_kill_training_subprocess_then_resume_matches_uninterrupted(tmp_path, capsys):
    import torch

    X, Y = pairs(300, 12, 10)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    ckdir = tmp_path / "ck"
    script = tmp_path / "run.py"
    # The child is slowed down after each checkpoint so the kill lands mid-run.
    script.write_text(textwrap.dedent("""
        import sys, time, torch
        torch.set_num_threads(1)
        from langalign.mappers import checkpoint as ck
        orig = ck.save
        def slow(*a, **k):
            out = orig(*a, **k)
            time.sleep(0.4)
            return out
        ck.save = slow
        from langalign.cli import main
        sys.exit(main(sys.argv[1:]))
    """))
    args = [str(a) for a in _fit_args(tmp_path, tmp_path / "killed", ["--checkpoint-dir", ckdir])]
    proc = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "LANGALIGN_NO_PROGRESS": "1"})
    try:
        for _ in range(2400):  # polls every 0.05 s: at most about 2 minutes, without reading the clock
            done = sorted(p.name for p in (ckdir / "forward").glob("epoch-*")) if (ckdir / "forward").is_dir() else []
            if done and done[-1] >= "epoch-00003":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed").exists()  # no partial artefact
    left = sorted(p.name for p in (ckdir / "forward").glob("epoch-*"))
    assert left and left[-1] < "epoch-00012"

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc, _, err = cli(capsys, *_fit_args(tmp_path, tmp_path / "resumed", ["--checkpoint-dir", ckdir, "--resume"]))
        assert rc == 0, err
        rc, _, err = cli(capsys, *_fit_args(tmp_path, tmp_path / "straight"))
        assert rc == 0, err
    finally:
        torch.set_num_threads(threads)
    from safetensors.numpy import load_file

    a = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    b = load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)


def test_resume_without_checkpoint_dir_is_an_error(tmp_path, capsys):
    X, Y = pairs(50, 8, 8)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    assert_one_line_error(*cli(capsys, *_fit_args(tmp_path, tmp_path / "o", ["--resume"]))[::2])
