"""Streaming encode: shards + manifest, resume after interruption, changed input, CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from _scale_helpers import CountingEncoder, text_vectors
from langalign.scale.cache import EmbeddingCache
from langalign.scale.streaming import ShardError, encode_to, iter_pair_chunks, load_shards, read_manifest, read_shards

TEXTS = [f"line {i}" for i in range(1234)]


def test_shards_and_manifest(tmp_path):
    enc = CountingEncoder()
    m = encode_to(enc, tmp_path / "out", iter(TEXTS), shard_size=100)
    assert m["count"] == 1234 and m["complete"] and len(m["shards"]) == 13
    assert [s["count"] for s in m["shards"]] == [100] * 12 + [34]
    assert (tmp_path / "out" / "shard-00012.npy").is_file()
    assert read_manifest(tmp_path / "out")["encoder"] == "toy"
    np.testing.assert_array_equal(load_shards(tmp_path / "out", verify=True), text_vectors(TEXTS))
    assert sum(a.shape[0] for a in read_shards(tmp_path / "out")) == 1234


def test_rerun_reuses_everything(tmp_path):
    enc = CountingEncoder()
    encode_to(enc, tmp_path, TEXTS, shard_size=200)
    enc.texts_seen = 0
    m = encode_to(enc, tmp_path, TEXTS, shard_size=200)
    assert enc.texts_seen == 0 and m["reused_shards"] == 7 and m["encoded_shards"] == 0


class Interrupt(Exception):
    pass


def _failing(texts, after):
    for i, t in enumerate(texts):
        if i == after:
            raise Interrupt
        yield t


def test_resume_equals_uninterrupted(tmp_path):
    enc = CountingEncoder()
    with pytest.raises(Interrupt):
        encode_to(enc, tmp_path / "a", _failing(TEXTS, 750), shard_size=100)
    m = read_manifest(tmp_path / "a")
    assert not m["complete"] and len(m["shards"]) == 7  # shards 0..6 finished before the failure
    with pytest.raises(ShardError, match="did not finish"):
        list(read_shards(tmp_path / "a"))
    enc.texts_seen = 0
    m = encode_to(enc, tmp_path / "a", iter(TEXTS), shard_size=100)
    assert m["reused_shards"] == 7 and enc.texts_seen == 1234 - 700
    encode_to(CountingEncoder(), tmp_path / "b", TEXTS, shard_size=100)
    np.testing.assert_array_equal(load_shards(tmp_path / "a"), load_shards(tmp_path / "b"))
    ma, mb = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert ma["shards"] == mb["shards"] and ma["count"] == mb["count"]


def test_changed_input_is_detected(tmp_path):
    enc = CountingEncoder()
    encode_to(enc, tmp_path, TEXTS, shard_size=100)
    changed = list(TEXTS)
    changed[550] = "something else"
    enc.texts_seen = 0
    m = encode_to(enc, tmp_path, changed[:1000], shard_size=100)
    assert m["reused_shards"] == 5 and m["count"] == 1000
    assert enc.texts_seen == 500  # from the changed shard on
    np.testing.assert_array_equal(load_shards(tmp_path), text_vectors(changed[:1000]))
    assert not (tmp_path / "shard-00010.npy").exists()  # stale shards of the longer input are gone


def test_empty_input_and_errors(tmp_path):
    enc = CountingEncoder()
    m = encode_to(enc, tmp_path / "e", iter([]))
    assert m["count"] == 0 and m["shards"] == [] and m["complete"]
    assert load_shards(tmp_path / "e").shape == (0, 16)
    with pytest.raises(ShardError, match="encoder 'toy'"):
        encode_to(CountingEncoder(name="other"), tmp_path / "e", ["a"])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        encode_to(enc, tmp_path / "t", ["a", 3])
    with pytest.raises(TypeError):
        encode_to(enc, tmp_path / "t2", "a single string")
    with pytest.raises(ValueError):
        encode_to(enc, tmp_path / "t3", ["a"], shard_size=0)


def test_corrupt_shard_is_caught(tmp_path):
    encode_to(CountingEncoder(), tmp_path, TEXTS[:300], shard_size=100)
    f = tmp_path / "shard-00001.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="checksum"):
        load_shards(tmp_path, verify=True)
    f.write_bytes(bytes(data[:200]))
    with pytest.raises(ShardError):
        load_shards(tmp_path)


def test_pair_chunks_align_different_shard_sizes(tmp_path):
    encode_to(CountingEncoder(), tmp_path / "x", TEXTS, shard_size=100)
    encode_to(CountingEncoder(name="y", salt="y"), tmp_path / "y", TEXTS, shard_size=333)
    X = np.concatenate([a for a, _ in iter_pair_chunks(tmp_path / "x", tmp_path / "y")])
    Y = np.concatenate([b for _, b in iter_pair_chunks(tmp_path / "x", tmp_path / "y")])
    np.testing.assert_array_equal(X, text_vectors(TEXTS))
    np.testing.assert_array_equal(Y, text_vectors(TEXTS, salt="y"))
    encode_to(CountingEncoder(name="y"), tmp_path / "short", TEXTS[:10])
    with pytest.raises(ShardError, match="row-aligned"):
        next(iter_pair_chunks(tmp_path / "x", tmp_path / "short"))


def test_encode_with_cache(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path / "cache")
    encode_to(enc, tmp_path / "a", TEXTS, shard_size=500, cache=cache)
    enc.texts_seen = 0
    encode_to(enc, tmp_path / "b", TEXTS, shard_size=300, cache=cache)
    assert enc.texts_seen == 0
    np.testing.assert_array_equal(load_shards(tmp_path / "b"), text_vectors(TEXTS))


def _cli(*args, env_home):
    import os

    env = {**os.environ, "LANGALIGN_DATA_HOME": str(env_home), "LANGALIGN_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "langalign.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_errors_are_one_line(tmp_path):
    r = _cli("encode", "--encoder", "minilm", "--input", str(tmp_path / "missing.txt"), "--output",
             str(tmp_path / "o"), env_home=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "no such file" in r.stderr
    (tmp_path / "in.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    r = _cli("encode", "--encoder", "minilm", "--input", str(tmp_path / "in.tsv"), "--output",
             str(tmp_path / "o"), env_home=tmp_path)
    assert r.returncode == 2 and "--column" in r.stderr
    r = _cli("cache", "clear", "--encoder", "nothing-here", env_home=tmp_path)
    assert r.returncode == 2 and "no cache for encoder" in r.stderr


def test_cli_text_readers(tmp_path):
    from langalign.cli.scale_commands import iter_texts
    from langalign.errors import DataError

    (tmp_path / "a.txt").write_text("one\n\nthree\r\n", encoding="utf-8")
    assert list(iter_texts(tmp_path / "a.txt")) == ["one", "", "three"]
    (tmp_path / "a.tsv").write_text("id\ttext\n1\thello\n2\tworld\n", encoding="utf-8")
    assert list(iter_texts(tmp_path / "a.tsv", "text")) == ["hello", "world"]
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n{"text": "y"}\n', encoding="utf-8")
    assert list(iter_texts(tmp_path / "a.jsonl", "text")) == ["x", "y"]
    (tmp_path / "b.tsv").write_text("id\ttext\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        list(iter_texts(tmp_path / "b.tsv", "text"))
    with pytest.raises(DataError, match="no column"):
        list(iter_texts(tmp_path / "a.tsv", "nope"))


@pytest.mark.integration
def test_cli_encode_real_model(tmp_path):
    (tmp_path / "in.txt").write_text("hello world\nannyeong\n", encoding="utf-8")
    r = _cli("encode", "--encoder", "use-multilingual", "--input", str(tmp_path / "in.txt"), "--output",
             str(tmp_path / "o"), "--cache", "--json", env_home=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["count"] == 2 and summary["dim"] == 512
    r = _cli("cache", "info", "--json", env_home=tmp_path)
    assert json.loads(r.stdout)["encoders"]["use-multilingual"]["entries"] == 2
