"""Embedding cache: hits return identical vectors without calling the encoder; concurrent writers are safe."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from _scale_helpers import CountingEncoder, text_vectors
from langalign.scale.cache import CacheError, CachedEncoder, EmbeddingCache, cached_encode
from langalign.encoders import Encoder, load_encoder


def test_hit_is_identical_and_skips_encoder(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    texts = [f"sentence {i}" for i in range(50)] + ["sentence 3", "", "ünïcødé 한국어"]
    first = cached_encode(enc, texts, cache)
    assert enc.calls == 1 and enc.texts_seen == 52  # misses deduplicated, one batched call
    np.testing.assert_array_equal(first, enc.encode(texts))
    enc.calls = enc.texts_seen = 0
    second = cached_encode(enc, texts, cache)
    assert enc.calls == 0
    assert second.dtype == np.float32
    np.testing.assert_array_equal(second, first)


def test_partial_hits_encode_only_misses(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    cached_encode(enc, ["a", "b"], cache)
    enc.texts_seen = 0
    out = cached_encode(enc, ["b", "c", "a", "d", "c"], cache)
    assert enc.texts_seen == 2
    np.testing.assert_array_equal(out, text_vectors(["b", "c", "a", "d", "c"]))


def test_cached_encoder_is_an_encoder(tmp_path):
    enc = CountingEncoder(name="my-model", dim=16)
    ce = CachedEncoder(enc, EmbeddingCache(tmp_path))
    assert isinstance(ce, Encoder) and ce.name == "my-model" and ce.dim == 16
    assert load_encoder(ce) is ce
    a = ce.encode(["x", "y"])
    enc.calls = 0
    np.testing.assert_array_equal(ce.encode(["y", "x"]), a[::-1])
    assert enc.calls == 0
    assert ce.encode([]).shape == (0, 16)


def test_size_report_and_clear(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cached_encode(CountingEncoder("enc-a"), ["1", "2", "3"], cache)
    cached_encode(CountingEncoder("org/enc-b", dim=8), ["1"], cache)
    rep = cache.size_report()
    assert rep["entries"] == 4 and rep["bytes"] > 0
    assert rep["encoders"]["enc-a"]["entries"] == 3
    assert rep["encoders"]["org/enc-b"]["dim"] == 8
    assert cache.clear("enc-a") == 3
    assert set(cache.size_report()["encoders"]) == {"org/enc-b"}
    assert cache.clear() == 1
    assert cache.size_report()["entries"] == 0


def test_dimension_clash_is_an_error(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cached_encode(CountingEncoder("same", dim=16), ["a"], cache)
    with pytest.raises(CacheError, match="16-d"):
        cached_encode(CountingEncoder("same", dim=8), ["a"], cache)


def test_default_root_follows_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGALIGN_DATA_HOME", str(tmp_path))
    assert EmbeddingCache().root == tmp_path / "cache"


def _writer(root: str, start: int, out_q) -> None:
    enc = CountingEncoder()
    cache = EmbeddingCache(root)
    # Overlapping ranges, many small transactions: both processes race on the same keys.
    for s in range(start, start + 400, 20):
        cached_encode(enc, [f"t{i}" for i in range(s, s + 40)], cache)
    out_q.put(enc.texts_seen)


def test_two_processes_writing_at_once(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), start, q)) for start in (0, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    texts = [f"t{i}" for i in range(0, 620)]
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path)
    got = cached_encode(enc, texts, cache)
    assert enc.texts_seen == 0  # everything both wrote is there
    np.testing.assert_array_equal(got, text_vectors(texts))
    assert cache.size_report()["entries"] == 620
    con = sqlite3.connect(str(cache.path_for("toy")))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
