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

from pathlib import Path
from typing import Any

from .chroma_store import ChromaCollection
from .collection import SAMPLE_MIN_COSINE, CollectionHit, StoreError, VectorCollection
from .lancedb_store import LanceDBCollection
from .qdrant_store import QdrantCollection

__all__ = ["CollectionHit", "VectorCollection", "ChromaCollection", "LanceDBCollection", "QdrantCollection",
           "open_collection", "parse_store_spec", "STORE_KINDS", "SAMPLE_MIN_COSINE", "StoreError"]


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


STORE_KINDS: dict[str, type[VectorCollection]] = {
    "chroma": ChromaCollection, "lancedb": LanceDBCollection, "qdrant": QdrantCollection,
}
