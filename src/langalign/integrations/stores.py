"""Existing English collections in Chroma, LanceDB and Qdrant, queried in other languages.

A collection is named by a spec ``KIND:PATH/COLLECTION`` (``chroma:stores/chroma/docs``,
``lancedb:stores/lance/docs``, ``qdrant:stores/qdrant/docs``): the store's folder (Chroma's
``PersistentClient``, LanceDB's embedded database, ``qdrant-client``'s local mode) and the
collection (table) in it. Each store is an extra: ``pip install 'langalign[chroma]'`` (or
``lancedb``, ``qdrant``).

**Stamps.** When langalign writes a collection (:meth:`VectorCollection.add_texts`) it records the
documents' encoder (name, dimension, fingerprint) in the collection's own metadata: Chroma's
collection metadata (``langalign:*`` keys), Qdrant's collection ``metadata`` (``"langalign"``),
LanceDB's vector-column field metadata (``"langalign"``). Before a query it checks, once:

- the collection's vector dimension against the query space's: a mismatch is an error, always;
- a stamp against the query space (names and, when both are known, fingerprints): a mismatch is an
  :class:`~langalign.errors.EncoderMismatchError`; ``force=True`` turns it into a warning;
- an unstamped collection (filled by LangChain, LlamaIndex or your own code): a few stored documents
  are embedded again with the query space's encoder and compared with their stored vectors (median
  cosine at least :data:`SAMPLE_MIN_COSINE`); vectors of another model are refused (``force=True``
  warns instead). A collection that stores no texts can only be checked by dimension: that is a
  warning. :meth:`VectorCollection.stamp` records the encoder of an existing collection (after the
  same sample check), so later queries check it by its stamp.

langalign never deletes or overwrites a document: adding refuses ids already present, and writing
into a collection it did not write (non-empty and unstamped) is refused.
"""
from __future__ import annotations

import json
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .._validation import check_texts
from .._version import __version__
from ..errors import EncoderMismatchError, LangAlignError
from ..index import space_problem
from ._extras import require
from .embedder import QueryDocEmbedder, as_embedder, unit_rows

__all__ = ["CollectionHit", "VectorCollection", "ChromaCollection", "LanceDBCollection", "QdrantCollection",
           "open_collection", "parse_store_spec", "STORE_KINDS", "SAMPLE_MIN_COSINE", "StoreError"]

# Median cosine between stored vectors and the same texts embedded again, above which an unstamped
# collection is taken to hold the query space's vectors. Two different models' vectors of one text
# have a cosine near 0 (their coordinates are unrelated); the same model gives 1, or a little less
# where the framework embedded extra text around the stored one (LlamaIndex adds node metadata).
SAMPLE_MIN_COSINE = 0.8
SAMPLE_SIZE = 8
# Text fields the frameworks store next to a vector (langalign and LlamaIndex: "text"; LangChain's
# Qdrant store: "page_content"), looked up in this order when text_key is not given.
TEXT_KEYS = ("text", "page_content", "document", "content")


class CollectionHit(NamedTuple):
    """One result: the document's ``id``, its stored ``text`` (None if the store keeps none) and ``score``.

    ``score`` is the cosine when the collection's metric is cosine (Qdrant, LanceDB as langalign
    queries it, Chroma with ``space="cosine"``); for other metrics it is derived from the store's
    distance on unit vectors (for L2, ``1 - d²/2``, which equals the cosine for unit documents).
    """

    id: str
    text: str | None
    score: float


class StoreError(LangAlignError):
    """A store or collection cannot be opened, read or written as asked."""


def parse_store_spec(spec: str) -> tuple[str, Path, str]:
    """``"KIND:PATH/COLLECTION"`` -> ``(kind, store folder, collection name)``."""
    if not isinstance(spec, str):
        raise TypeError(f"a store spec is a string KIND:PATH/COLLECTION, got {type(spec).__name__}")
    kind, sep, rest = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in STORE_KINDS:
        raise ValueError(f"store spec {spec!r}: expected KIND:PATH/COLLECTION with KIND one of "
                         f"{', '.join(STORE_KINDS)} (e.g. chroma:stores/chroma/docs)")
    rest = rest.rstrip("/\\")
    path, _, name = rest.replace("\\", "/").rpartition("/")
    if not name or not path:
        raise ValueError(f"store spec {spec!r}: give the store's folder and the collection, PATH/COLLECTION")
    return kind, Path(path), name


