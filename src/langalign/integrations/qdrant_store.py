"""A collection of Qdrant in local mode (see :mod:`langalign.integrations.stores`)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._extras import require
from .collection import CollectionHit, StoreError, VectorCollection


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
