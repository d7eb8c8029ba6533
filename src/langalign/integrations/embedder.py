"""Document and query embedders for existing English vector stores.

A store's documents were embedded by one (English) encoder; a query in Korean, Japanese or
Chinese must land in that encoder's space. A :class:`QueryDocEmbedder` does both: documents go
through the index's encoder, queries through a saved aligner's Rev-LangAlign map
(``aligner.to_source``: read by the aligner's target encoder, mapped into the source space), for
any language the target encoder reads.

:class:`AlignerEmbedder` runs in this process; :class:`~langalign.integrations.service.ServiceEmbedder`
asks a running ``langalign serve`` over HTTP. The LangChain and LlamaIndex classes and the store
adapters take either.

Vectors are unit-normalised by default (``normalize=True``): then every metric a store offers
(cosine, dot product, L2; Chroma's and LangChain's default is L2) ranks documents by cosine, as
langalign's own :class:`~langalign.index.SearchIndex` does.
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_texts
from ..aligner import LangAlign
from ..encoders import Encoder, load_encoder
from ..errors import LangAlignError


def unit_rows(V: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), float32."""
    V = np.asarray(V, dtype=np.float32)
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    out = np.zeros_like(V)
    np.divide(V, norms, out=out, where=norms > 0)
    return out


class QueryDocEmbedder(ABC):
    """Embeds documents with the store's encoder and queries (any language) into that encoder's space."""

    normalize: bool = True

    @property
    @abstractmethod
    def space(self) -> dict[str, Any]:
        """Identity of the space both kinds of vectors live in: ``{"name", "dim"}`` (+ ``"fingerprint"`` if known)."""

    @abstractmethod
    def _documents(self, texts: list[str]) -> np.ndarray:
        ...

    @abstractmethod
    def _queries(self, texts: list[str]) -> np.ndarray:
        ...

    def embed_documents(self, texts: Any) -> np.ndarray:
        """``(n, dim)`` float32 vectors of English documents, by the space's own encoder."""
        texts = check_texts(texts, "documents")
        V = self._documents(texts) if texts else np.empty((0, self.space["dim"]), np.float32)
        return unit_rows(V) if self.normalize else np.asarray(V, np.float32)

    def embed_queries(self, texts: Any) -> np.ndarray:
        """``(n, dim)`` float32 vectors of queries in any language the aligner's target encoder reads."""
        texts = check_texts(texts, "queries")
        V = self._queries(texts) if texts else np.empty((0, self.space["dim"]), np.float32)
        return unit_rows(V) if self.normalize else np.asarray(V, np.float32)

    @property
    def dim(self) -> int:
        return int(self.space["dim"])


class AlignerEmbedder(QueryDocEmbedder):
    """Documents through the aligner's source encoder, queries through ``aligner.to_source``, in process.

    ``aligner`` is a fitted :class:`~langalign.LangAlign` with a reverse map, or the folder of a saved one
    (loaded with ``force``). Encoders load lazily: querying needs only the target encoder.
    """

    def __init__(self, aligner: LangAlign | str | Path, normalize: bool = True, force: bool = False):
        if isinstance(aligner, (str, Path)):
            aligner = LangAlign.load(aligner, force=force)
        if not isinstance(aligner, LangAlign):
            raise TypeError(f"aligner must be a fitted LangAlign or the folder of a saved one, "
                            f"got {type(aligner).__name__}")
        if aligner.reverse_ is None:
            raise ValueError("the aligner has no target -> source map (fitted with reverse=False or not fitted); "
                             "queries need Rev-LangAlign")
        self.aligner = aligner
        self.normalize = bool(normalize)
        self._space: dict[str, Any] | None = None

    @property
    def space(self) -> dict[str, Any]:
        if self._space is None:
            ident = self.aligner.encoder_identity("source")
            self._space = {k: ident[k] for k in ("name", "dim", "fingerprint") if ident.get(k) is not None}
        return self._space

    def _documents(self, texts: list[str]) -> np.ndarray:
        return self.aligner.encode_source(texts, show_progress=False)

    def _queries(self, texts: list[str]) -> np.ndarray:
        return self.aligner.to_source(texts, show_progress=False)

    def __repr__(self) -> str:
        return (f"AlignerEmbedder(documents={self.aligner.source_name!r}, "
                f"queries={self.aligner.target_name!r} -> {self.aligner.source_name!r})")


class EncoderEmbedder(QueryDocEmbedder):
    """Documents and queries by one encoder, no map: English queries into an English store.

    What writes a collection (only the documents' encoder is needed) and what queries it in its own
    language.
    """

    def __init__(self, encoder: Encoder | str, normalize: bool = True):
        self.encoder = load_encoder(encoder) if isinstance(encoder, str) else encoder
        if not isinstance(self.encoder, Encoder):
            raise TypeError(f"encoder must be an Encoder or an encoder name, got {type(encoder).__name__}")
        self.normalize = bool(normalize)
        self._space: dict[str, Any] | None = None

    @property
    def space(self) -> dict[str, Any]:
        if self._space is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an encoder that cannot encode the probes: name and dim only
                ident = self.encoder.identity()
            self._space = {k: ident[k] for k in ("name", "dim", "fingerprint") if ident.get(k) is not None}
        return self._space

    def _documents(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, show_progress=False)

    def _queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, show_progress=False)

    def __repr__(self) -> str:
        return f"EncoderEmbedder({self.encoder.name!r})"


def as_embedder(obj: Any, normalize: bool = True, force: bool = False) -> QueryDocEmbedder:
    """A :class:`QueryDocEmbedder` from an embedder, a fitted LangAlign, a saved aligner's folder or an Encoder."""
    if isinstance(obj, QueryDocEmbedder):
        return obj
    if isinstance(obj, Encoder):
        return EncoderEmbedder(obj, normalize=normalize)
    if isinstance(obj, (LangAlign, str, Path)):
        return AlignerEmbedder(obj, normalize=normalize, force=force)
    inner = getattr(obj, "embedder", None)  # a LangChain / LlamaIndex class of ours
    if isinstance(inner, QueryDocEmbedder):
        return inner
    raise LangAlignError(f"expected an aligner (LangAlign or its folder) or a langalign embedder, "
                         f"got {type(obj).__name__}")