def open_collection(spec: str, **kw: Any) -> VectorCollection:
    """The collection a spec names (``chroma:PATH/NAME``, ``lancedb:PATH/NAME``, ``qdrant:PATH/NAME``)."""
    kind, path, name = parse_store_spec(spec)
    return STORE_KINDS[kind](path, name, **kw)


def _stamp_from_space(space: dict[str, Any]) -> dict[str, Any]:
    stamp = {"encoder": space["name"], "dim": int(space["dim"]), "metric": "cosine",
             "langalign_version": __version__}
    if space.get("fingerprint"):
        stamp["fingerprint"] = space["fingerprint"]
    return stamp


def _space_from_stamp(stamp: dict[str, Any]) -> dict[str, Any]:
    return {"name": stamp.get("encoder"), "dim": stamp.get("dim"), "fingerprint": stamp.get("fingerprint")}


def _describe(space: dict[str, Any]) -> str:
    fp = space.get("fingerprint")
    return f"{space.get('name')!r} ({space.get('dim')}-d{', fingerprint ' + fp if fp else ''})"


class VectorCollection(ABC):
    """One collection (table) of an embedded vector store, read and written through an embedder.

    The embedder is a fitted :class:`~langalign.LangAlign` (or its folder), or a
    :class:`~langalign.integrations.embedder.QueryDocEmbedder` (in process or a running
    ``langalign serve``). ``text_key`` names the stored text field when it is not one of
    :data:`TEXT_KEYS`.
    """

    kind: ClassVar[str]
    extra: ClassVar[str]

    def __init__(self, path: str | Path, name: str, text_key: str | None = None):
        if not isinstance(name, str) or not name:
            raise ValueError("the collection name must be a non-empty string")
        self.path = Path(path)
        self.name = name
        self.text_key = text_key
        # Keyed by id() with the object kept alive in the value, so an id is never reused for another one.
        self._checked: dict[int, tuple[QueryDocEmbedder, dict[str, Any]]] = {}
        self._embedders: dict[Any, tuple[Any, QueryDocEmbedder]] = {}

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.path}/{self.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __enter__(self) -> VectorCollection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release the store (Qdrant's local mode locks its folder while a client is open)."""

    def _need_store(self) -> None:
        if not self.path.is_dir():
            raise StoreError(f"{self.spec}: no {self.kind} store at {self.path} (not a folder)")

    def require_collection(self) -> None:
        self._need_store()
        if not self.exists():
            have = self.list_collections()
            raise StoreError(f"{self.spec}: no collection {self.name!r} in {self.path} "
                             f"(it has: {', '.join(have) if have else 'none'})")

    # -- the store's own operations ------------------------------------------------------
    @abstractmethod
    def list_collections(self) -> list[str]: ...

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def dimension(self) -> int | None:
        """The stored vectors' dimension (None for an empty collection that does not fix one)."""

    @abstractmethod
    def read_stamp(self) -> dict[str, Any] | None:
        """The langalign stamp in the collection's metadata, or None."""

    @abstractmethod
    def _write_stamp(self, stamp: dict[str, Any]) -> None: ...

    @abstractmethod
    def _create(self, dim: int, stamp: dict[str, Any]) -> None: ...

    @abstractmethod
    def _existing_ids(self, ids: list[str]) -> list[str]: ...

    @abstractmethod
    def _add(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _query(self, Q: np.ndarray, k: int) -> list[list[CollectionHit]]: ...

    @abstractmethod
    def _sample(self, n: int) -> list[tuple[str | None, np.ndarray]]:
        """Up to ``n`` stored ``(text or None, vector)``."""

    def _text_of(self, record: dict[str, Any]) -> str | None:
        keys = (self.text_key,) if self.text_key else TEXT_KEYS
        for k in keys:
            v = record.get(k)
            if isinstance(v, str):
                return v
        return None

    # -- what langalign adds -----------------------------------------------------------
    def _embedder(self, obj: Any) -> QueryDocEmbedder:
        """``obj`` as an embedder, the same one for the same aligner object or folder (so its check is reused)."""
        if isinstance(obj, QueryDocEmbedder):
            return obj
        if isinstance(obj, (str, Path)):  # a folder: reloaded when its config changes
            cfg = Path(obj) / "config.json"
            key: Any = (str(Path(obj).resolve()), cfg.stat().st_mtime_ns if cfg.is_file() else None)
        else:
            key = id(obj)
        have = self._embedders.get(key)
        if have is not None and (not isinstance(key, int) or have[0] is obj):
            return have[1]
        emb = as_embedder(obj)
        self._embedders[key] = (obj, emb)
        return emb

    def info(self) -> dict[str, Any]:
        """Store, collection, count, dimension and stamp (no embedder needed)."""
        self.require_collection()
        return {"store": self.kind, "path": str(self.path), "collection": self.name, "count": self.count(),
                "dim": self.dimension(), "stamp": self.read_stamp()}

    def add_texts(self, texts: Sequence[str], embedder: Any, ids: Sequence[str] | None = None,
                  batch_size: int = 256) -> VectorCollection:
        """Embed English ``texts`` with the embedder's document encoder and add them; creates and stamps.

        A new collection is created with cosine distance and stamped with the encoder. An existing one
        must carry the same stamp, or be empty and unstamped (it is stamped then). Ids default to row
        numbers after the collection's count; an id already present is refused (nothing is replaced).
        """
        texts = check_texts(texts, "texts")
        if not texts:
            raise ValueError("texts is empty: no documents to add")
        emb = self._embedder(embedder)
        stamp = _stamp_from_space(emb.space)
        if self.exists():
            have = self.read_stamp()
            n = self.count()
            if have is not None:
                problem = space_problem(_space_from_stamp(have), emb.space)
                if problem:
                    raise EncoderMismatchError(
                        f"{self.spec} is stamped with encoder {_describe(_space_from_stamp(have))}, not "
                        f"{_describe(emb.space)}: {problem}; refusing to mix two encoders' vectors in one collection")
            elif n:
                raise StoreError(f"{self.spec} holds {n} vectors that langalign did not write (no langalign stamp); "
                                 f"refusing to add to it. If they are {emb.space['name']!r} vectors, stamp it first "
                                 "(VectorCollection.stamp; CLI: langalign index stamp)")
            dim = self.dimension()
            if dim is not None and dim != emb.dim:
                raise EncoderMismatchError(f"{self.spec} holds {dim}-d vectors; {emb.space['name']!r} gives "
                                           f"{emb.dim}-d")
            start = n
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            start = 0
        new_ids = _check_ids(ids, len(texts), start)
        if self.exists():
            taken = self._existing_ids(new_ids)
            if taken:
                raise StoreError(f"{self.spec}: document id(s) already in the collection: "
                                 f"{', '.join(map(repr, taken[:5]))}{' ...' if len(taken) > 5 else ''}")
        first = True
        for s in range(0, len(texts), batch_size):
            V = unit_rows(emb.embed_documents(texts[s : s + batch_size]))
            if first and not self.exists():
                self._create(emb.dim, stamp)
            elif first and self.read_stamp() is None:
                self._write_stamp(stamp)
            first = False
            self._add(new_ids[s : s + batch_size], texts[s : s + batch_size], V)
        self._checked.clear()
        return self

    def check(self, embedder: Any, force: bool = False) -> dict[str, Any]:
        """Check that queries of ``embedder`` belong in this collection; raise, warn or pass (see module doc).

        Returns ``{"checked": "stamp" | "sample" | "dimension", ...}``; cached per embedder.
        """
        emb = self._embedder(embedder)
        done = self._checked.get(id(emb))
        if done is not None and done[0] is emb:
            return done[1]
        self.require_collection()
        space = emb.space
        dim = self.dimension()
        if dim is None or self.count() == 0:
            raise StoreError(f"{self.spec} is empty: nothing to search")
        if dim != int(space["dim"]):
            raise EncoderMismatchError(
                f"{self.spec} holds {dim}-d vectors but queries are mapped into the space of {space['name']!r} "
                f"({space['dim']}-d); use an aligner whose source encoder made this collection")
        stamp = self.read_stamp()
        if stamp is not None:
            recorded = _space_from_stamp(stamp)
            problem = space_problem(recorded, space)
            if problem:
                msg = (f"{self.spec} is stamped with encoder {_describe(recorded)} but queries are mapped into the "
                       f"space of {_describe(space)}: {problem}")
                if not force:
                    raise EncoderMismatchError(msg + "; use an aligner whose source encoder made this collection, "
                                               "or force=True (CLI: --force) if they are equivalent")
                warnings.warn(msg + " (ignored: force=True)", RuntimeWarning, stacklevel=2)
            report: dict[str, Any] = {"checked": "stamp", "stamp": stamp}
        else:
            report = self._sample_check(emb, force)
        self._checked[id(emb)] = (emb, report)
        return report

    def _sample_check(self, emb: QueryDocEmbedder, force: bool) -> dict[str, Any]:
        pairs = [(t, v) for t, v in self._sample(SAMPLE_SIZE) if t and t.strip()]
        if not pairs:
            warnings.warn(f"{self.spec} has no langalign stamp and stores no document texts, so only its dimension "
                          f"({emb.dim}) could be checked against {emb.space['name']!r}; stamp it "
                          "(VectorCollection.stamp; CLI: langalign index stamp) once you know its encoder",
                          RuntimeWarning, stacklevel=3)
            return {"checked": "dimension"}
        stored = unit_rows(np.stack([v for _, v in pairs]))
        again = unit_rows(emb.embed_documents([t for t, _ in pairs]))
        cos = float(np.median(np.sum(stored * again, axis=1)))
        if cos < SAMPLE_MIN_COSINE:
            msg = (f"{self.spec} has no langalign stamp, and its stored vectors are not {emb.space['name']!r} vectors "
                   f"of their texts (median cosine {cos:.3f} over {len(pairs)} sampled documents; the same encoder "
                   f"gives at least {SAMPLE_MIN_COSINE})")
            if not force:
                raise EncoderMismatchError(msg + ": the collection was filled by another model; use an aligner whose "
                                           "source encoder made it, or force=True (CLI: --force)")
            warnings.warn(msg + " (ignored: force=True)", RuntimeWarning, stacklevel=3)
        return {"checked": "sample", "sample_cosine": round(cos, 4), "sampled": len(pairs)}

    def stamp(self, embedder: Any, force: bool = False) -> dict[str, Any]:
        """Record the embedder's document encoder in an existing collection's metadata (after checking it).

        Only adds langalign's keys to the metadata; a collection already stamped with another encoder is
        refused (its stamp is never replaced).
        """
        emb = self._embedder(embedder)
        self.require_collection()
        have = self.read_stamp()
        if have is not None:
            problem = space_problem(_space_from_stamp(have), emb.space)
            if problem:
                raise EncoderMismatchError(f"{self.spec} is already stamped with encoder "
                                           f"{_describe(_space_from_stamp(have))}: {problem}; "
                                           "a stamp is never replaced")
            return have
        self.check(emb, force=force)
        stamp = _stamp_from_space(emb.space)
        self._write_stamp(stamp)
        self._checked.clear()
        return stamp

    def search(self, queries: Any, embedder: Any, top_k: int = 10, force: bool = False) -> list[list[CollectionHit]]:
        """The ``top_k`` best documents per query (texts in any language the embedder's queries read)."""
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        emb = self._embedder(embedder)
        self.check(emb, force=force)
        Q = emb.embed_queries(queries)
        if Q.shape[0] == 0:
            return []
        return self._query(unit_rows(Q), int(top_k))

    def search_vectors(self, Q: Any, top_k: int = 10) -> list[list[CollectionHit]]:
        """Query vectors already in the collection's space (checked against its dimension only)."""
        Q = np.asarray(Q, dtype=np.float32)
        dim = self.dimension()
        if Q.ndim != 2 or Q.shape[1] != dim:
            raise ValueError(f"query vectors must be (n, {dim}) for {self.spec}, got shape {Q.shape}")
        return self._query(unit_rows(Q), int(top_k))


def _check_ids(ids: Sequence[str] | None, n: int, start: int) -> list[str]:
    if ids is None:
        return [str(start + i) for i in range(n)]
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a list of strings, one per text")
    out = list(ids)
    if len(out) != n:
        raise ValueError(f"there are {n} texts but {len(out)} ids")
    for i, d in enumerate(out):
        if not isinstance(d, str) or not d:
            raise TypeError(f"ids[{i}] is {d!r}; ids must be non-empty strings")
    if len(set(out)) != len(out):
        raise ValueError("ids repeat among the new documents")
    return out


# ---------------------------------------------------------------- Chroma

_CHROMA_PREFIX = "langalign:"


class ChromaCollection(VectorCollection):
    """A collection of an embedded Chroma store (``chromadb.PersistentClient(path)``).

    Chroma searches by HNSW, approximate: ``hnsw`` (e.g. ``{"ef_search": 1000}``) configures the
    collections langalign creates; existing ones are searched as configured. ``space`` is cosine
    for collections langalign creates.
    """

    kind = "chroma"
    extra = "chroma"

    def __init__(self, path: str | Path, name: str, text_key: str | None = None, hnsw: dict | None = None):
        super().__init__(path, name, text_key)
        self.hnsw = dict(hnsw or {})
        self._client: Any = None
        self._col: Any = None

    def _chroma(self) -> Any:
        if self._client is None:
            chromadb = require("chromadb", self.extra, "Chroma collections")
            self._client = chromadb.PersistentClient(path=str(self.path))
        return self._client

    def _collection(self) -> Any:
        if self._col is None:
            self._col = self._chroma().get_collection(self.name, embedding_function=None)
        return self._col

    def list_collections(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(c.name if hasattr(c, "name") else str(c) for c in self._chroma().list_collections())

    def exists(self) -> bool:
        return self.path.is_dir() and self.name in self.list_collections()

    def count(self) -> int:
        return int(self._collection().count())

    def dimension(self) -> int | None:
        d = getattr(self._collection().get_model(), "dimension", None)
        if d:
            return int(d)
        got = self._collection().get(limit=1, include=["embeddings"])
        emb = got.get("embeddings")
        return int(len(emb[0])) if emb is not None and len(emb) else None

    def read_stamp(self) -> dict[str, Any] | None:
        meta = self._collection().metadata or {}
        stamp = {k[len(_CHROMA_PREFIX):]: v for k, v in meta.items() if k.startswith(_CHROMA_PREFIX)}
        return stamp or None

    def _write_stamp(self, stamp: dict[str, Any]) -> None:
        col = self._collection()
        meta = dict(col.metadata or {})
        meta.update({_CHROMA_PREFIX + k: v for k, v in stamp.items()})
        col.modify(metadata=meta)
        self._col = None

    def _create(self, dim: int, stamp: dict[str, Any]) -> None:
        client = self._chroma()
        self._col = client.create_collection(
            self.name, metadata={_CHROMA_PREFIX + k: v for k, v in stamp.items()},
            configuration={"hnsw": {"space": "cosine", **self.hnsw}}, embedding_function=None)

    def _metric(self) -> str:
        # the model's JSON, not Collection.configuration (which warns about legacy embedding functions)
        conf = getattr(self._collection().get_model(), "configuration_json", None) or {}
        hnsw = conf.get("hnsw") or {}
        return str(hnsw.get("space") or (self._collection().metadata or {}).get("hnsw:space") or "l2")

    def _existing_ids(self, ids: list[str]) -> list[str]:
        found: list[str] = []
        for s in range(0, len(ids), 1000):
            found += self._collection().get(ids=ids[s : s + 1000], include=[])["ids"]
        return found

    def _add(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        self._collection().add(ids=ids, embeddings=vectors, documents=texts)

    def _query(self, Q: np.ndarray, k: int) -> list[list[CollectionHit]]:
        col = self._collection()
        k = min(k, col.count())
        out = col.query(query_embeddings=Q, n_results=k, include=["distances", "documents"])
        metric = self._metric()
        hits = []
        for ids, dists, docs in zip(out["ids"], out["distances"], out["documents"] or [None] * len(Q), strict=True):
            docs = docs if docs is not None else [None] * len(ids)
            hits.append([CollectionHit(i, t, _chroma_score(float(d), metric))
                         for i, d, t in zip(ids, dists, docs, strict=True)])
        return hits

    def _sample(self, n: int) -> list[tuple[str | None, np.ndarray]]:
        got = self._collection().get(limit=n, include=["embeddings", "documents"])
        docs = got.get("documents") or [None] * len(got["ids"])
        return [(t, np.asarray(v, np.float32)) for t, v in zip(docs, got["embeddings"], strict=True)]


def _chroma_score(d: float, metric: str) -> float:
    if metric == "l2":  # Chroma's l2 is the squared distance; 1 - d/2 is the cosine on unit vectors
        return 1.0 - d / 2.0
    return 1.0 - d  # cosine distance, or ip's 1 - dot


# ---------------------------------------------------------------- LanceDB

_LANCE_KEY = "langalign"


class LanceDBCollection(VectorCollection):
    """A table of an embedded LanceDB database (``lancedb.connect(path)``).

    Searched exactly: cosine distance over every row (``bypass_vector_index``), whatever ANN index
    the table may have. ``vector_key`` names the vector column (default: ``"vector"``, else the only
    fixed-size-list column).
    """

    kind = "lancedb"
    extra = "lancedb"

    def __init__(self, path: str | Path, name: str, text_key: str | None = None, vector_key: str | None = None):
        super().__init__(path, name, text_key)
        self.vector_key = vector_key
        self._db: Any = None
        self._tbl: Any = None

    def _lance(self) -> Any:
        if self._db is None:
            lancedb = require("lancedb", self.extra, "LanceDB tables")
            self._db = lancedb.connect(str(self.path))
        return self._db

    def _table(self) -> Any:
        if self._tbl is None:
            self._tbl = self._lance().open_table(self.name)
        return self._tbl

    def list_collections(self) -> list[str]:
        if not self.path.is_dir():
            return []
        db = self._lance()
        names = db.list_tables() if hasattr(db, "list_tables") else db.table_names()
        names = getattr(names, "tables", names)  # newer lancedb answers a response object
        return sorted(str(n) for n in names)

    def exists(self) -> bool:
        return self.path.is_dir() and self.name in self.list_collections()

    def _vector_field(self) -> Any:
        import pyarrow as pa

        schema = self._table().schema
        if self.vector_key:
            if self.vector_key not in schema.names:
                raise StoreError(f"{self.spec}: no column {self.vector_key!r} (columns: {', '.join(schema.names)})")
            return schema.field(self.vector_key)
        if "vector" in schema.names:
            return schema.field("vector")
        lists = [f for f in schema if pa.types.is_fixed_size_list(f.type)]
        if len(lists) != 1:
            raise StoreError(f"{self.spec}: cannot tell the vector column among {', '.join(schema.names)}; "
                             "name it (vector_key=...)")
        return lists[0]

    def count(self) -> int:
        return int(self._table().count_rows())

    def dimension(self) -> int | None:
        import pyarrow as pa

        f = self._vector_field()
        if pa.types.is_fixed_size_list(f.type):
            return int(f.type.list_size)
        rows = self._table().head(1).column(f.name).to_pylist()
        return len(rows[0]) if rows else None

    def read_stamp(self) -> dict[str, Any] | None:
        meta = self._vector_field().metadata or {}
        raw = meta.get(_LANCE_KEY.encode())
        if raw is None:
            return None
        try:
            stamp = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise StoreError(f"{self.spec}: the langalign stamp in the vector column's metadata is not JSON") from None
        return stamp if isinstance(stamp, dict) else None

    def _write_stamp(self, stamp: dict[str, Any]) -> None:
        f = self._vector_field()
        value = json.dumps(stamp, sort_keys=True)
        tbl = self._table()
        if hasattr(tbl, "update_field_metadata"):  # lancedb >= 0.33: merges, only our key is written
            tbl.update_field_metadata({"path": f.name, "metadata": {_LANCE_KEY: value}})
        else:
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            tbl.replace_field_metadata(f.name, {**meta, _LANCE_KEY: value})
        self._tbl = None

    def _create(self, dim: int, stamp: dict[str, Any]) -> None:
        import pyarrow as pa

        vec = pa.field(self.vector_key or "vector", pa.list_(pa.float32(), dim),
                       metadata={_LANCE_KEY: json.dumps(stamp, sort_keys=True)})
        schema = pa.schema([pa.field("id", pa.string()), pa.field(self.text_key or "text", pa.string()), vec])
        self._tbl = self._lance().create_table(self.name, schema=schema)

    def _existing_ids(self, ids: list[str]) -> list[str]:
        if "id" not in self._table().schema.names:
            return []
        found: list[str] = []
        for s in range(0, len(ids), 500):
            part = ids[s : s + 500]
            where = "id IN (" + ", ".join("'" + i.replace("'", "''") + "'" for i in part) + ")"
            found += [str(r) for r in self._table().search().where(where).select(["id"]).limit(len(part))
                      .to_arrow().column("id").to_pylist()]
        return found

    def _add(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        import pyarrow as pa

        tbl = self._table()
        d = vectors.shape[1]
        vec = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(vectors, np.float32).ravel()), d)
        tbl.add(pa.Table.from_arrays([pa.array(ids), pa.array(texts), vec], schema=tbl.schema))

    def _query(self, Q: np.ndarray, k: int) -> list[list[CollectionHit]]:
        tbl = self._table()
        vkey = self._vector_field().name
        names = tbl.schema.names
        text_col = self.text_key or next((t for t in TEXT_KEYS if t in names), None)
        cols = [c for c in ("id", text_col) if c and c in names] + ["_distance"]  # named: lance warns otherwise
        out = []
        for q in Q:
            res = (tbl.search(q, vector_column_name=vkey).distance_type("cosine").bypass_vector_index()
                   .select(cols).limit(k).to_arrow())
            recs = res.to_pylist()
            out.append([CollectionHit(str(r.get("id", i)), self._text_of(r), 1.0 - float(r["_distance"]))
                        for i, r in enumerate(recs)])
        return out

    def _sample(self, n: int) -> list[tuple[str | None, np.ndarray]]:
        vkey = self._vector_field().name
        rows = self._table().head(n).to_pylist()
        return [(self._text_of(r), np.asarray(r[vkey], np.float32)) for r in rows]


# ---------------------------------------------------------------- Qdrant

_QDRANT_KEY = "langalign"
_ID_NAMESPACE = uuid.UUID("6c1e5c8e-8a55-4d1f-9f36-1f5b0d8c2a11")  # point ids of langalign's documents


class QdrantCollection(VectorCollection):
    """A collection of ``qdrant-client``'s local mode (``QdrantClient(path=...)``).

    Local mode searches exactly (brute force over every point). Local mode
    locks its folder: call :meth:`close` (or use ``with``) before another client opens it. Point ids
    of documents langalign writes are UUIDs derived from the document id, which is kept in the
    payload (``"id"``) with the text (``"text"``).
    """

    kind = "qdrant"
    extra = "qdrant"

    def __init__(self, path: str | Path, name: str, text_key: str | None = None, vector_name: str | None = None):
        super().__init__(path, name, text_key)
        self.vector_name = vector_name
        self._client: Any = None

    def _qdrant(self) -> Any:
        if self._client is None:
            qc = require("qdrant_client", self.extra, "Qdrant collections", "qdrant-client")
            try:
                self._client = qc.QdrantClient(path=str(self.path))
            except RuntimeError as e:  # the folder is locked by another client
                raise StoreError(f"{self.spec}: {' '.join(str(e).split())}") from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def list_collections(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(c.name for c in self._qdrant().get_collections().collections)

    def exists(self) -> bool:
        return self.path.is_dir() and bool(self._qdrant().collection_exists(self.name))

    def _info(self) -> Any:
        return self._qdrant().get_collection(self.name)

    def _params(self) -> Any:
        vectors = self._info().config.params.vectors
        if isinstance(vectors, dict):
            if self.vector_name is None:
                if len(vectors) != 1:
                    raise StoreError(f"{self.spec} has named vectors {', '.join(vectors)}; "
                                     "choose one (vector_name=...)")
                self.vector_name = next(iter(vectors))
            if self.vector_name not in vectors:
                raise StoreError(f"{self.spec} has no vector named {self.vector_name!r}")
            return vectors[self.vector_name]
        return vectors

    def count(self) -> int:
        return int(self._qdrant().count(self.name, exact=True).count)

    def dimension(self) -> int | None:
        return int(self._params().size)

    def read_stamp(self) -> dict[str, Any] | None:
        meta = getattr(self._info().config, "metadata", None) or {}
        stamp = meta.get(_QDRANT_KEY)
        return dict(stamp) if isinstance(stamp, dict) else None

    def _write_stamp(self, stamp: dict[str, Any]) -> None:
        meta = dict(getattr(self._info().config, "metadata", None) or {})
        meta[_QDRANT_KEY] = stamp
        self._qdrant().update_collection(self.name, metadata=meta)

    def _create(self, dim: int, stamp: dict[str, Any]) -> None:
        from qdrant_client import models

        self._qdrant().create_collection(self.name, vectors_config=models.VectorParams(
            size=dim, distance=models.Distance.COSINE), metadata={_QDRANT_KEY: stamp})

    @staticmethod
    def point_id(doc_id: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, doc_id))

    def _existing_ids(self, ids: list[str]) -> list[str]:
        found: list[str] = []
        for s in range(0, len(ids), 1000):
            part = ids[s : s + 1000]
            got = self._qdrant().retrieve(self.name, ids=[self.point_id(i) for i in part], with_payload=True)
            found += [str((p.payload or {}).get("id", p.id)) for p in got]
        return found

    def _add(self, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        from qdrant_client import models

        points = [models.PointStruct(id=self.point_id(i), vector=v.tolist(), payload={"id": i, "text": t})
                  for i, t, v in zip(ids, texts, vectors, strict=True)]
        self._qdrant().upsert(self.name, points=points, wait=True)

    def _query(self, Q: np.ndarray, k: int) -> list[list[CollectionHit]]:
        from qdrant_client import models

        params = self._params()  # resolves vector_name
        metric = str(getattr(params.distance, "value", params.distance)).lower()
        # local mode is brute force (exact): no search parameters to set
        requests = [models.QueryRequest(query=q.tolist(), using=self.vector_name, limit=k, with_payload=True)
                    for q in Q]
        out = []
        for res in self._qdrant().query_batch_points(self.name, requests=requests):
            out.append([CollectionHit(str((p.payload or {}).get("id", p.id)), self._text_of(p.payload or {}),
                                      _qdrant_score(float(p.score), metric)) for p in res.points])
        return out

    def _sample(self, n: int) -> list[tuple[str | None, np.ndarray]]:
        points, _ = self._qdrant().scroll(self.name, limit=n, with_payload=True, with_vectors=True)
        out = []
        for p in points:
            v = p.vector[self.vector_name] if isinstance(p.vector, dict) else p.vector
            out.append((self._text_of(p.payload or {}), np.asarray(v, np.float32)))
        return out


def _qdrant_score(score: float, metric: str) -> float:
    if metric.startswith("euclid"):  # Qdrant answers the distance; on unit vectors cos = 1 - d²/2
        return 1.0 - score * score / 2.0
    return score  # cosine, or the dot product


STORE_KINDS: dict[str, type[VectorCollection]] = {
    "chroma": ChromaCollection, "lancedb": LanceDBCollection, "qdrant": QdrantCollection,
}
