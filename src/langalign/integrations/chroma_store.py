"""A collection of an embedded Chroma store (see :mod:`langalign.integrations.stores`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._extras import require
from .collection import CollectionHit, VectorCollection


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
