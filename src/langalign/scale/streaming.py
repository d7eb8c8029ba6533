"""Streaming encode to sharded ``.npy`` files, with resume.

Layout of an output folder::

    shard-00000.npy, shard-00001.npy, ...   float32 (count, dim), np.save without pickle
    manifest.json                           encoder, dim, shard_size, count, complete,
                                            shards: [{file, count, sha256, input_sha256}]

Texts are consumed lazily, ``shard_size`` at a time, so memory is bounded by one
shard whatever the corpus size. Each shard file is written atomically and only
then recorded in the manifest (also written atomically): a shard listed in the
manifest is finished. Running :func:`encode_to` again on the same folder skips
finished shards whose input hash still matches and re-encodes from the first
shard whose input changed, so an interrupted run resumes where it stopped and a
changed input is never silently mixed with stale vectors.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from .._io import atomic_path, write_json_atomic
from .._progress import progress, progress_enabled
from ..encoders import Encoder, load_encoder
from ..errors import DataError
from .cache import EmbeddingCache, cached_encode

__all__ = ["encode_to", "read_shards", "load_shards", "read_manifest", "read_pair_manifests", "iter_pair_chunks",
           "shard_files", "ShardError", "DEFAULT_SHARD_SIZE"]

MANIFEST = "manifest.json"
FORMAT = "langalign-shards"
FORMAT_VERSION = 1
DEFAULT_SHARD_SIZE = 10_000


class ShardError(DataError):
    """A shard folder is missing, incomplete, corrupt or for another encoder."""


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.npy"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _hash_texts(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))  # length prefix: ["ab","c"] != ["a","bc"]
        h.update(b)
    return h.hexdigest()


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts is a single string; expected an iterable of strings")
    buf: list[str] = []
    for n, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{n}] is {type(t).__name__}, expected str")
        buf.append(t)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a shard folder (raises :class:`ShardError` naming the problem).

    Every field is checked for type and range (a manifest is input like any other);
    the shard files themselves are checked by the readers, see :func:`shard_files`.
    """
    p = Path(path) / MANIFEST
    if not p.is_file():
        raise ShardError(f"{path}: no {MANIFEST}; not a langalign shard folder (write one with 'langalign encode')")
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ShardError(f"{p}: unreadable manifest: {e}") from None
    except RecursionError:
        raise ShardError(f"{p}: unreadable manifest: nested too deeply") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ShardError(f"{p}: not a langalign shard manifest")
    _check_fields(p, m)
    return m


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_fields(p: Path, m: dict[str, Any]) -> None:
    # Types first: a wrong type must be a ShardError here, not a TypeError (or a
    # 10**12-row loop) somewhere downstream.
    def bad(field: str, want: str) -> ShardError:
        return ShardError(f"{p}: field {field!r} is {m.get(field)!r}; expected {want}")

    version = m.get("version", 0)
    if not _is_int(version) or version < 0:
        raise bad("version", "a non-negative integer")
    if version > FORMAT_VERSION:
        raise ShardError(f"{p}: shard format version {version} is newer than this langalign supports")
    for field in ("dim", "shard_size"):
        if not _is_int(m.get(field)) or m[field] < 1:
            raise bad(field, "an integer >= 1")
    if not _is_int(m.get("count")) or m["count"] < 0:
        raise bad("count", "an integer >= 0")
    if not isinstance(m.get("complete", False), bool):
        raise bad("complete", "true or false")
    if not isinstance(m.get("encoder", ""), str):
        raise bad("encoder", "an encoder name (a string)")
    if not isinstance(m.get("fingerprint"), (str, type(None))):
        raise bad("fingerprint", "a string or null")
    if m.get("dtype", "float32") != "float32":
        raise bad("dtype", '"float32"')
    shards = m.get("shards")
    if not isinstance(shards, list):
        raise bad("shards", "a list of shard entries")
    seen: set[str] = set()
    for i, s in enumerate(shards):
        where = f"{p}: shards[{i}]"
        if not isinstance(s, dict):
            raise ShardError(f"{where} is {s!r}; expected an object with file and count")
        name = s.get("file")
        if not isinstance(name, str) or not name:
            raise ShardError(f"{where}: 'file' is {name!r}; expected a file name")
        parts = Path(name).parts
        if "\0" in name or Path(name).is_absolute() or ".." in parts or name in (".", ""):
            raise ShardError(f"{where}: file {name!r} is outside the shard folder; a shard file must be "
                             "named relative to its folder (no absolute path, no '..')")
        if name in seen:
            raise ShardError(f"{where}: file {name!r} is listed twice")
        seen.add(name)
        count = s.get("count")
        if not _is_int(count) or count < 0:
            raise ShardError(f"{where}: 'count' is {count!r}; expected an integer >= 0")
        if count > m["shard_size"]:
            raise ShardError(f"{where}: 'count' {count} exceeds the manifest's shard_size {m['shard_size']}")
        for key in ("sha256", "input_sha256"):
            if not isinstance(s.get(key, ""), str):
                raise ShardError(f"{where}: {key!r} is {s.get(key)!r}; expected a hex digest")
    total = sum(s["count"] for s in shards)
    if total != m["count"]:
        raise ShardError(f"{p}: field 'count' is {m['count']} but its shards hold {total} rows by their counts")


