"""LangAlign: two frozen encoders and the maps between their spaces.

``to_target`` is the paper's forward LangAlign (English -> target-language
space); ``to_source`` is Rev-LangAlign (target -> English space). Both maps are
fitted from the same parallel pairs.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._validation import check_matrix, check_pairs, check_texts
from .artefacts import add_prefix, load_artefact, save_artefact, split_prefix
from .encoders import Encoder, load_encoder
from .errors import ArtefactError
from .mappers import BaseMapper, make_mapper, mapper_from_state

KIND = "aligner"


class LangAlign:
    """Align a source encoder's space (usually English) with a target encoder's space.

    Parameters
    ----------
    source_encoder, target_encoder:
        :class:`~langalign.encoders.Encoder` objects or names for
        :func:`~langalign.encoders.load_encoder`. The same encoder on both sides is
        the paper's setting; two different encoders (e.g. ``minilm`` ->
        ``use-multilingual``) also work. Names are loaded lazily, on first use.
    mapper:
        a short name (``"default"``, ``"linear"``, ``"procrustes"``, ``"centering"``,
        ``"mlp"``, ``"autoencoder"``, ``"mlp-paper"``, ...) or an unfitted mapper instance.
    reverse:
        also fit the target -> source map (Rev-LangAlign). Default True.
    held_out:
        fraction of the pairs kept aside to score the fitted maps (recorded in
        ``scores_`` and in the saved config). 0 disables it.
    """

    def __init__(self, source_encoder: Encoder | str | None, target_encoder: Encoder | str | None = None,
                 mapper: str | BaseMapper = "default", reverse: bool = True, mapper_params: dict | None = None,
                 held_out: float = 0.1, seed: int = 0):
        if target_encoder is None:
            target_encoder = source_encoder
        self._src = source_encoder
        self._tgt = target_encoder
        self.mapper = mapper
        self.reverse = reverse
        self.mapper_params = dict(mapper_params or {})
        self.held_out = held_out
        self.seed = seed
        self.forward_: BaseMapper | None = None
        self.reverse_: BaseMapper | None = None
        self.scores_: dict[str, Any] = {}
        self.training_: dict[str, Any] = {}

    # -- encoders ------------------------------------------------------------------
    @property
    def source_encoder(self) -> Encoder:
        if not isinstance(self._src, Encoder):
            if self._src is None:
                raise ValueError("this aligner has no source encoder; pass embeddings instead of texts")
            self._src = load_encoder(self._src)
        return self._src

    @property
    def target_encoder(self) -> Encoder:
        if not isinstance(self._tgt, Encoder):
            if self._tgt is None:
                raise ValueError("this aligner has no target encoder; pass embeddings instead of texts")
            self._tgt = load_encoder(self._tgt)
        return self._tgt

    @property
    def source_name(self) -> str | None:
        return self._src.name if isinstance(self._src, Encoder) else self._src

    @property
    def target_name(self) -> str | None:
        return self._tgt.name if isinstance(self._tgt, Encoder) else self._tgt

    def encode_source(self, texts: Sequence[str], show_progress: bool | None = None) -> np.ndarray:
        return self.source_encoder.encode(check_texts(texts, "source texts"), show_progress=show_progress)

    def encode_target(self, texts: Sequence[str], show_progress: bool | None = None) -> np.ndarray:
        return self.target_encoder.encode(check_texts(texts, "target texts"), show_progress=show_progress)

    # -- fitting ---------------------------------------------------------------------
    def fit(self, source_texts: Sequence[str], target_texts: Sequence[str], show_progress: bool | None = None) -> "LangAlign":
        """Fit from parallel texts: ``source_texts[i]`` translates to ``target_texts[i]``.

        With a multilingual target encoder, ``fit(english, english)`` fits a
        two-encoder bridge from English text alone (see the README).
        """
        source_texts = check_texts(source_texts, "source texts")
        target_texts = check_texts(target_texts, "target texts")
        if len(source_texts) != len(target_texts):
            raise ValueError(f"source and target texts differ in length: {len(source_texts)} != {len(target_texts)}")
        X = self.encode_source(source_texts, show_progress)
        Y = self.encode_target(target_texts, show_progress)
        return self.fit_embeddings(X, Y)

    def fit_embeddings(self, X: Any, Y: Any) -> "LangAlign":
        """Fit from arrays: rows of ``X`` (source space) pair with rows of ``Y`` (target space)."""
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        self._check_dims(X.shape[1], Y.shape[1])
        n = X.shape[0]
        n_held = int(round(n * self.held_out)) if (self.held_out and n >= 50) else 0
        perm = np.random.default_rng(self.seed).permutation(n)
        held, train = perm[:n_held], perm[n_held:]
        Xtr, Ytr = X[train], Y[train]
        self.forward_ = make_mapper(self.mapper, **self.mapper_params).fit(Xtr, Ytr)
        self.reverse_ = make_mapper(self.mapper, **self.mapper_params).fit(Ytr, Xtr) if self.reverse else None
        self.training_ = {
            "n_pairs": int(n), "n_train": int(len(train)), "n_held_out": int(n_held), "seed": self.seed,
            "fitted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        self.scores_ = self.score_embeddings(X[held], Y[held]) if n_held else {}
        return self

    def _check_dims(self, dx: int, dy: int) -> None:
        for enc, d, side in ((self._src, dx, "source"), (self._tgt, dy, "target")):
            if isinstance(enc, Encoder) and enc.dim != d:
                raise ValueError(f"{side} embeddings have dimension {d} but the {side} encoder {enc.name!r} gives {enc.dim}")

    @property
    def is_fitted(self) -> bool:
        return self.forward_ is not None

    def _require(self, which: str) -> BaseMapper:
        m = self.forward_ if which == "forward" else self.reverse_
        if m is None:
            if not self.is_fitted:
                raise ValueError("this LangAlign is not fitted yet; call fit(...) or fit_embeddings(...) first")
            raise ValueError("this LangAlign was fitted with reverse=False; it has no target -> source map")
        return m

    # -- mapping ---------------------------------------------------------------------
    def to_target(self, texts_or_array: Any, show_progress: bool | None = None) -> np.ndarray:
        """Forward LangAlign: source-language texts (or source vectors) -> target space."""
        m = self._require("forward")
        X = self._as_vectors(texts_or_array, "source", show_progress)
        return m.transform(X)

    def to_source(self, texts_or_array: Any, show_progress: bool | None = None) -> np.ndarray:
        """Rev-LangAlign: target-language texts (or target vectors) -> source space."""
        m = self._require("reverse")
        Y = self._as_vectors(texts_or_array, "target", show_progress)
        return m.transform(Y)

    def _as_vectors(self, data: Any, side: str, show_progress: bool | None) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.dtype.kind in "fiu":
            return data
        if isinstance(data, (str, bytes)) or data is None:
            check_texts(data, f"{side} texts")  # raises the clear error
        items = list(data)
        if items and not isinstance(items[0], str):
            return np.asarray(items, dtype=np.float32)
        return self.encode_source(items, show_progress) if side == "source" else self.encode_target(items, show_progress)

    # -- scoring ---------------------------------------------------------------------
    def score(self, source_texts: Sequence[str], target_texts: Sequence[str]) -> dict[str, Any]:
        """Alignment quality on parallel texts: MSE, mean cosine, top-1 retrieval both ways."""
        X = self.encode_source(source_texts)
        Y = self.encode_target(target_texts)
        return self.score_embeddings(X, Y)

    def score_embeddings(self, X: Any, Y: Any) -> dict[str, Any]:
        X = check_matrix(X, "X")
        Y = check_matrix(Y, "Y")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows: {X.shape[0]} != {Y.shape[0]}")
        out: dict[str, Any] = {"n": int(X.shape[0])}
        if X.shape[0] == 0:
            return out
        fwd = self._require("forward").transform(X)
        out["forward"] = _pair_metrics(fwd, Y)
        if X.shape[1] == Y.shape[1]:
            out["raw"] = _pair_metrics(X, Y)
        if self.reverse_ is not None:
            out["reverse"] = _pair_metrics(self.reverse_.transform(Y), X)
        return out

    # -- saving ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        fwd = self._require("forward")
        return {
            "source_encoder": {"name": self.source_name, "dim": fwd.d_in_},
            "target_encoder": {"name": self.target_name, "dim": fwd.d_out_},
            "mapper": self.mapper if isinstance(self.mapper, str) else type(self.mapper).__name__,
            "mapper_params": self.mapper_params,
            "forward": fwd.get_config(),
            "reverse": self.reverse_.get_config() if self.reverse_ is not None else None,
            "training": self.training_,
            "held_out_scores": self.scores_,
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``folder`` atomically."""
        return save_artefact(folder, self.get_config(), self.state_dict(), KIND)

    @classmethod
    def load(cls, folder: str | Path, source_encoder: Encoder | str | None = None,
             target_encoder: Encoder | str | None = None) -> "LangAlign":
        """Load a saved aligner. Encoders are loaded lazily by their recorded names,
        unless given here (they must then have the recorded dimensions)."""
        config, tensors = load_artefact(folder, KIND)
        return cls.from_state(config, tensors, source_encoder, target_encoder, where=str(Path(folder) / "config.json"))

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
                   source_encoder: Encoder | str | None = None, target_encoder: Encoder | str | None = None,
                   where: str = "aligner config") -> "LangAlign":
        """Rebuild from ``get_config()`` and the ``forward.*`` / ``reverse.*`` tensors."""
        try:
            src_cfg, tgt_cfg = config["source_encoder"], config["target_encoder"]
            fwd_cfg = config["forward"]
        except (KeyError, TypeError) as e:
            raise ArtefactError(f"{where} lacks the field {e}") from None
        forward = mapper_from_state(fwd_cfg, split_prefix(tensors, "forward"))
        reverse = None
        if config.get("reverse"):
            reverse = mapper_from_state(config["reverse"], split_prefix(tensors, "reverse"))
        if forward.d_in_ != src_cfg.get("dim") or forward.d_out_ != tgt_cfg.get("dim"):
            raise ArtefactError(f"{where}: forward map is {forward.d_in_}->{forward.d_out_} "
                                f"but the encoders are recorded as {src_cfg.get('dim')} and {tgt_cfg.get('dim')}")
        for enc, cfg, side in ((source_encoder, src_cfg, "source"), (target_encoder, tgt_cfg, "target")):
            if isinstance(enc, Encoder) and enc.dim != cfg.get("dim"):
                raise ArtefactError(f"{side} encoder {enc.name!r} gives {enc.dim}-d vectors but the aligner in {where} "
                                    f"was fitted on {cfg.get('name')!r} ({cfg.get('dim')}-d)")
        obj = cls(source_encoder or src_cfg.get("name"), target_encoder or tgt_cfg.get("name"),
                  mapper=config.get("mapper", "default"), reverse=reverse is not None,
                  mapper_params=config.get("mapper_params") or {})
        obj.forward_, obj.reverse_ = forward, reverse
        obj.training_ = config.get("training") or {}
        obj.scores_ = config.get("held_out_scores") or {}
        return obj

    def state_dict(self) -> dict[str, np.ndarray]:
        tensors = add_prefix(self._require("forward").state_dict(), "forward")
        if self.reverse_ is not None:
            tensors.update(add_prefix(self.reverse_.state_dict(), "reverse"))
        return tensors

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "unfitted"
        return f"LangAlign({self.source_name!r} -> {self.target_name!r}, mapper={self.mapper!r}, {state})"


def _pair_metrics(P: np.ndarray, Y: np.ndarray, chunk: int = 4096) -> dict[str, float]:
    """MSE, mean row cosine and top-1 retrieval accuracy (P[i] should find Y[i])."""
    Pn = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
    Yn = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
    hits = 0
    for s in range(0, len(Pn), chunk):  # chunked: never the full n x n matrix
        sims = Pn[s : s + chunk] @ Yn.T
        hits += int((sims.argmax(1) == np.arange(s, s + len(sims))).sum())
    return {
        "mse": float(np.mean((P - Y) ** 2)),
        "mean_cosine": float(np.mean(np.sum(Pn * Yn, axis=1))),
        "top1": hits / len(P),
    }
