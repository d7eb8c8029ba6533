"""The models a service answers for, loaded once from the config's artefacts.

Model names (``GET /v1/models``):

- an encoder by its name (``use-multilingual``, ``minilm``, ``e5-small``): its own vectors; an encoder with
  query and passage prompts is served in both roles (``e5-small`` for queries, ``e5-small:passage`` for
  documents);
- for an aligner ``NAME`` (source encoder S, target encoder T): ``NAME:to-source`` reads text with T
  and maps it into S's space (Rev-LangAlign), ``NAME:to-target`` reads text with S and maps it into
  T's space (LangAlign); with languages from the config, ``ko->en:NAME`` is an alias of ``NAME:to-source``
  and ``en->ko:NAME`` of ``NAME:to-target`` (the map is the same for every language T reads);
- classifiers and indexes by their config names (``/v1/classify``, ``/v1/search``).

Every artefact is loaded with the served encoder objects, so its recorded encoder identity
(name, dimension, fingerprint) is checked while loading, before the service reports ready.
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np

from ..encoders import (ROLES, TUNED_PREFIX, Encoder, canonical_encoder_name, load_encoder, looks_like_path,
                        names_folder)
from ..errors import ArtefactError, LangAlignError
from .admission import Admission
from .batcher import MicroBatcher
from .config import ServeConfig

log = logging.getLogger("langalign.serving")


@dataclass
class EmbeddingModel:
    id: str
    kind: str                       # "encoder" | "aligned"
    encoder: Encoder                # reads the input text
    space: dict                     # identity of the output space (an encoder identity)
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    description: str = ""

    @property
    def dim(self) -> int:
        return int(self.space["dim"])


@dataclass
class ServedClassifier:
    id: str
    classifier: Any
    encoder: Encoder
    pair_task: bool
    classes: list[Any]


@dataclass
class ServedIndex:
    id: str
    index: Any
    default_model: str


class Registry:
    """Loads everything named in a :class:`ServeConfig`; ``state`` is "loading", "ready" or "error"."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.state = "loading"
        self.error: str | None = None
        self.encoders: dict[str, Encoder] = {}
        self.embeddings: dict[str, EmbeddingModel] = {}
        self.classifiers: dict[str, ServedClassifier] = {}
        self.indexes: dict[str, ServedIndex] = {}
        self.created = int(time.time())
        self.on_error: Callable[[], None] | None = None
        self._batchers: dict[int, MicroBatcher] = {}
        self.admission = Admission(config.limits)  # admission rules and every counter of the service
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Requests being served now (the app counts them; batchers read it)."""
        return self.admission.stats.in_flight

    # -- loading -----------------------------------------------------------------------
    def load_safely(self) -> None:
        """:meth:`load`, recording any failure in ``state``/``error`` instead of raising (a loader thread)."""
        try:
            self.load()
        except Exception as e:  # reported by /health and by `langalign serve`'s exit
            self.error = " ".join(f"{type(e).__name__}: {e}".split()) if not isinstance(e, LangAlignError) \
                else " ".join(str(e).split())
            self.state = "error"
            log.error("loading failed: %s", self.error)
            if self.on_error is not None:
                self.on_error()

    def load(self) -> Registry:
        from ..aligner import LangAlign
        from ..index import SearchIndex
        from ..transfer import CrossLingualClassifier

        t0 = time.perf_counter()
        cfg = self.config
        force = cfg.force
        for e in cfg.encoders:
            self._add_encoder(e if isinstance(e, Encoder) else load_encoder(e))
        for name, spec in cfg.aligners.items():
            peek = LangAlign.load(spec.path)  # encoders by recorded name, not loaded yet
            src = self._encoder_for(peek.source_name, f"aligner {name!r}")
            tgt = self._encoder_for(peek.target_name, f"aligner {name!r}")
            align = LangAlign.load(spec.path, source_encoder=src, target_encoder=tgt, force=force)
            src_space, tgt_space = _identity(src), _identity(tgt)
            if align.reverse_ is not None:
                m = EmbeddingModel(f"{name}:to-source", "aligned", tgt, src_space, align.to_source,
                                   f"text read by {tgt.name}, mapped into the {src.name} space (Rev-LangAlign)")
                self._add_embedding(m)
                for lang in spec.target_langs:
                    self._add_embedding(_alias(m, f"{lang}->{spec.source_lang}:{name}"))
            m = EmbeddingModel(f"{name}:to-target", "aligned", src, tgt_space, align.to_target,
                               f"text read by {src.name}, mapped into the {tgt.name} space (LangAlign)")
            self._add_embedding(m)
            for lang in spec.target_langs:
                self._add_embedding(_alias(m, f"{spec.source_lang}->{lang}:{name}"))
            log.info("aligner %s: %s <-> %s", name, src.name, tgt.name)
        for name, path in cfg.classifiers.items():
            peek_clf = CrossLingualClassifier.load(path)
            src = self._encoder_for(peek_clf.align.source_name, f"classifier {name!r}")
            tgt = self._encoder_for(peek_clf.align.target_name, f"classifier {name!r}")
            clf = CrossLingualClassifier.load(path, source_encoder=src, target_encoder=tgt, force=force)
            classes = [c.item() if hasattr(c, "item") else c for c in clf._require_head().classes_]
            self.classifiers[name] = ServedClassifier(name, clf, tgt, bool(clf.pair_task_), classes)
            log.info("classifier %s: %s mode, reads %s, %d labels", name, clf.mode, tgt.name, len(classes))
        for name, path in cfg.indexes.items():
            idx = SearchIndex.load(path)
            enc = self._encoder_for(idx.encoder_name, f"index {name!r}")
            idx.use_encoder(enc, force=force)
            self.indexes[name] = ServedIndex(name, idx, self._model_name(enc))
            log.info("index %s: %d documents, %s", name, len(idx), enc.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for enc in self.encoders.values():
                _identity(enc)  # every fingerprint computed (and cached) before the service is ready
        self.state = "ready"
        log.info("ready in %.1fs: %d embedding models, %d classifiers, %d indexes", time.perf_counter() - t0,
                 len(self.embeddings), len(self.classifiers), len(self.indexes))
        return self

    def _model_name(self, enc: Encoder) -> str:
        return canonical_encoder_name(enc.name)

    def _add_encoder(self, enc: Encoder) -> Encoder:
        key = self._model_name(enc)
        have = self.encoders.get(key)
        if have is not None:
            return have
        self.encoders[key] = enc
        what = f"{enc.name} ({enc.dim}-d{f', {enc.role} role' if enc.role else ''})"
        space = _space(enc)
        if space.get("fingerprint") != _identity(enc).get("fingerprint"):  # distilled or averaged into another's
            how = "averaged routes" if getattr(enc, "routes", None) else "distilled"
            what += f", vectors in the {space.get('name')} space ({how})"
        self._add_embedding(EmbeddingModel(key, "encoder", enc, space, None, what))
        for role in ROLES:  # an encoder with query and passage prompts serves both: e5-small, e5-small:passage
            self._add_encoder(enc.for_role(role))
        return enc

    def _encoder_for(self, name: str | None, what: str) -> Encoder:
        if not isinstance(name, str):
            raise ArtefactError(f"{what} records no encoder name")
        have = self.encoders.get(canonical_encoder_name(name))
        if have is not None:
            return have
        served = next((e for e in self.encoders.values() if names_folder(name, e)), None)
        if served is not None:  # recorded by the path of a tuned folder the config lists: that encoder
            return served
        if looks_like_path(name):
            raise ArtefactError(f"{what} records its encoder as the local path {name!r}; a service loads a model "
                                "from a path only when its config lists it: add that path under \"encoders\"")
        if name.startswith(TUNED_PREFIX):  # no folder to load it from: the operator names it
            raise ArtefactError(f"{what} was fitted on the tuned encoder {name!r}, which the service does not "
                                "serve: list its folder (written by `langalign tune`) under \"encoders\" in the "
                                "config (CLI: --encoder PATH)")
        return self._add_encoder(load_encoder(name, allow_download=False))  # named by an artefact, not the operator

    def _add_embedding(self, m: EmbeddingModel) -> None:
        if m.id in self.embeddings:
            raise ArtefactError(f"two served models are both named {m.id!r}; rename an aligner in the config")
        self.embeddings[m.id] = m

    # -- serving -----------------------------------------------------------------------
    def batcher(self, enc: Encoder) -> MicroBatcher:
        with self._lock:
            b = self._batchers.get(id(enc))
            if b is None:
                def encode(texts: list[str], e: Encoder = enc) -> np.ndarray:
                    return e.encode(texts, show_progress=False)

                def on_batch(texts: int, chars: int, seconds: float, name: str = self._model_name(enc)) -> None:
                    self.admission.on_batch(texts, chars, seconds, name)

                b = MicroBatcher(encode,
                                 self.config.batch.max_texts, self.config.batch.max_wait_ms, enc.name,
                                 in_flight=lambda: self.in_flight, max_chars=self.config.batch.max_chars,
                                 on_batch=on_batch)
                self._batchers[id(enc)] = b
            return b

    def close(self) -> None:
        for b in self._batchers.values():
            b.close()

    def model_cards(self) -> list[dict[str, Any]]:
        out = []
        for m in self.embeddings.values():
            out.append(_card(m.id, self.created, {"kind": "embedding", "pipeline": m.kind, "dim": m.dim,
                                                   "space": m.space.get("name"), "reads": m.encoder.name,
                                                   "fingerprint": m.space.get("fingerprint"),
                                                   "description": m.description}))
        for c in self.classifiers.values():
            out.append(_card(c.id, self.created, {"kind": "classifier", "mode": c.classifier.mode,
                                                   "reads": c.encoder.name, "pair_task": c.pair_task,
                                                   "labels": c.classes}))
        for i in self.indexes.values():
            out.append(_card(i.id, self.created, {"kind": "index", "documents": len(i.index),
                                                   "space": i.index.encoder_name, "dim": i.index.dim,
                                                   "default_model": i.default_model}))
        return out


def _card(model_id: str, created: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "langalign", "langalign": extra}


def _alias(m: EmbeddingModel, name: str) -> EmbeddingModel:
    return EmbeddingModel(name, m.kind, m.encoder, m.space, m.transform, f"{m.description}; alias of {m.id}")


def _space(enc: Encoder) -> dict:
    """The space an encoder's vectors live in: its own, or its teacher's (``langalign tune --mode distil``)."""
    from ..encoder_identity import vector_space

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vector_space(enc)


def _identity(enc: Encoder) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a custom encoder that cannot encode the probes: name and dim only
        return enc.identity()
