"""Cross-lingual transfer: train a task head on English, serve another language.

Three ways to put English training data and target-language input in one space:

- ``mode="forward"`` (LangAlign): the head learns on English vectors mapped into
  the target space (``align.to_target``); target input goes through the target
  encoder straight into the head.
- ``mode="reverse"`` (Rev-LangAlign): the head learns on the source encoder's
  English vectors; target input is mapped into the English space first
  (``align.to_source``). An existing English head can be wrapped with
  :meth:`CrossLingualClassifier.from_head`.
- ``mode="zero-shot"``: no map. The head learns on source-encoder vectors and is
  applied to target-encoder vectors; only meaningful when one multilingual
  encoder serves both sides (the paper's English-data baseline).

Sentence-pair tasks (NLI) take ``(premise, hypothesis)`` tuples; the head sees
``[u, v, |u-v|, u*v]`` of the two (mapped) vectors.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._labels import check_labels, match_classes
from ._validation import check_matrix, check_texts
from .aligner import LangAlign, guarded_from_state
from .artefacts import add_prefix, load_artefact, prefix_spec, save_artefact, split_prefix
from .encoders import Encoder, load_encoder
from .errors import ArtefactError
from .evaluation import classification_report, cohen_kappa, cosine_pairs
from .heads import Head, head_config_tensors, head_from_state, make_head, pair_features

KIND = "classifier"
MODES = ("forward", "reverse", "zero-shot")


def _split_pairs(items: Sequence[Any], name: str) -> tuple[list[str], list[str]] | None:
    """Return (firsts, seconds) if ``items`` are 2-tuples of text, None if plain texts."""
    if isinstance(items, (str, bytes)) or items is None:
        check_texts(items, name)
    items = list(items)
    if not items or isinstance(items[0], str):
        return None
    a, b = [], []
    for i, it in enumerate(items):
        if not (isinstance(it, (tuple, list)) and len(it) == 2 and all(isinstance(t, str) for t in it)):
            raise TypeError(f"{name}[{i}] must be a str or a (text, text) pair, got {type(it).__name__}")
        a.append(it[0])
        b.append(it[1])
    return a, b


class CrossLingualClassifier:
    """A task head trained on source-language (English) data, applied to target-language input.

    Parameters
    ----------
    align:
        a fitted :class:`LangAlign` (forward/reverse), or for ``mode="zero-shot"``
        a ``LangAlign`` or a single :class:`Encoder`/encoder name used on both sides.
    mode:
        ``"forward"`` (LangAlign), ``"reverse"`` (Rev-LangAlign) or ``"zero-shot"``.
    head:
        ``"logreg"`` (default) or ``"mlp"``; ``head_params`` go to its constructor.
    """

    def __init__(self, align: LangAlign | Encoder | str, mode: str = "forward", head: str = "logreg",
                 head_params: dict | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(align, LangAlign):
            if mode != "zero-shot":
                raise TypeError(f"mode={mode!r} needs a fitted LangAlign, got {type(align).__name__}")
            align = LangAlign(align, align)  # encoders only; no map is ever fitted or used
        elif mode != "zero-shot" and not align.is_fitted:
            raise ValueError("the LangAlign is not fitted; fit it before building a classifier")
        self.align = align
        self.mode = mode
        self.head = head
        self.head_params = dict(head_params or {})
        self.head_: Head | None = None
        self.pair_task_: bool | None = None

    @classmethod
    def from_head(cls, align: LangAlign, head: Any, pair_task: bool = False) -> CrossLingualClassifier:
        """Wrap an already fitted English head (on source-encoder vectors) for target input."""
        clf = cls(align, mode="reverse", head=type(head).__name__)
        clf.head_ = head
        clf.pair_task_ = pair_task
        return clf

    # -- features --------------------------------------------------------------------
    def train_vectors(self, X_source: np.ndarray) -> np.ndarray:
        """Vectors the head learns on, from source-encoder vectors of English data."""
        return self.align.to_target(X_source) if self.mode == "forward" else X_source

    def input_vectors(self, Y_target: np.ndarray) -> np.ndarray:
        """Vectors the head sees at prediction time, from target-encoder vectors."""
        return self.align.to_source(Y_target) if self.mode == "reverse" else Y_target

    def _encode(self, data: Sequence[Any], side: str, name: str) -> tuple[np.ndarray, bool]:
        enc = self.align.encode_source if side == "source" else self.align.encode_target
        split = _split_pairs(data, name)
        if split is None:
            return enc(check_texts(data, name)), False
        a, b = split
        both = enc(a + b)
        return np.concatenate([both[: len(a)], both[len(a):]], axis=1), True

    def _features(self, V: np.ndarray, pair: bool, transform) -> np.ndarray:
        if not pair:
            return transform(V)
        d = V.shape[1] // 2
        return pair_features(transform(V[:, :d]), transform(V[:, d:]))

    # -- training and prediction -----------------------------------------------------
    def fit(self, texts: Sequence[Any], labels: Sequence[Any]) -> CrossLingualClassifier:
        """Train the head on source-language texts (or ``(text, text)`` pairs) and labels."""
        V, pair = self._encode(texts, "source", "texts")
        return self.fit_embeddings(V, labels, pair=pair)

    def fit_embeddings(self, X_source: Any, labels: Sequence[Any], pair: bool = False) -> CrossLingualClassifier:
        """Train from source-encoder vectors; for pairs, pass ``[u | v]`` side by side and ``pair=True``."""
        X = check_matrix(X_source, "X_source", allow_empty=False)
        F = self._features(X, pair, self.train_vectors)
        self.head_ = make_head(self.head, **self.head_params).fit(F, list(labels))
        self.pair_task_ = pair
        return self

    def _require_head(self) -> Head:
        if self.head_ is None:
            raise ValueError("this classifier is not fitted yet; call fit(texts, labels) first")
        return self.head_

    def predict(self, texts: Sequence[Any]) -> np.ndarray:
        """Labels for target-language texts (or ``(text, text)`` pairs)."""
        return self._require_head().predict(self._target_features(texts))

    def predict_proba(self, texts: Sequence[Any]) -> np.ndarray:
        return self._require_head().predict_proba(self._target_features(texts))

    def _target_features(self, texts: Sequence[Any]) -> np.ndarray:
        self._require_head()
        V, pair = self._encode(texts, "target", "texts")
        if pair != self.pair_task_:
            kind = "sentence pairs" if self.pair_task_ else "single texts"
            raise ValueError(f"this classifier was trained on {kind}; got {'pairs' if pair else 'single texts'}")
        return self._features(V, pair, self.input_vectors)

    def predict_embeddings(self, Y_target: Any) -> np.ndarray:
        """Labels from target-encoder vectors (``[u | v]`` for pair tasks)."""
        head = self._require_head()
        Y = check_matrix(Y_target, "Y_target")
        return head.predict(self._features(Y, bool(self.pair_task_), self.input_vectors))

    def predict_source_embeddings(self, X_source: Any) -> np.ndarray:
        """Labels for source-encoder (English) vectors, through the path the head was trained on."""
        head = self._require_head()
        X = check_matrix(X_source, "X_source")
        return head.predict(self._features(X, bool(self.pair_task_), self.train_vectors))

    def agreement(self, source_items: Sequence[Any], target_items: Sequence[Any]) -> dict[str, Any]:
        """Label-free check on unlabelled parallel data: do translations get the same label?

        ``source_items[i]`` (English) translates to ``target_items[i]``; texts or
        ``(text, text)`` pairs. See :meth:`agreement_embeddings`.
        """
        X, pair_x = self._encode(source_items, "source", "source_items")
        Y, pair_y = self._encode(target_items, "target", "target_items")
        if pair_x != pair_y:
            raise ValueError("source_items and target_items must both be texts or both be pairs")
        return self.agreement_embeddings(X, Y)

    def agreement_embeddings(self, X_source: Any, Y_target: Any) -> dict[str, Any]:
        """``{"kappa", "agreement", "n"}`` between the predictions on the English side (as in
        training) and on the target side (as in :meth:`predict_embeddings`) of parallel vectors.

        Cohen's kappa, not raw agreement, is the score: a head that gives every input the
        same label agrees with itself perfectly, and kappa scores it 0.
        """
        src = self.predict_source_embeddings(X_source)
        tgt = self.predict_embeddings(Y_target)
        if len(src) != len(tgt):
            raise ValueError(f"X_source and Y_target must have the same number of rows: {len(src)} != {len(tgt)}")
        return {"kappa": cohen_kappa(src, tgt), "agreement": float(np.mean(src == tgt)), "n": int(len(src))}

    def evaluate(self, texts: Sequence[Any], labels: Sequence[Any]) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class report and confusion matrix on target-language data.

        ``labels`` are compared with the head's classes by :func:`langalign._labels.match_classes`:
        the strings ``"0", "1"`` of a TSV test set are the integer classes ``0, 1`` (and back).
        """
        y = match_classes(check_labels(labels, "labels"), self._require_head().classes_, "test labels")
        return classification_report(y, self.predict(texts))

    # -- saving ----------------------------------------------------------------------
    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the classifier atomically; ``folder`` as in :meth:`LangAlign.save`."""
        head = self._require_head()
        config = {"mode": self.mode, "head": self.head, "head_params": self.head_params,
                  "pair_task": bool(self.pair_task_), "head_config": head.get_config()}
        tensors = add_prefix(head.state_dict(), "head")
        if self.mode == "zero-shot":
            config["encoders"] = {"source": self.align.source_name, "target": self.align.target_name}
            # Identities of both sides, checked on first use after loading (see LangAlign._checked).
            config["encoder_identity"] = {side: self._zero_shot_identity(side) for side in ("source", "target")}
        else:
            config["aligner"] = self.align.get_config()
            tensors.update(add_prefix(self.align.state_dict(), "aligner"))
        return save_artefact(folder, config, tensors, KIND, overwrite=overwrite)

    def _zero_shot_identity(self, side: str) -> dict:
        enc = self.align._src if side == "source" else self.align._tgt
        if isinstance(enc, Encoder):
            return enc.identity()
        rec = self.align._recorded.get(side)
        if isinstance(rec, dict) and rec.get("name") == enc:
            return dict(rec)
        dim = self._require_head().n_features_in_
        return {"name": enc, "dim": int(dim // 4 if self.pair_task_ else dim)}

    @classmethod
    def load(cls, folder: str | Path, source_encoder: Encoder | str | None = None,
             target_encoder: Encoder | str | None = None, force: bool = False) -> CrossLingualClassifier:
        """Load a saved classifier; encoders are checked against the recorded ones before
        first use, as in :meth:`LangAlign.load` (``force=True`` to override)."""
        config, tensors = load_artefact(folder, KIND, expected=lambda c, w: guarded_from_state(
            lambda c2, t2, where: cls.config_tensors(c2, where), w, c, {}))
        return guarded_from_state(cls._from_state, str(Path(folder) / "config.json"), config, tensors,
                                  source_encoder, target_encoder, force=force)

    @classmethod
    def config_tensors(cls, config: dict, where: str = "classifier config") -> dict:
        """Validate a saved classifier config; the tensors it implies (``head.*``, ``aligner.*``)."""
        mode = config.get("mode")
        if not isinstance(mode, str) or mode not in MODES:
            raise ArtefactError(f"{where}: unknown mode {mode!r}")
        spec = prefix_spec(head_config_tensors(config.get("head_config"), where, "head_config"), "head")
        if mode != "zero-shot":
            if not isinstance(config.get("aligner"), dict):
                raise ArtefactError(f"{where} lacks its aligner section")
            spec.update(prefix_spec(LangAlign.config_tensors(config["aligner"], where, "aligner"), "aligner"))
        return spec

    @classmethod
    def _from_state(cls, config: dict, tensors: dict, source_encoder: Encoder | str | None,
                    target_encoder: Encoder | str | None, where: str, force: bool = False) -> CrossLingualClassifier:
        mode = config.get("mode")
        if mode not in MODES:
            raise ArtefactError(f"{where}: unknown mode {mode!r}")
        if mode == "zero-shot":
            enc = config.get("encoders") or {}
            if not isinstance(enc, dict) or not all(isinstance(enc.get(k), str) for k in ("source", "target")):
                raise ArtefactError(f"{where}: malformed encoders entry {enc!r}")
            align = LangAlign(source_encoder or enc.get("source"), target_encoder or enc.get("target"))
            ident = config.get("encoder_identity")
            if ident is not None and not isinstance(ident, dict):
                raise ArtefactError(f"{where}: malformed encoder_identity entry")
            align._recorded = {"source": (ident or {}).get("source"), "target": (ident or {}).get("target")}
            align._from_artefact = True
            align._explicit = {s for e, s in ((source_encoder, "source"), (target_encoder, "target")) if e is not None}
            align.force = bool(force)
            for e, side in ((source_encoder, "source"), (target_encoder, "target")):
                if isinstance(e, Encoder):
                    align._checked(e, side)
        else:
            if not isinstance(config.get("aligner"), dict):
                raise ArtefactError(f"{where} lacks its aligner section")
            align = LangAlign.from_state(config["aligner"], split_prefix(tensors, "aligner"),
                                         source_encoder, target_encoder, where=where, force=force)
        head_params = config.get("head_params")
        clf = cls(align, mode=mode, head=config.get("head", "logreg"),
                  head_params=head_params if isinstance(head_params, dict) else {})
        clf.head_ = head_from_state(config.get("head_config"), split_prefix(tensors, "head"))
        clf.pair_task_ = bool(config.get("pair_task"))
        fwd = align.forward_
        in_dim = None if mode == "zero-shot" or fwd is None else (fwd.d_out_ if mode == "forward" else fwd.d_in_)
        if in_dim is not None and clf.head_.n_features_in_ != (4 * in_dim if clf.pair_task_ else in_dim):
            raise ArtefactError(f"{where}: the head takes {clf.head_.n_features_in_} features but the aligner "
                                f"gives {in_dim}-d vectors")
        return clf

    def __repr__(self) -> str:
        return f"CrossLingualClassifier(mode={self.mode!r}, head={self.head!r}, align={self.align!r})"


# What select_classifier(dev=...) can rank candidates by (keys of classification_report).
SELECTION_METRICS = ("accuracy", "macro_f1")


def select_classifier(candidates: dict[str, CrossLingualClassifier], *, parallel: tuple[Any, Any] | None = None,
                      dev: tuple[Any, Sequence[Any]] | None = None, metric: str = "accuracy") -> dict[str, Any]:
    """Choose among fitted classifiers for the target language, with or without target labels.

    ``dev=(target_texts_or_vectors, labels)``: a small labelled target-language dev set;
    the candidate with the best ``metric`` (``"accuracy"`` or ``"macro_f1"``) wins.
    Otherwise ``parallel=(english, target)``: unlabelled parallel texts or vectors; the
    candidate whose predictions agree best (Cohen's kappa) across the two sides wins.
    English dev accuracy is not offered: every reverse/zero-shot candidate with the same
    head scores the same on it, and it says little about transfer. Ties go to the first
    candidate. Returns ``{"chosen", "by", "scores"}``.

    Agreement measures consistency, not accuracy: use it to choose among maps or modes
    with the same head settings, not to tune the head. Over C it prefers over-regularised
    heads, which agree with themselves but are less accurate (``bench/model_selection.py``,
    ``results/model_selection.md``).
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if not isinstance(metric, str) or metric not in SELECTION_METRICS:
        raise ValueError(f"metric must be one of {', '.join(map(repr, SELECTION_METRICS))}, got {metric!r}"[:200])
    if dev is not None:
        items, labels = dev
        scores = {}
        for name, clf in candidates.items():
            pred = clf.predict_embeddings(items) if isinstance(items, np.ndarray) else clf.predict(items)
            scores[name] = classification_report(list(labels), list(pred))[metric]
        by = f"target dev {metric}"
    elif parallel is not None:
        src, tgt = parallel
        arrays = isinstance(src, np.ndarray) and isinstance(tgt, np.ndarray)
        scores = {name: (clf.agreement_embeddings(src, tgt) if arrays else clf.agreement(src, tgt))["kappa"]
                  for name, clf in candidates.items()}
        by = "agreement (kappa) on unlabelled parallel pairs"
    else:
        raise ValueError("pass dev=(target items, labels) or parallel=(english items, target items)")
    best = max(scores.values())
    chosen = next(name for name, v in scores.items() if v == best)
    return {"chosen": chosen, "by": by, "scores": scores}


def similarity(align: LangAlign | Encoder | str, pairs: Sequence[tuple[str, str]], space: str = "target") -> np.ndarray:
    """Cosine similarity of target-language sentence pairs, in the target space
    (``space="target"``, raw) or after Rev-LangAlign (``space="source"``)."""
    split = _split_pairs(pairs, "pairs")
    if split is None:
        raise TypeError("pairs must be a list of (text, text) tuples")
    a, b = split
    if not isinstance(align, LangAlign):
        enc = load_encoder(align)
        E = enc.encode(a + b)
    else:
        E = align.encode_target(a + b)
        if space == "source":
            E = align.to_source(E)
    return cosine_pairs(E[: len(a)], E[len(a):])
