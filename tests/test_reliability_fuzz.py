"""Issue 6 fuzz suite: readers, the artefact loader and the CLI on random and broken input.

Each property counts the cases it ran in ``COUNTS`` (printed by the last test with
``-s``), so the closing note can say how many cases ran and what they found.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import langalign as la
from langalign import encoders
from langalign.cli import main
from langalign.data import read_labelled, read_parallel
from langalign.errors import ArtefactError, DataError
from langalign.transfer import CrossLingualClassifier

from _reliability_helpers import hashed_encoder, pairs

COUNTS: Counter = Counter()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def work():
    d = Path(tempfile.mkdtemp(prefix="langalign-fuzz-"))
    X, Y = pairs(80, 8, 8)
    la.LangAlign("src", "tgt", held_out=0).fit_embeddings(X, Y).save(d / "al")
    enc = hashed_encoder("fake-a", dim=8)
    clf = CrossLingualClassifier(enc, mode="zero-shot", head="mlp", head_params={"epochs": 2, "hidden": 8})
    clf.fit([f"t{i}" for i in range(40)], [i % 3 for i in range(40)]).save(d / "clf")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- readers

_lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=8)


@FUZZ
@given(header=st.sampled_from(["source\ttarget\n", "source,target\n", "", "x\n"]), body=_lines,
       junk=st.binary(max_size=40), ext=st.sampled_from([".tsv", ".csv", ".jsonl", ".json"]))
def test_readers_raise_only_data_errors(work, header, body, junk, ext):
    COUNTS["readers"] += 1
    p = work / f"fuzz{ext}"
    p.write_bytes(header.encode() + "\n".join(body).encode("utf-8", "surrogatepass") + junk)
    for read in (lambda: read_parallel(p), lambda: read_labelled(p, text="source", label="target")):
        try:
            read()
        except DataError:
            COUNTS["readers: DataError"] += 1


# ---------------------------------------------------------------- artefact loader

def _mutated_copy(work: Path, name: str, which: str, data: bytes) -> Path:
    dst = work / f"mut-{name}"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(work / name, dst)
    (dst / which).write_bytes(data)
    return dst


def _load(kind: str, path: Path):
    if kind == "al":
        return la.LangAlign.load(path)
    return CrossLingualClassifier.load(path, hashed_encoder("fake-a", dim=8), hashed_encoder("fake-a", dim=8))


@FUZZ
@given(kind=st.sampled_from(["al", "clf"]), which=st.sampled_from(["config.json", "model.safetensors"]),
       op=st.sampled_from(["flip", "truncate", "insert"]), pos=st.floats(0, 1), byte=st.integers(0, 255),
       n=st.integers(1, 8))
def test_loader_damage_gives_only_artefact_error(work, kind, which, op, pos, byte, n):
    COUNTS["loader"] += 1
    raw = bytearray((work / kind / which).read_bytes())
    i = min(int(pos * len(raw)), len(raw) - 1)
    if op == "flip":
        for j in range(i, min(i + n, len(raw))):
            raw[j] ^= byte or 1
    elif op == "truncate":
        raw = raw[:i]
    else:
        raw[i:i] = bytes([byte]) * n
    path = _mutated_copy(work, kind, which, bytes(raw))
    try:
        obj = _load(kind, path)
    except ArtefactError:
        COUNTS["loader: ArtefactError"] += 1
        return
    COUNTS["loader: loaded anyway"] += 1  # a harmless change (whitespace, a float digit): must still work
    if kind == "al":
        out = obj.to_target(np.ones((2, 8), np.float32))
        assert np.isfinite(out).all()
    else:
        obj.predict(["a", "b"])


@FUZZ
@given(cfg=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=12),
       key=st.sampled_from(["source_encoder", "target_encoder", "forward", "reverse", "mapper", "mapper_params",
                            "training", "format_version", "kind", "head_config", "mode", "aligner", "encoders",
                            "encoder_identity", "pair_task"]),
       kind=st.sampled_from(["al", "clf"]))
def test_config_fields_of_any_type_give_only_artefact_error(work, cfg, key, kind):
    COUNTS["config fields"] += 1
    config = json.loads((work / kind / "config.json").read_text())
    config[key] = cfg
    path = _mutated_copy(work, kind, "config.json", json.dumps(config).encode())
    try:
        _load(kind, path)
    except ArtefactError:
        COUNTS["config fields: ArtefactError"] += 1
    else:
        COUNTS["config fields: loaded anyway"] += 1


# ---------------------------------------------------------------- CLI

@FUZZ
@given(data=st.binary(max_size=300), ext=st.sampled_from([".txt", ".tsv", ".csv", ".jsonl", ".npy"]),
       cmd=st.sampled_from(["transform", "predict", "evaluate", "fit", "encode"]))
def test_cli_on_random_files_never_crashes(work, data, ext, cmd, capsys, monkeypatch):
    COUNTS["cli"] += 1
    monkeypatch.setitem(encoders._cache, "fake-a", hashed_encoder("fake-a", dim=8))
    monkeypatch.setenv("LANGALIGN_NO_PROGRESS", "1")
    f = work / f"rand{ext}"
    f.write_bytes(data)
    out = work / "cli-out"
    shutil.rmtree(out, ignore_errors=True)
    args = {
        "transform": ["transform", "--aligner", work / "al", "--input", f, "--output", out / "v.npy"],
        "predict": ["predict", "--model", work / "clf", "--input", f, "--output", out / "p.tsv"],
        "evaluate": ["evaluate", "--model", work / "clf", "--data", f],
        "fit": ["fit", "--pairs", f, "--source-encoder", "fake-a", "--output", out / "al"],
        "encode": ["encode", "--encoder", "fake-a", "--input", f, "--output", out / "emb"]
        + (["--column", "text"] if ext in (".tsv", ".jsonl") else []),
    }[cmd]
    rc = main([str(a) for a in args])
    _, err = capsys.readouterr()
    assert rc in (0, 2), err  # 3 would be an internal error (a bug)
    assert "Traceback" not in err
    if rc:
        assert len(err.strip().splitlines()) == 1 or err.strip().splitlines()[-1].startswith("langalign: error:")
        COUNTS[f"cli: error exit ({cmd})"] += 1
        produced = [p for p in out.rglob("*")] if out.exists() else []
        assert not [p for p in produced if p.name in ("v.npy", "p.tsv", "config.json")], produced
    else:
        COUNTS[f"cli: ok ({cmd})"] += 1


# ---------------------------------------------------------------- hand-made broken files

def test_hand_made_broken_artefacts(work):
    al = work / "al"
    cases = {
        "empty config": ("config.json", b""),
        "config is a list": ("config.json", b"[]"),
        "config deeply nested": ("config.json", b"[" * 100000 + b"]" * 100000),
        "config not utf8": ("config.json", b"\xff\xfe{}"),
        "weights empty": ("model.safetensors", b""),
        "weights header only": ("model.safetensors", (al / "model.safetensors").read_bytes()[:64]),
        "weights huge header length": ("model.safetensors", (2**62).to_bytes(8, "little") + b"{}"),
        "weights is a pickle": ("model.safetensors", b"\x80\x04\x95cos\nsystem\n(S'echo hi'\ntR."),
    }
    for which, data in cases.values():
        COUNTS["hand-made"] += 1
        with pytest.raises(ArtefactError):
            la.LangAlign.load(_mutated_copy(work, "al", which, data))
    broken_dir = work / "mut-dir"
    shutil.rmtree(broken_dir, ignore_errors=True)
    shutil.copytree(al, broken_dir)
    (broken_dir / "config.json").unlink()
    (broken_dir / "config.json").mkdir()
    with pytest.raises(ArtefactError):
        la.LangAlign.load(broken_dir)


def test_zz_report_counts():
    print("\nfuzz case counts:", json.dumps(dict(sorted(COUNTS.items())), indent=1))
