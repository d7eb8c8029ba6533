"""The store-independent half of :mod:`langalign.integrations.stores`: a collection's interface
(:class:`VectorCollection`), its hits, stamps and the checks before a query. The three stores subclass it in
``chroma_store``, ``lancedb_store`` and ``qdrant_store``; the module docstring of ``stores`` says how stamps work.
"""
from __future__ import annotations

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
from .embedder import QueryDocEmbedder, as_embedder, unit_rows

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
