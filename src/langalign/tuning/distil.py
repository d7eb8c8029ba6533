"""Distil mode: a multilingual student learns an English teacher's space (Reimers & Gurevych 2020).

``EncoderTuner("e5-small", mode="distil", teacher="minilm").fit(english_sentences)`` trains the
student so that student(en) ≈ teacher(en) (MSE) on English text alone; the student's own
cross-lingual alignment carries Korean, Japanese and Chinese along, so its vectors of those
languages land in the teacher's space: an English MiniLM classifier or vector index reads them
directly. Given translations too (``fit(english, translations)``), student(translation) is pulled
toward teacher(english) as well.

The teacher's vectors are computed once, through the embedding cache when it is available.
The tuned folder records the teacher's identity as its ``vector_space``, which is how
:func:`langalign.encoder_identity.vector_space` (and a :class:`~langalign.index.SearchIndex` given
``encoder=``) knows its vectors belong with the teacher's.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..encoders import Encoder, load_encoder
from ..errors import DataError
from .base import TuningError
from .inputs import _digest, _pairs, _random_split, _texts


def load_teacher(teacher: Any) -> Encoder:
    """The teacher as an :class:`Encoder` (through the embedding cache when it is installed)."""
    if teacher is None:
        raise TuningError("distil mode needs a teacher: the encoder whose space the student learns "
                          "(e.g. teacher='minilm', CLI --teacher minilm)")
    enc = teacher if isinstance(teacher, Encoder) else load_encoder(teacher)
    try:
        from ..scale.cache import CachedEncoder
    except ImportError:  # pragma: no cover - the cache is part of the package
        return enc
    return enc if isinstance(enc, CachedEncoder) else CachedEncoder(enc)


def teacher_name(teacher: Any) -> str:
    return teacher if isinstance(teacher, str) else str(getattr(teacher, "name", type(teacher).__name__))


def prepare_distil(X: Any, y: Any, dev: Any, dev_fraction: float, seed: int) -> dict[str, Any]:
    """English texts (and, optionally, their translations) split into train and dev."""
    if y is None:
        english, trans = _texts(X, "English texts"), None
    else:
        english, trans = _pairs(X, y, hint="; row i of each must be translations of each other (or give no "
                                "translations)")
    if len(english) < 3:
        raise DataError(f"distil mode needs at least 3 English texts, got {len(english)}")
    rows = zip(english, trans, strict=True) if trans is not None else ([t] for t in english)
    data: dict[str, Any] = {"english": english, "translations": trans, "sha256": _digest(rows)}
    if dev is not None:
        if not (isinstance(dev, (tuple, list)) and len(dev) == 2):
            raise DataError("dev must be an (english, translations) tuple (translations may be None)")
        de, dt = (_texts(dev[0], "dev English texts"), None) if dev[1] is None else _pairs(dev[0], dev[1], "dev pairs")
        if not de:
            raise DataError("the dev set is empty")
        data["dev"] = {"english": de, "translations": dt}
        data["dev_sha256"] = _digest(zip(de, dt, strict=True) if dt is not None else ([t] for t in de))
    else:
        tr, dv = _random_split(len(english), dev_fraction, seed)
        data["dev"] = {"english": [english[i] for i in dv],
                       "translations": None if trans is None else [trans[i] for i in dv]}
        data["dev_sha256"] = None
        data["english"] = [english[i] for i in tr]
        data["translations"] = None if trans is None else [trans[i] for i in tr]
    return data


def teacher_vectors(teacher: Encoder, data: dict[str, Any], student_dim: int | None) -> dict[str, np.ndarray]:
    """teacher(english) of the training and dev texts; without a start map (``student_dim`` given) the
    student must have the teacher's dimension."""
    if student_dim is not None and int(teacher.dim) != int(student_dim):
        raise TuningError(f"the teacher {teacher.name!r} gives {teacher.dim}-d vectors but the student gives "
                          f"{student_dim}-d ones; distil mode needs the same dimension (e.g. e5-small and minilm, "
                          "both 384-d)")
    return {"train": np.asarray(teacher.encode(data["english"], show_progress=True), np.float32),
            "dev": np.asarray(teacher.encode(data["dev"]["english"]), np.float32)}


def add_start_map(model: Any, S: np.ndarray, T: np.ndarray, alpha: float = 1.0) -> dict[str, Any]:
    """Append a linear layer (+ normalisation) to the student, initialised with the ridge map S -> T.

    Distillation from scratch must first rotate the student's whole space onto the teacher's; on a
    CPU budget most steps would go there. Started from the least-squares map (the frozen-map bridge
    on the student's own vectors), every step refines a bridge that already works, and the layer is
    tuned with the rest. Returns what was fitted (for the metadata).
    """
    import torch

    try:
        from sentence_transformers.sentence_transformer.modules import Dense, Normalize
    except ImportError:  # pragma: no cover - sentence-transformers before 5.x
        from sentence_transformers.models import Dense, Normalize  # type: ignore[no-redef,import-not-found,unused-ignore]
    S64, T64 = np.asarray(S, np.float64), np.asarray(T, np.float64)
    ms, mt = S64.mean(0), T64.mean(0)
    Sc, Tc = S64 - ms, T64 - mt
    W = np.linalg.solve(Sc.T @ Sc + alpha * np.eye(Sc.shape[1]), Sc.T @ Tc)  # (d_s, d_t)
    b = mt - ms @ W
    dense = Dense(in_features=S.shape[1], out_features=T.shape[1], bias=True,
                  activation_function=torch.nn.Identity(),
                  init_weight=torch.tensor(W.T, dtype=torch.float32), init_bias=torch.tensor(b, dtype=torch.float32))
    model.append(dense)
    model.append(Normalize())
    P = S64 @ W + b
    P /= np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
    cos = float(np.mean(np.sum(P * T64 / np.maximum(np.linalg.norm(T64, axis=1, keepdims=True), 1e-12), axis=1)))
    return {"pairs": int(S.shape[0]), "alpha": alpha, "train_cosine": round(cos, 6)}


def dev_inputs(data: dict[str, Any]) -> list[str]:
    """What the student encodes for the dev score: the translations when given (the cross-lingual
    question), else the held-out English texts."""
    dt = data["dev"].get("translations")
    return dt if dt is not None else data["dev"]["english"]


__all__ = ["add_start_map", "load_teacher", "prepare_distil", "teacher_vectors", "dev_inputs", "teacher_name"]
