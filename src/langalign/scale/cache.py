"""On-disk embedding cache: encoding the same text with the same encoder twice costs nothing.

Layout::

    <data home>/cache/<encoder name, sanitised>/embeddings.sqlite

One SQLite database per encoder, table ``emb(key BLOB PRIMARY KEY, vec BLOB)``:
``key`` is the 16-byte BLAKE2b digest of the UTF-8 text, ``vec`` the raw
float32 bytes of its embedding (no pickle; a blob of the wrong length is
treated as a miss). SQLite in WAL mode serialises concurrent writers and lets
readers run alongside them, so two processes filling the same cache at once
leave it consistent; ``INSERT OR IGNORE`` makes a race on the same text harmless
(both computed the same vector). The database file should sit on a local disk:
SQLite locking is unreliable on network file systems.

The cache namespace is the encoder's ``name`` (plus ``+normalize`` for
sentence-transformers encoders built with ``normalize=True``), which is what
every artefact records as well: two different models under one name would share
entries, exactly as they would be confused everywhere else. An encoder's roles
are separate names (``e5-small`` for queries, ``e5-small:passage`` for documents),
so their vectors never share entries.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_texts
from ..encoders import Encoder, load_encoder
from ..errors import LangAlignError

__all__ = ["EmbeddingCache", "CachedEncoder", "cached_encode", "default_cache_root", "CacheError"]

DB_NAME = "embeddings.sqlite"
# Keys per SELECT ... IN (...): below SQLite's historic 999-parameter limit.
_LOOKUP_CHUNK = 900
# Seconds a writer waits for another process's lock before giving up.
_BUSY_TIMEOUT_S = 120.0


class CacheError(LangAlignError):
    """The embedding cache is unusable (corrupt database, dimension clash)."""


def default_cache_root() -> Path:
    """``<data home>/cache``; the data home is ``$LANGALIGN_DATA_HOME`` or the user cache dir."""
    try:
        from ..data import data_home
    except ImportError:  # the data layer is optional here; same rule as langalign.data.data_home
        env = os.environ.get("LANGALIGN_DATA_HOME")
        if env:
            return Path(env).expanduser() / "cache"
        import platformdirs

        return Path(platformdirs.user_cache_dir("langalign")) / "cache"
    return data_home() / "cache"


def cache_namespace(encoder: Encoder | str) -> str:
    """The name cache entries are filed under (see module docstring)."""
    if isinstance(encoder, str):
        return encoder
    name = encoder.name
    if getattr(encoder, "normalize", False) is True:
        name += "+normalize"
    return name


def _sanitise(name: str) -> str:
    # A readable folder name; a short hash keeps names that sanitise alike apart
    # ("org/model" vs "org_model").
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "encoder"
    if safe != name:
        safe = f"{safe[:80]}-{hashlib.blake2b(name.encode('utf-8'), digest_size=4).hexdigest()}"
    return safe


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """Embeddings by (encoder name, text hash), on disk, shared between processes.

    ``root`` defaults to ``<data home>/cache``. Methods open a short-lived
    connection per call, so an instance is safe to share between threads and to
    use after ``fork``.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_root()

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={str(self.root)!r})"

    # -- low level ---------------------------------------------------------------
    def path_for(self, encoder: Encoder | str) -> Path:
        return self.root / _sanitise(cache_namespace(encoder)) / DB_NAME

    def _connect(self, db: Path) -> sqlite3.Connection:
        db.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(str(db), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            self._setup(con)
        except sqlite3.DatabaseError as e:
            raise CacheError(f"embedding cache {db} is unusable ({e}); "
                             "remove it with 'langalign cache clear'") from None
        return con

    @staticmethod
    def _setup(con: sqlite3.Connection) -> None:
        # Switching to WAL needs a brief exclusive lock; retry if another process holds it.
        for attempt in range(50):
            try:
                con.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == 49:
                    raise
                time.sleep(0.05 * (attempt + 1))
        con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable except on power loss, fast
        con.execute("CREATE TABLE IF NOT EXISTS emb (key BLOB PRIMARY KEY, vec BLOB NOT NULL) WITHOUT ROWID")
        con.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")

    def _check_meta(self, con: sqlite3.Connection, name: str, dim: int, db: Path,
                    encoder: Encoder | None = None) -> None:
        con.execute("INSERT OR IGNORE INTO meta VALUES ('encoder', ?), ('dim', ?)", (name, str(dim)))
        got = dict(con.execute("SELECT k, v FROM meta").fetchall())
        # The fingerprint costs one encoder call: record it when the encoder already knows
        # it (encode_to and saved artefacts compute it), verify it whenever one is recorded.
        known = isinstance(encoder, Encoder) and "_fingerprint" in vars(getattr(encoder, "encoder", encoder))
        fp = _fingerprint_or_none(encoder) if (known or "fingerprint" in got) else None
        if fp is not None and "fingerprint" not in got:
            con.execute("INSERT OR IGNORE INTO meta VALUES ('fingerprint', ?)", (fp,))
            got = dict(con.execute("SELECT k, v FROM meta").fetchall())
        if int(got.get("dim", dim)) != dim:
            raise CacheError(f"embedding cache {db} holds {got['dim']}-d vectors for {got.get('encoder')!r}, "
                             f"but encoder {name!r} gives {dim}-d; clear it with "
                             f"'langalign cache clear --encoder {name}'")
        # Same name, other model (a re-trained hub model, a custom encoder reusing a name):
        # serving its cached vectors would silently mix two encoders.
        if fp is not None and got.get("fingerprint", fp) != fp:
            raise CacheError(f"embedding cache {db} was filled by encoder {got.get('encoder')!r} with fingerprint "
                             f"{got['fingerprint']}, but this encoder {name!r} has fingerprint {fp}: same name, "
                             f"different vectors; clear it with 'langalign cache clear --encoder {name}'")

    def get_many(self, encoder: Encoder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Look texts up: returns ``(vectors (n, dim) float32, found (n,) bool)``; misses are zero rows."""
        dim = int(encoder.dim)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        if not texts:
            return out, found
        db = self.path_for(encoder)
        if not db.is_file():
            return out, found
        keys = [text_key(t) for t in texts]
        where: dict[bytes, list[int]] = {}
        for i, k in enumerate(keys):
            where.setdefault(k, []).append(i)
        uniq = list(where)
        nbytes = dim * 4
        with closing(self._connect(db)) as con:
            self._check_meta(con, cache_namespace(encoder), dim, db, encoder)
            for s in range(0, len(uniq), _LOOKUP_CHUNK):
                part = uniq[s : s + _LOOKUP_CHUNK]
                q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})"
                for k, blob in con.execute(q, part):
                    if len(blob) != nbytes:  # damaged entry: recompute it
                        continue
                    vec = np.frombuffer(blob, dtype="<f4")
                    rows = where[bytes(k)]
                    out[rows] = vec
                    found[rows] = True
        return out, found

    def put_many(self, encoder: Encoder, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for texts (existing entries are kept as they are)."""
        if len(texts) == 0:
            return
        dim = int(encoder.dim)
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        if vectors.shape != (len(texts), dim):
            raise ValueError(f"vectors have shape {vectors.shape}, expected {(len(texts), dim)}")
        db = self.path_for(encoder)
        rows = [(text_key(t), vectors[i].tobytes()) for i, t in enumerate(texts)]
        with closing(self._connect(db)) as con:
            self._check_meta(con, cache_namespace(encoder), dim, db, encoder)
            # One transaction per call: other processes see all of it or none of it.
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT OR IGNORE INTO emb VALUES (?, ?)", rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    # -- reports and housekeeping -------------------------------------------------------
    def _encoder_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(d for d in self.root.iterdir() if d.is_dir() and (d / DB_NAME).is_file())

    def size_report(self) -> dict[str, Any]:
        """``{"root", "entries", "bytes", "encoders": {name: {"entries", "bytes", "dim", "path"}}}``."""
        encoders: dict[str, Any] = {}
        for d in self._encoder_dirs():
            db = d / DB_NAME
            try:
                with closing(self._connect(db)) as con:
                    meta = dict(con.execute("SELECT k, v FROM meta").fetchall())
                    n = int(con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
            except (CacheError, sqlite3.DatabaseError) as e:
                meta, n = {"error": str(e)}, 0
            size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            name = meta.get("encoder", d.name)
            encoders[name] = {"entries": n, "bytes": size, "dim": int(meta["dim"]) if "dim" in meta else None,
                              "path": str(d)}
            if "error" in meta:
                encoders[name]["error"] = meta["error"]
        return {"root": str(self.root), "entries": sum(e["entries"] for e in encoders.values()),
                "bytes": sum(e["bytes"] for e in encoders.values()), "encoders": encoders}

    def clear(self, encoder: Encoder | str | None = None) -> int:
        """Delete the cache of one encoder (by name or object), or of all; returns entries removed.

        Do not clear while another process is writing to the same encoder's cache.
        """
        report = self.size_report()["encoders"]
        if encoder is None:
            targets = list(report)
        else:
            name = cache_namespace(encoder)
            targets = [name] if name in report else []
        removed = 0
        for name in targets:
            removed += report[name]["entries"]
            shutil.rmtree(report[name]["path"], ignore_errors=True)
        return removed

    def __len__(self) -> int:
        return int(self.size_report()["entries"])


def cached_encode(encoder: Encoder, texts: Iterable[str], cache: EmbeddingCache | None = None,
                  **kw: Any) -> np.ndarray:
    """``encoder.encode(texts, **kw)``, but texts already in ``cache`` are not encoded again.

    The misses (deduplicated) are encoded in one call and stored; the result has
    the same rows, in the same order, as the uncached call. ``cache=None`` uses
    the default cache in the data home.
    """
    if isinstance(encoder, CachedEncoder):
        cache = cache or encoder.cache
        encoder = encoder.encoder
    texts = check_texts(texts)
    cache = cache if cache is not None else EmbeddingCache()
    out, found = cache.get_many(encoder, texts)
    if not found.all():
        miss_idx = np.flatnonzero(~found)
        first: dict[str, int] = {}
        for i in miss_idx:  # each distinct missing text once
            first.setdefault(texts[i], len(first))
        uniq = list(first)
        vecs = encoder.encode(uniq, **kw)
        cache.put_many(encoder, uniq, vecs)
        out[miss_idx] = vecs[[first[texts[i]] for i in miss_idx]]
    return out


def _fingerprint_or_none(encoder: Encoder | None) -> str | None:
    if not isinstance(encoder, Encoder):
        return None
    try:
        return encoder.fingerprint()
    except Exception:  # a custom function that cannot encode the probe sentences: name + dim only
        return None


class CachedEncoder(Encoder):
    """An :class:`Encoder` that consults an :class:`EmbeddingCache` first.

    It carries the wrapped encoder's ``name`` and ``dim``, so artefacts built
    through it record the real model, and can be passed anywhere an encoder is.
    """

    def __init__(self, encoder: Encoder | str, cache: EmbeddingCache | None = None):
        inner = load_encoder(encoder)
        if isinstance(inner, CachedEncoder):
            inner = inner.encoder
        self.encoder: Encoder = inner
        self.cache = cache if cache is not None else EmbeddingCache()
        self.name = inner.name
        self.dim = inner.dim
        self.max_chars = inner.max_chars
        if hasattr(inner, "normalize"):
            self.normalize = inner.normalize  # part of the cache namespace

    def encode(self, texts: Iterable[str], batch_size: int = 256, show_progress: bool | None = None) -> np.ndarray:
        return cached_encode(self.encoder, texts, self.cache, batch_size=batch_size, show_progress=show_progress)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts, batch_size=max(1, len(texts)), show_progress=False)

    def role_prompts(self) -> dict[str, str]:
        return self.encoder.role_prompts()

    @property
    def role(self) -> str | None:
        return self.encoder.role

    def for_role(self, role: str) -> Encoder:
        """The wrapped encoder's ``role`` variant, through the same cache (its own namespace: its name)."""
        inner = self.encoder.for_role(role)
        return self if inner is self.encoder else CachedEncoder(inner, self.cache)

    def probe_signature(self) -> list[float]:
        return self.encoder.probe_signature()  # the wrapped model's identity, never cached vectors

    def fingerprint(self) -> str:
        return self.encoder.fingerprint()

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, root={str(self.cache.root)!r})"
