"""The sentence-encoder interface: :class:`Encoder`, its probe fingerprint and its roles.

The concrete encoders (bundled models, sentence-transformers, e5-small, tuned folders) and
:func:`langalign.encoders.load_encoder` live in :mod:`langalign.encoders`, which re-exports every name here.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import NoReturn

import numpy as np

from ._progress import progress, progress_enabled
from ._validation import check_texts

# Texts longer than this are cut before encoding. No sentence encoder looks
# that far (MiniLM stops at 256 tokens), and it bounds time on pathological input.
DEFAULT_MAX_CHARS = 20_000

# Texts per forward pass of a sentence-transformers model: the best of 8-256 on length-sorted
# English text on 2 CPU cores (bench/encoders.py); larger batches pad more, smaller ones pay
# per-call overhead. Encoder.encode's batch_size is the number of texts per _encode_batch call.
FORWARD_BATCH_SIZE = 32

# Fixed probe sentences (several scripts and languages): their vectors identify an
# encoder far better than its name does (a re-trained model under the same hub id,
# a different normalisation, a wrapper bug). Never change them: fingerprints in
# saved artefacts were computed from exactly these.
PROBE_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Der Vertrag wurde gestern in Berlin unterschrieben.",
    "오늘 날씨가 정말 좋네요.",
    "この本はとても面白いです。",
    "我们明天早上九点开会。",
    "¿Dónde está la estación de tren?",
)
# Probe vectors are projected to this many numbers (a fixed random projection) and
# rounded; the projection is what artefacts store and compare with a tolerance.
_PROBE_DIMS = 8
PROBE_DECIMALS = 3
# Two encoders are "the same" when every stored probe number agrees this closely.
# Float noise across BLAS builds is ~1e-6; two different models differ by >> 0.01.
PROBE_TOLERANCE = 2e-2


class Encoder(ABC):
    """A frozen sentence encoder. Subclasses implement :meth:`_encode_batch`."""

    name: str
    dim: int
    max_chars: int = DEFAULT_MAX_CHARS
    # Transformers pad a batch to its longest text, so their cost follows the longest one:
    # such encoders set this and encode() hands them texts of similar length together.
    length_sorted: bool = False
    # How the model is run ("torch" unless an encoder offers others; see langalign.onnx_backend).
    backend: str = "torch"

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Encode one batch of already-validated texts to an (n, dim) array."""

    def encode(self, texts: Iterable[str], batch_size: int = 256, show_progress: bool | None = None) -> np.ndarray:
        """Encode ``texts`` to a float32 array of shape ``(len(texts), dim)``.

        Empty strings are encoded like any other text; an empty list gives ``(0, dim)``.
        ``batch_size`` texts go to the model per call (the progress bar's step); encoders
        with :attr:`length_sorted` visit the texts longest first, so each call holds texts of
        similar length, and put every vector back in its row: the result does not depend on
        the order. ``show_progress=None`` shows a bar only on long inputs.
        """
        texts = check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        texts = [t[: self.max_chars] for t in texts]
        order = length_order(texts) if self.length_sorted and len(texts) > 1 else None
        seq = texts if order is None else [texts[i] for i in order]
        starts = range(0, len(seq), batch_size)
        show = progress_enabled(show_progress, len(texts))
        bar = progress(starts, total=len(starts), desc=f"encode [{self.name}]", show=show, unit="batch")
        for s in bar:
            batch = seq[s : s + batch_size]
            vecs = np.asarray(self._encode_batch(batch), dtype=np.float32)
            if vecs.shape != (len(batch), self.dim):
                raise RuntimeError(f"encoder {self.name} returned shape {vecs.shape}, "
                                   f"expected {(len(batch), self.dim)}")
            if order is None:
                out[s : s + len(batch)] = vecs
            else:
                out[order[s : s + len(batch)]] = vecs
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():
            # A broken model (or a custom function) must not pass NaN downstream silently.
            bad = np.flatnonzero(~finite)
            shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
            raise ValueError(f"encoder {self.name} produced NaN or inf vectors for {len(bad)} text(s): rows {shown}")
        return out

    # -- roles -----------------------------------------------------------------------
    @property
    def role(self) -> str | None:
        """The role this encoder's prompt serves (``"query"``, ``"passage"``); None for a symmetric encoder."""
        return None

    def role_prompts(self) -> dict[str, str]:
        """``{"query": prompt, "passage": prompt}`` when queries and documents are encoded differently, else ``{}``."""
        return {}

    def for_role(self, role: str) -> Encoder:
        """The encoder for ``role`` (``"query"``, ``"passage"``; ``"document"`` means ``"passage"``).

        A symmetric encoder (no role prompts) returns itself; see the module docstring.
        """
        check_role(role)
        return self

    # -- identity --------------------------------------------------------------------
    def probe_signature(self) -> list[float]:
        """A few numbers summarising the encoder's vectors of :data:`PROBE_SENTENCES`.

        Unit-normalised probe vectors, projected with a fixed seeded Gaussian matrix
        to ``_PROBE_DIMS`` numbers each, rounded. Computed once per encoder object.
        """
        sig = self.__dict__.get("_probe_signature")
        if sig is None:
            V = np.asarray(self._encode_batch(list(PROBE_SENTENCES)), dtype=np.float64)
            if V.shape != (len(PROBE_SENTENCES), self.dim):
                raise RuntimeError(f"encoder {self.name} returned shape {V.shape} for the probe sentences, "
                                   f"expected {(len(PROBE_SENTENCES), self.dim)}")
            if not np.isfinite(V).all():
                raise ValueError(f"encoder {self.name} gives NaN/inf vectors for the probe sentences")
            norms = np.linalg.norm(V, axis=1)
            V /= np.maximum(norms, 1e-12)[:, None]
            P = np.random.default_rng(20240601).standard_normal((self.dim, _PROBE_DIMS)) / np.sqrt(_PROBE_DIMS)
            # Directions, then norms: a normalising and a non-normalising variant of
            # one model point the same way but are not interchangeable for a map.
            sig = [round(float(v), PROBE_DECIMALS) + 0.0 for v in (V @ P).ravel()]
            sig += [round(float(v), PROBE_DECIMALS) + 0.0 for v in norms]
            self.__dict__["_probe_signature"] = sig
        return list(sig)

    def fingerprint(self) -> str:
        """A short hash identifying this encoder's behaviour (name, dimension, probe vectors).

        Recorded in every artefact; see :func:`check_encoder_identity`. Cached per object.
        """
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            payload = f"{self.dim}|" + ",".join(f"{v:.{PROBE_DECIMALS}f}" for v in self.probe_signature())
            fp = hashlib.sha256(payload.encode()).hexdigest()[:16]
            self.__dict__["_fingerprint"] = fp
        return fp

    def identity(self) -> dict:
        """``{"name", "dim", "fingerprint", "probe"}``: what artefacts record about their encoder."""
        try:
            fp, probe = self.fingerprint(), self.probe_signature()
        except Exception as e:  # a custom function that cannot encode the probes (e.g. a lookup table)
            import warnings

            warnings.warn(f"encoder {self.name!r} cannot encode the probe sentences ({type(e).__name__}: {e}); "
                          "its artefacts record name and dimension only", RuntimeWarning, stacklevel=2)
            return {"name": self.name, "dim": int(self.dim)}
        return {"name": self.name, "dim": int(self.dim), "fingerprint": fp, "probe": probe}

    # Writing shards is the scale layer's job (langalign.scale.encode_to takes the encoder): an
    # encoder knows nothing of shards, so this module imports nothing from langalign.scale. The
    # old method name stays as a pointer so that old code fails with the fix in the message.
    @property
    def encode_to(self) -> NoReturn:
        """Removed: use ``langalign.scale.encode_to(encoder, path, texts)``."""
        raise AttributeError("Encoder.encode_to(path, texts) moved out of the encoder: call "
                             "langalign.scale.encode_to(encoder, path, texts) (same keywords)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def length_order(texts: list[str]) -> np.ndarray:
    """Indices of ``texts``, longest first (ties keep their order): characters stand in for tokens."""
    return np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")


ROLES = ("query", "passage")
ROLE_ALIASES = {"query": "query", "passage": "passage", "document": "passage"}


def check_role(role: str) -> str:
    """``role`` as ``"query"`` or ``"passage"`` (``"document"`` is ``"passage"``); anything else is a ValueError."""
    if not isinstance(role, str) or role.strip().lower() not in ROLE_ALIASES:
        raise ValueError(f"role must be 'query' or 'passage' (alias 'document'), got {role!r}")
    return ROLE_ALIASES[role.strip().lower()]
