"""LlamaIndex embedding (``pip install 'langalign[llamaindex]'``): an English index, queried in any language.

::

    from llama_index.core import Settings
    from langalign.integrations.llamaindex import LangAlignEmbedding
    Settings.embed_model = LangAlignEmbedding("aligners/bridge")

Nodes are embedded by the aligner's source (English) encoder; queries go through its
Rev-LangAlign map. :class:`LangAlignServiceEmbedding` asks a running ``langalign serve`` instead.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..aligner import LangAlign
from ._extras import missing
from .embedder import QueryDocEmbedder, as_embedder
from .service import ServiceEmbedder

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
except ImportError as e:
    raise missing(e, "llama_index", "llamaindex", "langalign.integrations.llamaindex",
                  "llama-index-core") from None


class LangAlignEmbedding(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding``: text by the index's encoder, queries (any language) through an aligner.

    ``aligner`` is a fitted :class:`~langalign.LangAlign`, a saved aligner's folder, or any
    :class:`~langalign.integrations.embedder.QueryDocEmbedder`. Vectors are unit length unless
    ``normalize=False``.
    """

    _embedder: QueryDocEmbedder = PrivateAttr()

    def __init__(self, aligner: LangAlign | str | Path | QueryDocEmbedder, normalize: bool = True,
                 force: bool = False, embed_batch_size: int = 64, **kw: Any):
        embedder = as_embedder(aligner, normalize=normalize, force=force)
        super().__init__(model_name=kw.pop("model_name", f"langalign:{_space_name(embedder)}"),
                         embed_batch_size=embed_batch_size, **kw)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LangAlignEmbedding"

    @property
    def embedder(self) -> QueryDocEmbedder:
        return self._embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


class LangAlignServiceEmbedding(LangAlignEmbedding):
    """The same, computed by a running ``langalign serve`` (its OpenAI-compatible ``/v1/embeddings``)."""

    def __init__(self, base_url: str, aligner: str, api_key: str | None = None, normalize: bool = True,
                 embed_batch_size: int = 64, timeout: float = 60.0, **kw: Any):
        embedder = ServiceEmbedder(base_url, aligner, api_key=api_key, normalize=normalize, timeout=timeout)
        super().__init__(embedder, embed_batch_size=embed_batch_size,
                         model_name=kw.pop("model_name", f"langalign-service:{aligner}"), **kw)


def _space_name(embedder: QueryDocEmbedder) -> str:
    aligner = getattr(embedder, "aligner", None)
    name = getattr(aligner, "source_name", None)
    return name if isinstance(name, str) else type(embedder).__name__
