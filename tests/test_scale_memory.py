"""Peak memory stays flat: streaming encode and sharded fit of a corpus 10x larger than one shard.

Measured with tracemalloc (numpy reports its buffers to it); the bounds are generous
and compare against the size of the whole corpus, so they are not machine-dependent.
"""
from __future__ import annotations

import tracemalloc

import numpy as np

from langalign.encoders import FunctionEncoder
from langalign.mappers import LinearMapper, ProcrustesMapper
from langalign.scale.sharded_fit import fit_mapper_from_shards
from langalign.scale.streaming import encode_to

DIM = 256
SHARD = 1000


def _enc(name: str, shift: float) -> FunctionEncoder:
    def fn(texts: list[str]) -> np.ndarray:
        idx = np.array([int(t) for t in texts], dtype=np.float32)[:, None]
        base = np.sin(idx * np.arange(1, DIM + 1, dtype=np.float32) * 0.01)
        return (base + shift * np.cos(idx * 0.37)).astype(np.float32)

    return FunctionEncoder(fn, name, DIM)


def _texts(n: int):
    return (str(i) for i in range(n))  # lazy: the corpus never exists as a list


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_encode_and_sharded_fit_keep_memory_flat(tmp_path):
    small, big = 2 * SHARD, 20 * SHARD  # big = 10x small, 20x one shard
    full_big = big * DIM * 4  # bytes of the whole big corpus on one side (20 MB)

    def encode(n, tag):
        encode_to(_enc("x", 0.0), tmp_path / f"x{tag}", _texts(n), shard_size=SHARD)
        encode_to(_enc("y", 0.5), tmp_path / f"y{tag}", _texts(n), shard_size=SHARD)

    p_enc_small = _peak(lambda: encode(small, "s"))
    p_enc_big = _peak(lambda: encode(big, "b"))
    assert p_enc_big < 2 * p_enc_small + (1 << 20), (p_enc_small, p_enc_big)
    assert p_enc_big < 0.25 * full_big, (p_enc_big, full_big)

    for mapper in (LinearMapper(alpha=1.0), LinearMapper(), ProcrustesMapper(normalize=True)):
        p_fit_small = _peak(lambda m=mapper: fit_mapper_from_shards(m.clone(), tmp_path / "xs", tmp_path / "ys"))
        p_fit_big = _peak(lambda m=mapper: fit_mapper_from_shards(m.clone(), tmp_path / "xb", tmp_path / "yb"))
        assert p_fit_big < 2 * p_fit_small + (1 << 20), (mapper, p_fit_small, p_fit_big)
        # PairStats (k folds x DIM^2 float64) plus one shard pair; never the corpus (2 x 20 MB)
        assert p_fit_big < 2 * full_big, (mapper, p_fit_big)