def shard_files(path: str | os.PathLike, m: dict[str, Any] | None = None) -> list[Path]:
    """The shard files of a folder, each checked against its manifest entry before any data is read.

    Each must be a regular file inside the folder (a symlink may not lead out), and
    its ``.npy`` header must say exactly (count, dim) float32, with the bytes to
    match: counts and dims come from the files, never from the manifest alone.
    """
    m = read_manifest(path) if m is None else m
    folder = Path(path)
    root = folder.resolve()
    dim = m["dim"]
    out: list[Path] = []
    for i, s in enumerate(m["shards"]):
        f = folder / s["file"]
        where = f"{folder / MANIFEST}: shards[{i}] ({s['file']})"
        try:
            real = f.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a symlink loop
            raise ShardError(f"{where}: shard listed in the manifest is missing") from None
        if not real.is_relative_to(root):
            raise ShardError(f"{where}: leads outside the shard folder (to {real}); refusing to read it")
        if real in out:  # "./a.npy" and "a.npy", or a symlink to another entry: the same rows twice
            raise ShardError(f"{where}: is the same file as shards[{out.index(real)}]")
        st = real.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ShardError(f"{where}: not a regular file")
        shape, dtype, offset = _npy_header(real, where)
        if shape != (s["count"], dim) or dtype != np.float32:
            raise ShardError(f"{where}: shape {shape} dtype {dtype}, manifest says ({s['count']}, {dim}) float32")
        need = offset + s["count"] * dim * 4
        if st.st_size != need:
            raise ShardError(f"{where}: file holds {st.st_size} bytes but its header needs {need} (truncated or "
                             "altered)")
        out.append(real)
    return out


