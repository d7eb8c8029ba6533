"""Where users already keep their vectors: LangChain, LlamaIndex, Chroma, LanceDB, Qdrant.

An existing English vector store answers Korean, Japanese or Chinese queries through a saved
aligner (Rev-LangAlign), without re-embedding a document:

- :mod:`.embedder`: :class:`AlignerEmbedder` (documents by the aligner's source encoder, queries
  through ``aligner.to_source``, in process), :class:`EncoderEmbedder` (one encoder, no map);
  :mod:`.service`: :class:`ServiceEmbedder` (the same
  from a running ``langalign serve``, over its OpenAI-compatible endpoint);
- :mod:`.langchain`: ``LangAlignEmbeddings`` / ``LangAlignServiceEmbeddings`` (``langalign[langchain]``);
- :mod:`.llamaindex`: ``LangAlignEmbedding`` / ``LangAlignServiceEmbedding`` (``langalign[llamaindex]``);
- :mod:`.stores`: Chroma, LanceDB and Qdrant collections (``langalign[chroma]``, ``[lancedb]``,
  ``[qdrant]``), stamped with their encoder when langalign writes them and checked before a query.

Importing this package imports no third-party integration; each module imports its package when
it is imported, and a missing one is a one-line :class:`MissingExtraError` naming the extra.
"""
from ._extras import MissingExtraError
from .embedder import AlignerEmbedder, EncoderEmbedder, QueryDocEmbedder, as_embedder
from .service import ServiceEmbedder, ServiceError
from .stores import (
    STORE_KINDS,
    ChromaCollection,
    CollectionHit,
    LanceDBCollection,
    QdrantCollection,
    StoreError,
    VectorCollection,
    open_collection,
    parse_store_spec,
)

__all__ = [
    "MissingExtraError", "QueryDocEmbedder", "AlignerEmbedder", "EncoderEmbedder", "as_embedder", "ServiceEmbedder",
    "ServiceError",
    "VectorCollection", "ChromaCollection", "LanceDBCollection", "QdrantCollection", "CollectionHit", "StoreError",
    "open_collection", "parse_store_spec", "STORE_KINDS",
]
