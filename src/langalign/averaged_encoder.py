"""Several roads into one vector space, averaged: a query encoder made of a distilled student and a bridge.

An English system (a MiniLM head, a MiniLM vector index) can read Korean through more than one route: an encoder
distilled into its space (``langalign tune --mode distil``), or a bridge, an aligner whose Rev-LangAlign map takes
another encoder's target-language vectors into it (``LangAlign("minilm", "use-multilingual").fit_bridge(...)``).
Routes built on different multilingual models make different mistakes, so the mean of their unit vectors ranks
better than either alone (measured in ``bench/distil_bridge.py``). :class:`AveragedEncoder` is that mean as an
:class:`~langalign.encoders.Encoder`: ``SearchIndex.search(..., encoder=avg)`` and
``clf.predict_embeddings(avg.encode(texts))`` take it like any encoder whose vectors live in the index's space.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .aligner import LangAlign
from .encoder_base import Encoder
from .encoder_identity import describe_identity, space_problem, vector_space
from .errors import EncoderMismatchError


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def average_unit_vectors(arrays: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The re-normalised weighted mean of the rows' unit vectors (equal weights by default): what
    :class:`AveragedEncoder` returns, for vectors already computed."""
    w = np.full(len(arrays), 1.0 / len(arrays)) if weights is None else np.asarray(weights, dtype=np.float64)
    acc = sum(wi * _unit(V) for wi, V in zip(w, arrays, strict=True))
    return _unit(acc).astype(np.float32)


class AveragedEncoder(Encoder):
    """The weighted mean of the unit vectors of ``routes``, re-normalised; every route ends in one space.

    A route is an :class:`~langalign.encoders.Encoder` whose vectors live in that space (the space's own encoder,
    or one distilled into it: :func:`~langalign.encoder_identity.vector_space`), or a fitted
    :class:`~langalign.LangAlign` with a reverse map, whose source encoder is that space (its
    :meth:`~langalign.LangAlign.to_source` reads target-language texts). ``weights`` (default: equal) must be
    positive. Routes that end in different spaces are refused with an :class:`~langalign.errors.EncoderMismatchError`.
    """

    def __init__(self, routes: Sequence[Any], weights: Sequence[float] | None = None, name: str | None = None):
        routes = list(routes)
        if len(routes) < 2:
            raise ValueError(f"an AveragedEncoder needs at least 2 routes, got {len(routes)}")
        spaces = [self._route_space(r, i) for i, r in enumerate(routes)]
        for i, sp in enumerate(spaces[1:], start=1):
            problem = space_problem(spaces[0], sp)
            if problem:
                raise EncoderMismatchError(
                    f"route {i} ({self._route_name(routes[i])}) ends in another space than route 0 "
                    f"({describe_identity(spaces[0])}): {problem}; every route must give vectors of one space")
        if weights is None:
            w = np.full(len(routes), 1.0 / len(routes))
        else:
            w = np.asarray(list(weights), dtype=np.float64)
            if w.shape != (len(routes),) or not np.isfinite(w).all() or (w <= 0).any():
                raise ValueError(f"weights must be {len(routes)} positive finite numbers, one per route, got "
                                 f"{list(weights)!r}")
            w = w / w.sum()
        self.routes, self.weights = routes, [float(x) for x in w]
        self.dim = int(spaces[0]["dim"])
        # The shared space, with the fingerprint of a route that is the space's own encoder when one is known
        self.vector_space_ = next((dict(s) for s in spaces if s.get("fingerprint")), dict(spaces[0]))
        self.name = name or "avg(" + ", ".join(self._route_name(r) for r in routes) + ")"

    @staticmethod
    def _route_name(route: Any) -> str:
        if isinstance(route, LangAlign):
            return f"bridge {route.target_name}->{route.source_name}"
        return str(getattr(route, "name", type(route).__name__))

    @staticmethod
    def _route_space(route: Any, i: int) -> dict:
        if isinstance(route, LangAlign):
            if not route.is_fitted:
                raise ValueError(f"route {i}: the LangAlign is not fitted yet; fit it (or load a saved one) first")
            if route.reverse_ is None:
                raise ValueError(f"route {i}: the LangAlign was fitted with reverse=False; a route needs its "
                                 "target -> source map")
            return route.encoder_identity("source")
        if isinstance(route, Encoder):
            return vector_space(route)
        raise TypeError(f"route {i} must be an Encoder or a fitted LangAlign, got {type(route).__name__}")

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return average_unit_vectors([route.to_source(texts, show_progress=False) if isinstance(route, LangAlign)
                                     else route.encode(texts, show_progress=False) for route in self.routes],
                                    self.weights)
