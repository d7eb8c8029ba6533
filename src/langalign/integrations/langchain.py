"""LangChain ``Embeddings`` (``pip install 'langalign[langchain]'``): an English store, queried in any language.

::

    from langalign.integrations.langchain import LangAlignEmbeddings
    emb = LangAlignEmbeddings("aligners/bridge")       # minilm documents, use-multilingual queries
    store = Chroma.from_texts(english_docs, emb)         # any LangChain vector store
    store.similarity_search("서울 날씨는 어때요?")        # the query goes through the aligner

``embed_documents`` uses the aligner's source (English) encoder, ``embed_query`` its
Rev-LangAlign map. :class:`LangAlignServiceEmbeddings` asks a running ``langalign serve`` instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..aligner import LangAlign
from ._extras import missing
from .embedder import QueryDocEmbedder, as_embedder
from .service import ServiceEmbedder

try:
    from langchain_core.embeddings import Embeddings
except ImportError as e:
    raise missing(e, "langchain_core", "langchain", "langalign.integrations.langchain", "langchain-core") from None


class LangAlignEmbeddings(Embeddings):
    """LangChain embeddings: documents by the index's encoder, queries (any language) through an aligner.

    ``aligner`` is a fitted :class:`~langalign.LangAlign`, a saved aligner's folder, or any
    :class:`~langalign.integrations.embedder.QueryDocEmbedder`. Vectors are unit length unless
    ``normalize=False`` (then they are exactly what the library returns).
    """

    def __init__(self, aligner: LangAlign | str | Path | QueryDocEmbedder, normalize: bool = True,
                 force: bool = False):
        self.embedder = as_embedder(aligner, normalize=normalize, force=force)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise TypeError(f"embed_query takes one string, got {type(text).__name__}")
        return self.embedder.embed_queries([text])[0].tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.embedder!r})"


class LangAlignServiceEmbeddings(LangAlignEmbeddings):
    """The same, computed by a running ``langalign serve`` (its OpenAI-compatible ``/v1/embeddings``)."""

    def __init__(self, base_url: str, aligner: str, api_key: str | None = None, normalize: bool = True,
                 **kw: Any):
        self.embedder = ServiceEmbedder(base_url, aligner, api_key=api_key, normalize=normalize, **kw)
