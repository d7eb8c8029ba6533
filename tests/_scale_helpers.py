"""Synthetic encoders shared by the scale tests: deterministic per text, fast, counting calls."""
from __future__ import annotations

import hashlib

import numpy as np

from langalign.encoders import FunctionEncoder


def text_vectors(texts: list[str], dim: int = 16, salt: str = "") -> np.ndarray:
    """A fixed pseudo-random vector per text (independent of batch composition)."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256((salt + t).encode("utf-8")).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).standard_normal(dim)
    return out


class CountingEncoder(FunctionEncoder):
    """A FunctionEncoder that counts the texts it was asked to encode."""

    def __init__(self, name: str = "toy", dim: int = 16, salt: str = ""):
        self.calls = 0
        self.texts_seen = 0

        def fn(texts: list[str]) -> np.ndarray:
            self.calls += 1
            self.texts_seen += len(texts)
            return text_vectors(texts, dim, salt)

        super().__init__(fn, name, dim)


def paired_encoder(name: str = "toy-y", dim: int = 16) -> FunctionEncoder:
    """A second 'language': a fixed linear map of the first encoder's vectors plus text-specific noise."""
    rng = np.random.default_rng(123)
    A = (np.eye(dim) + 0.3 * rng.standard_normal((dim, dim))).astype(np.float32)

    def fn(texts: list[str]) -> np.ndarray:
        return text_vectors(texts, dim) @ A + 0.2 * text_vectors(texts, dim, salt="noise") + 0.5

    return FunctionEncoder(fn, name, dim)