def _npy_header(f: Path, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header; reads a few hundred bytes, never the data."""
    from numpy.lib import format as npy

    try:
        with open(f, "rb") as fh:
            version = npy.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = npy.read_array_header_2_0(fh)
            else:
                raise ValueError(f".npy format version {version} is not one np.save writes for float32")
            return tuple(shape), dtype, fh.tell()
    except Exception as e:  # any header problem means: not a shard
        raise ShardError(f"{where}: unreadable shard, not a .npy array ({e})") from None


def _fingerprint_or_none(enc: Encoder) -> str | None:
    try:
        return enc.fingerprint()
    except Exception:  # a custom function that cannot encode the probe sentences
        return None


def _save_npy_atomic(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def encode_to(encoder: Encoder | str, path: str | os.PathLike, texts: Iterable[str],
              shard_size: int = DEFAULT_SHARD_SIZE, batch_size: int = 256, cache: Any = None,
              show_progress: bool | None = None) -> dict[str, Any]:
    """Encode ``texts`` (any iterable, read lazily) into shards under ``path``; resume if present.

    ``cache``: an :class:`~langalign.scale.cache.EmbeddingCache`, or ``True`` for the default
    one. Returns the final manifest plus ``"encoded_shards"`` / ``"reused_shards"``
    (what this call did). Re-running with a different encoder or shard size on a
    folder raises :class:`ShardError`; use a new folder.
    """
    enc = load_encoder(encoder)
    shard_size = int(shard_size)
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if cache is True:
        cache = EmbeddingCache()
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ShardError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    old_shards: list[dict[str, Any]] = []
    if (out / MANIFEST).is_file():
        old = read_manifest(out)
        if old.get("encoder") != enc.name or int(old.get("dim", -1)) != enc.dim:
            raise ShardError(f"{out} holds embeddings of encoder {old.get('encoder')!r} ({old.get('dim')}-d), "
                             f"not {enc.name!r} ({enc.dim}-d); write to a new folder")
        fp = _fingerprint_or_none(enc)
        if old.get("fingerprint") and fp and old["fingerprint"] != fp:
            raise ShardError(f"{out} holds embeddings of encoder {old.get('encoder')!r} with fingerprint "
                             f"{old['fingerprint']}, but this {enc.name!r} has fingerprint {fp} (same name, "
                             "different vectors); write to a new folder")
        if int(old.get("shard_size", -1)) != shard_size:
            raise ShardError(f"{out} was written with shard_size={old.get('shard_size')}, not {shard_size}; "
                             "resume with the same shard size or write to a new folder")
        old_shards = list(old.get("shards", []))
    elif any(out.glob("shard-*.npy")):
        raise ShardError(f"{out} holds shard files but no manifest; remove them or write to a new folder")

    manifest: dict[str, Any] = {
        "format": FORMAT, "version": FORMAT_VERSION, "encoder": enc.name, "dim": int(enc.dim),
        "fingerprint": _fingerprint_or_none(enc),
        "dtype": "float32", "shard_size": shard_size, "count": 0, "complete": False, "shards": [],
    }
    encoded = reused = 0
    # The total is unknown (lazy input): show a bar only where someone watches.
    show = show_progress if show_progress is not None else (sys.stderr.isatty() and progress_enabled(None, None))
    for i, chunk in enumerate(progress(_chunks(texts, shard_size), desc=f"encode_to [{enc.name}]",
                                       show=show, unit="shard")):
        digest = _hash_texts(chunk)
        fname = shard_name(i)
        prev = old_shards[i] if i < len(old_shards) else None
        if (prev is not None and prev.get("input_sha256") == digest and prev.get("count") == len(chunk)
                and prev.get("file") == fname and (out / fname).is_file()):
            manifest["shards"].append(prev)
            reused += 1
        else:
            if prev is not None:
                old_shards = old_shards[:i]  # input changed here: later shards are stale too
            if cache is not None:
                vecs = cached_encode(enc, chunk, cache, batch_size=batch_size, show_progress=False)
            else:
                vecs = enc.encode(chunk, batch_size=batch_size, show_progress=False)
            vecs = np.ascontiguousarray(vecs, dtype=np.float32)
            _save_npy_atomic(out / fname, vecs)
            manifest["shards"].append({"file": fname, "count": len(chunk), "sha256": _sha256_file(out / fname),
                                       "input_sha256": digest})
            encoded += 1
            # The shard is on disk before the manifest names it: a crash between the two
            # only costs re-encoding this shard.
            manifest["count"] = sum(s["count"] for s in manifest["shards"])
            write_json_atomic(out / MANIFEST, {**manifest, "shards": manifest["shards"] + old_shards[i + 1:]})
        manifest["count"] = sum(s["count"] for s in manifest["shards"])

    # Shards beyond the end of the (possibly shorter) input are stale.
    keep = {s["file"] for s in manifest["shards"]}
    for f in out.glob("shard-*.npy"):
        if f.name not in keep:
            f.unlink()
    manifest["complete"] = True
    write_json_atomic(out / MANIFEST, manifest)
    return {**manifest, "encoded_shards": encoded, "reused_shards": reused}


def read_shards(path: str | os.PathLike, verify: bool = False, mmap: bool = False,
                allow_incomplete: bool = False) -> Iterator[np.ndarray]:
    """Yield the shard arrays of a folder in order, one at a time (bounded memory).

    Every shard file is checked (inside the folder, regular, header matching the
    manifest: :func:`shard_files`) before the first is read; ``verify=True`` also
    checks each sha256. An unfinished folder (interrupted ``encode_to``) raises unless
    ``allow_incomplete``. ``mmap=True`` memory-maps instead of reading.
    """
    m = read_manifest(path)
    if not allow_incomplete:
        _check_complete(path, m)
    return _read_checked(m, shard_files(path, m), verify, mmap)


def _read_checked(m: dict[str, Any], files: list[Path], verify: bool, mmap: bool) -> Iterator[np.ndarray]:
    dim = m["dim"]
    for s, f in zip(m["shards"], files, strict=True):
        if verify and _sha256_file(f) != s.get("sha256"):
            raise ShardError(f"{f}: checksum does not match the manifest (file changed or corrupt)")
        try:
            arr = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ShardError(f"{f}: unreadable shard ({e})") from None
        if arr.shape != (s["count"], dim) or arr.dtype != np.float32:  # changed since the header check
            raise ShardError(f"{f}: shape {arr.shape} dtype {arr.dtype}, manifest says ({s['count']}, {dim}) float32")
        yield arr


def load_shards(path: str | os.PathLike, verify: bool = False) -> np.ndarray:
    """All rows of a shard folder as one (count, dim) float32 array."""
    m = read_manifest(path)
    _check_complete(path, m)
    files = shard_files(path, m)  # before allocating: the size comes from the files, not the manifest
    out = np.empty((m["count"], m["dim"]), dtype=np.float32)
    pos = 0
    for arr in _read_checked(m, files, verify, False):
        out[pos : pos + arr.shape[0]] = arr
        pos += arr.shape[0]
    if pos != out.shape[0]:
        raise ShardError(f"{path}: shards hold {pos} rows, manifest says {out.shape[0]}")
    return out


def _check_complete(path: str | os.PathLike, m: dict[str, Any]) -> None:
    if not m.get("complete"):
        raise ShardError(f"{path}: encoding did not finish (incomplete, {m.get('count', 0)} rows so far); "
                         "run the same encode again to resume")


def read_pair_manifests(x_path: str | os.PathLike, y_path: str | os.PathLike) -> tuple[dict, dict]:
    """The manifests of two shard folders holding pairs: both finished, with the same row count.

    Every shard file of both is checked against its manifest (:func:`shard_files`), so
    the counts returned are what the files hold, before any work starts.
    """
    mx, my, _, _ = _pair_files(x_path, y_path)
    return mx, my


def _pair_files(x_path: str | os.PathLike, y_path: str | os.PathLike) -> tuple[dict, dict, list[Path], list[Path]]:
    mx, my = read_manifest(x_path), read_manifest(y_path)
    # Completeness first: an interrupted encode also has too few rows, and "run the
    # encode again" is the useful message.
    _check_complete(x_path, mx)
    _check_complete(y_path, my)
    if mx["count"] != my["count"]:
        raise ShardError(f"{x_path} has {mx.get('count')} rows but {y_path} has {my.get('count')}; "
                         "pairs must be row-aligned")
    return mx, my, shard_files(x_path, mx), shard_files(y_path, my)


def iter_pair_chunks(x_path: str | os.PathLike, y_path: str | os.PathLike, verify: bool = False,
                     mmap: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row-aligned ``(X_chunk, Y_chunk)`` pieces of two shard folders, whatever their shard sizes."""
    mx, my, fx, fy = _pair_files(x_path, y_path)
    xs, ys = _read_checked(mx, fx, verify, mmap), _read_checked(my, fy, verify, mmap)
    xa = ya = None
    xo = yo = 0
    while True:
        if xa is None or xo == xa.shape[0]:
            xa, xo = next(xs, None), 0
        if ya is None or yo == ya.shape[0]:
            ya, yo = next(ys, None), 0
        if xa is None or ya is None:
            return
        take = min(xa.shape[0] - xo, ya.shape[0] - yo)
        if take == 0:  # an empty shard
            continue
        yield xa[xo : xo + take], ya[yo : yo + take]
        xo += take
        yo += take
