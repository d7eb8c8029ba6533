"""Synthetic encoders and data for the reliability tests (fast, no real models)."""
from __future__ import annotations

import hashlib

import numpy as np

from langalign.encoders import FunctionEncoder


def hashed_encoder(name: str = "fake-a", dim: int = 16, salt: str = "a") -> FunctionEncoder:
    """A deterministic encoder: each text's vector is seeded by a hash of (salt, text)."""
    def fn(texts):
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.blake2b(f"{salt}|{t}".encode(), digest_size=8).digest(), "little")
            out.append(np.random.default_rng(seed).standard_normal(dim))
        return np.asarray(out, dtype=np.float32)

    return FunctionEncoder(fn, name, dim)


def pairs(n: int = 200, d_in: int = 16, d_out: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    W = rng.standard_normal((d_in, d_out)).astype(np.float32) / np.sqrt(d_in)
    Y = (X @ W + 0.05 * rng.standard_normal((n, d_out))).astype(np.float32)
    return X, Y


def interrupting_save(save, at_epoch: int):
    """Wrap ``checkpoint.save`` so training stops (KeyboardInterrupt) right after checkpointing ``at_epoch``."""
    def wrapped(folder, key, **kw):
        save(folder, key, **kw)
        if kw["epoch"] == at_epoch:
            raise KeyboardInterrupt

    return wrapped
