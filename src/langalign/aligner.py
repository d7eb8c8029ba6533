"""LangAlign: two frozen encoders and the maps between their spaces.

``to_target`` is the paper's forward LangAlign (English -> target-language
space); ``to_source`` is Rev-LangAlign (target -> English space). Both maps are
fitted from the same parallel pairs.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import MAX_DIM, check_int_param, check_matrix, check_pairs, check_texts
from .artefacts import TensorSpec, add_prefix, load_artefact, prefix_spec, save_artefact, split_prefix
from .domain_shift import FALLBACKS, domain_from_state, domain_summary, map_trust
from .encoder_identity import check_encoder_identity
from .encoders import Encoder, load_encoder, looks_like_path
from .errors import ArtefactError, EncoderMismatchError
from .mappers import BaseMapper, make_mapper, mapper_config_tensors, mapper_from_state
from .weights import bridge_pair_weight, check_sample_weight, check_weighted_rows

KIND = "aligner"
# fit_shards scores on at most this many held-out pairs (memory and time stay bounded).
MAX_SHARD_HELD_OUT = 10_000
# fit_bridge(mapper="default") fits this map (see mappers.MAPPER_NAMES["bridge"]: a residual MLP,
# 2 x 1024). Chosen on dev splits (bench/english_bridge.py, 202k English-pool sentences): over
# ridge it adds 0.02-0.03 top-1 retention with CSLS on STS-B dev in each of ko/ja/zh (0.07 with
# cosine) and 0.8 on SIB-200 CV, and gives up 0.4 on sentiment and 0.8 macro-F1 on NLI dev;
# it fits in ~5 minutes per direction on 202k pairs (2 CPU cores) where ridge takes 4 s.
BRIDGE_MAPPER = "bridge"


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
        ``scores_`` and in the saved config): a number in [0, 1); 0 disables it.
        Checked by ``fit``; a split that leaves fewer than 2 pairs to fit on is refused.
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
        # Identities ({name, dim, fingerprint, probe}) recorded in a loaded artefact;
        # an encoder is checked against them the first time it is used (see _checked).
        self._recorded: dict[str, dict | None] = {"source": None, "target": None}
        self._verified: set[str] = set()
        self._from_artefact = False
        self._explicit: set[str] = set()  # sides whose encoder the user named when loading (paths allowed)
        self.force = False
        self.forward_: BaseMapper | None = None
        self.reverse_: BaseMapper | None = None
        self.scores_: dict[str, Any] = {}
        self.training_: dict[str, Any] = {}
        # Where the maps' training inputs lie (per side: mean vector, total variance, count),
        # so unlabelled new inputs can be checked against it (domain_shift / adapt).
        self.domain_: dict[str, dict[str, Any]] | None = None
        # direction -> {"trust", "fallback", ...}: set by adapt(); maps are blended by trust.
        self.adapted_: dict[str, dict[str, Any]] = {}

    # -- encoders ------------------------------------------------------------------
    @property
    def source_encoder(self) -> Encoder:
        if not isinstance(self._src, Encoder):
            self._src = self._load_recorded(self._src, "source")
        return self._checked(self._src, "source")

    @property
    def target_encoder(self) -> Encoder:
        if not isinstance(self._tgt, Encoder):
            self._tgt = self._load_recorded(self._tgt, "target")
        return self._checked(self._tgt, "target")

    def _load_recorded(self, name: str | None, side: str) -> Encoder:
        if name is None:
            raise ValueError(f"this aligner records no {side} encoder (it was fitted from precomputed embeddings "
                             f"without one being named); pass vectors instead of texts, or name the encoder that "
                             f"made them ({side}_encoder=...; CLI: --{side}-encoder NAME)")
        if self._from_artefact and side not in self._explicit and looks_like_path(name):
            # A name read from a config must never make us load (and run) a model from
            # an arbitrary local path: the user names such an encoder explicitly.
            raise ArtefactError(f"the artefact records its {side} encoder as the local path {name!r}; it is not "
                                f"loaded from a path written in a config. Pass the encoder explicitly "
                                f"({side}_encoder=... ; CLI: --{side}-encoder PATH)")
        # A name read from a config never makes us download a model either (only bundled or cached ones load).
        return load_encoder(name, allow_download=not self._from_artefact)

    def _checked(self, enc: Encoder, side: str) -> Encoder:
        """Compare ``enc`` with the identity recorded in the artefact, once (lazily: it encodes probes)."""
        if side not in self._verified:
            check_encoder_identity(self._recorded[side], enc, f"this aligner's {side} side", force=self.force)
            self._verified.add(side)
        return enc

    def encoder_identity(self, side: str) -> dict:
        """``{name, dim, fingerprint, probe}`` of one side, for saving.

        From the encoder object when it is loaded (computing its fingerprint once),
        else as recorded in the artefact this aligner was loaded from, else the name
        and dimension only (no ``fingerprint`` key: fitted from embeddings alone).
        """
        enc = self._src if side == "source" else self._tgt
        fwd = self._require("forward")
        dim = fwd.d_in_ if side == "source" else fwd.d_out_
        if isinstance(enc, Encoder):
            return enc.identity()
        rec = self._recorded.get(side)
        if isinstance(rec, dict) and rec.get("name") == enc:
            return dict(rec)
        return {"name": enc, "dim": int(dim)}  # no fingerprint: fitted from embeddings alone

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
    def fit(self, source_texts: Sequence[str], target_texts: Sequence[str], show_progress: bool | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False) -> LangAlign:
        """Fit from parallel texts: ``source_texts[i]`` translates to ``target_texts[i]``.

        With a multilingual target encoder, ``fit(english, english)`` fits a
        two-encoder bridge from English text alone with this aligner's mapper;
        :meth:`fit_bridge` does the same with the bridge's default map (see the README).
        """
        source_texts = check_texts(source_texts, "source texts")
        target_texts = check_texts(target_texts, "target texts")
        if len(source_texts) != len(target_texts):
            raise ValueError(f"source and target texts differ in length: {len(source_texts)} != {len(target_texts)}")
        X = self.encode_source(source_texts, show_progress)
        Y = self.encode_target(target_texts, show_progress)
        return self.fit_embeddings(X, Y, checkpoint_dir=checkpoint_dir, resume=resume)

    def fit_bridge(self, english_texts: Sequence[str], parallel: tuple[Sequence[str], Sequence[str]] | None = None,
                   pair_weight: int | str = "auto", show_progress: bool | None = None,
                   checkpoint_dir: str | Path | None = None, resume: bool = False) -> LangAlign:
        """A two-encoder bridge from English text, plus parallel pairs when there are some.

        Every English sentence is a pair with itself (source encoder on one side,
        target encoder on the other): ``fit_bridge(english)`` is ``fit(english, english)``
        with the bridge's map.
        ``parallel=(english, translations)`` adds pairs whose target side is the
        translation; each counts ``pair_weight`` times (``"auto"``: enough copies for
        the pairs to make up :data:`~langalign.weights.BRIDGE_PAIR_SHARE` of the fit, at least 1), so a few
        hundred in-domain pairs are not drowned by a large pool. With
        ``mapper="default"`` the maps are :data:`BRIDGE_MAPPER` (the residual MLP chosen
        for the bridge on dev splits); any other mapper is used as given. Recorded in
        ``training_["bridge"]``.
        """
        english = check_texts(english_texts, "English texts")
        par_src: list[str] = []
        par_tgt: list[str] = []
        if parallel is not None:
            if not (isinstance(parallel, tuple | list) and len(parallel) == 2):
                raise ValueError("parallel must be a pair (english, translations) of equal-length text lists")
            par_src = check_texts(parallel[0], "parallel source texts")
            par_tgt = check_texts(parallel[1], "parallel target texts")
            if len(par_src) != len(par_tgt):
                raise ValueError(f"parallel source and target texts differ in length: {len(par_src)} != "
                                 f"{len(par_tgt)}")
        k = bridge_pair_weight(len(english), len(par_src), pair_weight)
        check_weighted_rows(len(english), len(par_src), k)
        X = self.encode_source(english + par_src, show_progress)
        Y = self.encode_target(english + par_tgt, show_progress)
        weights = np.concatenate([np.ones(len(english), np.int64), np.full(len(par_src), k, np.int64)])
        chosen = BRIDGE_MAPPER if isinstance(self.mapper, str) and self.mapper == "default" else self.mapper
        self._fit_arrays(X, Y, chosen, checkpoint_dir, resume, weights if par_src and k != 1 else None)
        self.training_["bridge"] = {"english": len(english), "parallel": len(par_src), "pair_weight": int(k),
                                    "pair_weight_rule": pair_weight if isinstance(pair_weight, str) else "given",
                                    "mapper": chosen if isinstance(chosen, str) else type(chosen).__name__}
        return self

    def fit_embeddings(self, X: Any, Y: Any, checkpoint_dir: str | Path | None = None,
                       resume: bool = False, sample_weight: Any = None) -> LangAlign:
        """Fit from arrays: rows of ``X`` (source space) pair with rows of ``Y`` (target space).

        ``checkpoint_dir``/``resume`` apply to neural mappers (see
        :meth:`~langalign.mappers.neural.MLPMapper.fit`): each direction checkpoints
        every epoch under ``checkpoint_dir/forward`` and ``checkpoint_dir/reverse``.
        ``sample_weight``: whole numbers >= 0, one per row; a row of weight k counts as
        k copies of it in the fit (0 leaves it out). The held-out split is drawn over
        distinct rows first, so no copy of a held-out pair is fitted on.
        """
        return self._fit_arrays(X, Y, self.mapper, checkpoint_dir, resume, sample_weight)

    def _fit_arrays(self, X: Any, Y: Any, mapper: str | BaseMapper, checkpoint_dir: str | Path | None,
                    resume: bool, sample_weight: Any) -> LangAlign:
        """:meth:`fit_embeddings` with ``mapper`` (a name or an unfitted instance) for both directions."""
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        check_pairs(X, Y)
        self._check_dims(X.shape[1], Y.shape[1])
        n = X.shape[0]
        weights = check_sample_weight(sample_weight, n)
        frac = check_held_out(self.held_out)
        n_held = int(round(n * frac)) if (frac and n >= 50) else 0
        _check_split(n, n_held, frac)
        perm = np.random.default_rng(self.seed).permutation(n)
        held, train = perm[:n_held], perm[n_held:]
        if weights is not None:
            train = np.repeat(train, weights[train])
            if len(train) < 2:
                raise ValueError(f"sample_weight leaves {len(train)} training rows; need at least 2")
        Xtr, Ytr = X[train], Y[train]
        self.forward_ = _fit_mapper(make_mapper(mapper, **self.mapper_params), Xtr, Ytr, checkpoint_dir,
                                    "forward", resume)
        self.reverse_ = (_fit_mapper(make_mapper(mapper, **self.mapper_params), Ytr, Xtr, checkpoint_dir,
                                     "reverse", resume) if self.reverse else None)
        self.training_ = {
            "n_pairs": int(n), "n_train": int(len(train)), "n_held_out": int(n_held), "seed": self.seed,
            "fitted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        if weights is not None:
            self.training_["weighted"] = True
        self.domain_ = {"source": domain_summary(Xtr), "target": domain_summary(Ytr)}
        self.adapted_ = {}
        self.scores_ = self.score_embeddings(X[held], Y[held]) if n_held else {}
        return self

    def fit_shards(self, source_dir: str | Path, target_dir: str | Path, checkpoint_dir: str | Path | None = None,
                   resume: bool = False, verify: bool = False, shuffle_rows: int | None = None) -> LangAlign:
        """Fit from two row-aligned shard folders (``langalign encode`` / :func:`langalign.scale.encode_to`).

        Memory stays bounded whatever the number of pairs: linear and Procrustes maps
        are fitted exactly from sufficient statistics, neural maps from streamed
        minibatches (``shuffle_rows``, ``checkpoint_dir`` and ``resume`` as in
        :func:`~langalign.scale.sharded_fit.fit_neural_from_shards`). The held-out pairs are
        chosen by a hash of the row index (:func:`~langalign.scale.sharded_fit.held_out_mask`)
        and capped at :data:`MAX_SHARD_HELD_OUT` rows, so scoring stays bounded too.
        The shard manifests must name this aligner's encoders (``force=True`` on the
        aligner downgrades a name mismatch to a warning).
        """
        from .mappers.neural import is_neural
        from .scale.sharded_fit import count_held_out, fit_mapper_from_shards, held_out_mask
        from .scale.streaming import iter_pair_chunks, read_pair_manifests

        mx, my = read_pair_manifests(source_dir, target_dir)
        # No encoder named: the shards' manifests say which one wrote them (provenance, not a guess).
        if self._src is None and isinstance(mx.get("encoder"), str):
            self._src = mx["encoder"]
        if self._tgt is None and isinstance(my.get("encoder"), str):
            self._tgt = my["encoder"]
        n = int(mx.get("count", 0))
        if n < 2:
            raise ValueError(f"need at least 2 pairs to fit, got {n}")
        self._check_dims(int(mx["dim"]), int(my["dim"]))
        self._check_shard_encoder(mx, "source", source_dir)
        self._check_shard_encoder(my, "target", target_dir)
        held_out = check_held_out(self.held_out)
        frac = min(held_out, MAX_SHARD_HELD_OUT / n) if (held_out and n >= 50) else 0.0
        n_held = count_held_out(n, frac)
        _check_split(n, n_held, held_out)
        kw: dict[str, Any] = {"verify": verify, "held_out": frac}
        for direction, (a, b) in (("forward", (source_dir, target_dir)), ("reverse", (target_dir, source_dir))):
            if direction == "reverse" and not self.reverse:
                self.reverse_ = None
                continue
            mapper = make_mapper(self.mapper, **self.mapper_params)
            extra: dict[str, Any] = {}
            if is_neural(mapper):
                extra = {"shuffle_rows": shuffle_rows}
                if checkpoint_dir is not None:  # as in fit_embeddings: resume needs the folder
                    extra.update(checkpoint_dir=Path(checkpoint_dir) / direction, resume=resume)
            fitted = fit_mapper_from_shards(mapper, a, b, **kw, **extra)
            setattr(self, f"{direction}_", fitted)
        self.domain_ = None  # not recorded for shard fits (it would take another pass over the shards)
        self.adapted_ = {}
        self.training_ = {
            "n_pairs": n, "n_train": n - n_held, "n_held_out": n_held, "data": "shards",
            "held_out_rows": "hash of the row index (langalign.scale.sharded_fit.held_out_mask)" if n_held else None,
            "fitted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        self.scores_ = {}
        if n_held:
            xs, ys, pos = [], [], 0
            for X, Y in iter_pair_chunks(source_dir, target_dir, verify=verify):
                m = held_out_mask(pos, X.shape[0], frac)
                pos += X.shape[0]
                xs.append(np.array(X[m]))
                ys.append(np.array(Y[m]))
            self.scores_ = self.score_embeddings(np.concatenate(xs), np.concatenate(ys))
        return self

    def _check_shard_encoder(self, manifest: dict, side: str, path: str | Path) -> None:
        """The encoder a shard folder was written with must be this side's encoder."""
        from .encoders import canonical_encoder_name

        enc = self._src if side == "source" else self._tgt
        name = enc.name if isinstance(enc, Encoder) else enc
        recorded = manifest.get("encoder")
        if not (isinstance(name, str) and isinstance(recorded, str)):
            return
        problem = None
        if canonical_encoder_name(name) != canonical_encoder_name(recorded):
            problem = f"{path} holds vectors of encoder {recorded!r}, but this aligner's {side} encoder is {name!r}"
        elif isinstance(enc, Encoder) and manifest.get("fingerprint"):
            try:
                mine = enc.fingerprint()
            except Exception:  # an encoder that cannot encode the probe sentences: names must do
                mine = None
            if mine is not None and mine != manifest["fingerprint"]:
                problem = (f"{path} was written by a different model or version of {recorded!r} "
                           "(the probe fingerprints differ)")
        if problem is None:
            return
        if self.force:
            import warnings

            warnings.warn(problem + " (ignored: force=True)", RuntimeWarning, stacklevel=3)
            return
        raise EncoderMismatchError(problem + "; vectors from two different encoders do not mix. Encode with the "
                                   "aligner's encoder, or set force=True if they are equivalent")

    def _check_dims(self, dx: int, dy: int) -> None:
        for enc, d, side in ((self._src, dx, "source"), (self._tgt, dy, "target")):
            if isinstance(enc, Encoder) and enc.dim != d:
                raise ValueError(f"{side} embeddings have dimension {d} but the {side} encoder {enc.name!r} "
                                 f"gives {enc.dim}")

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
        return self._blend("forward", X, m.transform(X))

    def to_source(self, texts_or_array: Any, show_progress: bool | None = None) -> np.ndarray:
        """Rev-LangAlign: target-language texts (or target vectors) -> source space."""
        m = self._require("reverse")
        Y = self._as_vectors(texts_or_array, "target", show_progress)
        return self._blend("reverse", Y, m.transform(Y))

    # -- domain shift ----------------------------------------------------------------
    def domain_shift(self, texts_or_array: Any, side: str = "target") -> dict[str, Any]:
        """How far unlabelled inputs lie from the inputs the maps were fitted on; needs no labels.

        ``side="target"``: target-language inputs of :meth:`to_source` (Rev-LangAlign);
        ``"source"``: English inputs of :meth:`to_target`. ``shift`` is the squared
        distance between the mean of the new vectors and the mean of the training
        vectors of that side, divided by the training vectors' total variance, less the
        part expected from sampling alone (``noise`` = 1/n_new + 1/n_train). Inputs from
        the pairs' own domain score near 0; another domain scores about 0.1 or more.
        ``trust`` is the weight :meth:`adapt` would give the map (1 = all of it).
        """
        if side not in ("source", "target"):
            raise ValueError(f"side must be 'source' or 'target', got {side!r}")
        self._require("forward")
        if not self.domain_:
            raise ValueError("this aligner has no record of its training inputs (fitted from shards, or saved "
                             "by an older langalign); refit it with fit()/fit_embeddings() to check domain shift")
        ref = self.domain_[side]
        V = self._as_vectors(texts_or_array, side, None)
        if V.shape[0] < 2:
            raise ValueError(f"need at least 2 unlabelled inputs to measure a domain shift, got {V.shape[0]}")
        raw = float(np.sum((V.astype(np.float64).mean(0) - ref["mean"]) ** 2) / max(ref["var"], 1e-12))
        noise = 1.0 / V.shape[0] + 1.0 / max(int(ref["n"]), 1)
        shift = max(0.0, raw - noise)
        return {"side": side, "n": int(V.shape[0]), "mean_shift": raw, "noise": noise, "shift": shift,
                "trust": map_trust(shift)}

    def adapt(self, texts_or_array: Any, side: str = "target", fallback: str = "identity") -> LangAlign:
        """Fall back toward ``fallback`` when unlabelled inputs lie outside the pairs' domain.

        Measures :meth:`domain_shift` of ``texts_or_array`` (unlabelled texts or vectors
        of the domain the aligner will serve) and from then on blends the map taking
        ``side`` inputs: ``trust * map(x) + (1 - trust) * fallback(x)``, with
        ``fallback="identity"`` (``x`` itself: the zero-shot) or ``"shift"`` (``x`` plus
        the difference of the training means of the two sides). A map fitted on
        LibreOffice manuals is kept for manuals and dropped for news or reviews, where
        it loses accuracy. Needs one encoder on both sides (equal dimensions). Stored
        in ``adapted_`` and in the saved artefact; returns self.
        """
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        fwd = self._require("forward")
        if fwd.d_in_ != fwd.d_out_:
            raise ValueError(f"adapt() falls back toward the identity, which needs equal dimensions; this aligner "
                             f"maps {fwd.d_in_} -> {fwd.d_out_}")
        direction = "reverse" if side == "target" else "forward"
        self._require(direction)
        report = self.domain_shift(texts_or_array, side)
        self.adapted_[direction] = {**report, "fallback": fallback}
        return self

    def _blend(self, direction: str, X: np.ndarray, mapped: np.ndarray) -> np.ndarray:
        a = self.adapted_.get(direction)
        if not a or a["trust"] >= 1.0:
            return mapped
        base = X.astype(np.float32)
        if a["fallback"] == "shift":
            assert self.domain_ is not None  # a shift fallback is only ever recorded with domain means
            src, dst = ("target", "source") if direction == "reverse" else ("source", "target")
            base = base + (self.domain_[dst]["mean"] - self.domain_[src]["mean"]).astype(np.float32)
        t = np.float32(a["trust"])
        return (t * mapped + (1 - t) * base).astype(np.float32)

    def _as_vectors(self, data: Any, side: str, show_progress: bool | None) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.dtype.kind in "fiu":
            return self._check_vectors(data, side)
        if isinstance(data, (str, bytes)) or data is None:
            check_texts(data, f"{side} texts")  # raises the clear error
        items = list(data)
        if items and not isinstance(items[0], str):
            return self._check_vectors(np.asarray(items, dtype=np.float32), side)
        encode = self.encode_source if side == "source" else self.encode_target
        return encode(items, show_progress)

    def _check_vectors(self, V: np.ndarray, side: str) -> np.ndarray:
        """Vectors given directly: same NaN/shape checks as texts, and a dimension naming the encoder."""
        V = check_matrix(V, f"{side} vectors")
        fwd = self._require("forward")
        dim = fwd.d_in_ if side == "source" else fwd.d_out_
        if V.shape[1] != dim:
            name = self.source_name if side == "source" else self.target_name
            made = (f"encoder is {name!r} ({dim}-d)" if name is not None else
                    f"side was fitted on {dim}-d precomputed embeddings (encoder not recorded)")
            raise EncoderMismatchError(
                f"{side} vectors have dimension {V.shape[1]}, but this aligner's {side} {made}; these vectors "
                "come from another encoder")
        return V

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
            "source_encoder": self.encoder_identity("source"),
            "target_encoder": self.encoder_identity("target"),
            "mapper": self.mapper if isinstance(self.mapper, str) else type(self.mapper).__name__,
            "mapper_params": self.mapper_params,
            "forward": fwd.get_config(),
            "reverse": self.reverse_.get_config() if self.reverse_ is not None else None,
            "training": self.training_,
            "held_out_scores": self.scores_,
            "domain": ({side: {"var": float(v["var"]), "n": int(v["n"])} for side, v in self.domain_.items()}
                       if self.domain_ else None),
            "adapted": self.adapted_,
        }

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``folder`` atomically.

        ``folder`` must be new, empty, or an aligner saved before (``overwrite=True``:
        any langalign artefact); a folder holding anything else is refused, never
        deleted (:func:`~langalign.artefacts.check_destination`).
        """
        return save_artefact(folder, self.get_config(), self.state_dict(), KIND, overwrite=overwrite)

    @classmethod
    def load(cls, folder: str | Path, source_encoder: Encoder | str | None = None,
             target_encoder: Encoder | str | None = None, force: bool = False) -> LangAlign:
        """Load a saved aligner.

        Encoders are loaded lazily by their recorded names, unless given here. Either
        way, an encoder is checked against the recorded name, dimension and
        fingerprint before its first use (:class:`~langalign.errors.EncoderMismatchError`
        on a mismatch); ``force=True`` downgrades a name/fingerprint mismatch to a warning.
        """
        config, tensors = load_artefact(folder, KIND, expected=lambda c, w: guarded_from_state(
            lambda c2, t2, where: cls.config_tensors(c2, where), w, c, {}))
        return guarded_from_state(cls.from_state, str(Path(folder) / "config.json"), config, tensors,
                                  source_encoder, target_encoder, force=force)

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
                   source_encoder: Encoder | str | None = None, target_encoder: Encoder | str | None = None,
                   where: str = "aligner config", force: bool = False) -> LangAlign:
        """Rebuild from ``get_config()`` and the ``forward.*`` / ``reverse.*`` tensors."""
        cls.config_tensors(config, where)
        src_cfg, tgt_cfg, fwd_cfg = config["source_encoder"], config["target_encoder"], config["forward"]
        forward = mapper_from_state(fwd_cfg, split_prefix(tensors, "forward"), where, "forward")
        reverse = None
        if config.get("reverse"):
            reverse = mapper_from_state(config["reverse"], split_prefix(tensors, "reverse"), where, "reverse")
        for name, m, d_in, d_out in (("forward", forward, src_cfg["dim"], tgt_cfg["dim"]),
                                     ("reverse", reverse, tgt_cfg["dim"], src_cfg["dim"])):
            if m is not None and (m.d_in_, m.d_out_) != (d_in, d_out):
                raise ArtefactError(f"{where}: {name} map is {m.d_in_}->{m.d_out_} "
                                    f"but the encoders are recorded as {src_cfg.get('dim')} and {tgt_cfg.get('dim')}")
        for enc, cfg, side in ((source_encoder, src_cfg, "source"), (target_encoder, tgt_cfg, "target")):
            if isinstance(enc, Encoder) and enc.dim != cfg.get("dim"):
                raise ArtefactError(f"{side} encoder {enc.name!r} gives {enc.dim}-d vectors but the aligner in {where} "
                                    f"was fitted on {cfg.get('name')!r} ({cfg.get('dim')}-d)")
        mapper_name, mapper_params = config.get("mapper", "default"), config.get("mapper_params") or {}
        if not isinstance(mapper_name, str) or not isinstance(mapper_params, dict):
            raise ArtefactError(f"{where}: malformed mapper / mapper_params entries")
        obj = cls(source_encoder or src_cfg.get("name"), target_encoder or tgt_cfg.get("name"),
                  mapper=mapper_name, reverse=reverse is not None, mapper_params=mapper_params)
        obj.forward_, obj.reverse_ = forward, reverse
        obj._recorded = {"source": src_cfg, "target": tgt_cfg}
        obj._from_artefact = True
        obj._explicit = {s for e, s in ((source_encoder, "source"), (target_encoder, "target")) if e is not None}
        obj.force = bool(force)
        # Encoder objects given here are loaded already: check them now (names and
        # recorded strings are checked lazily, on first encode).
        for enc, side in ((source_encoder, "source"), (target_encoder, "target")):
            if isinstance(enc, Encoder):
                obj._checked(enc, side)
        obj.training_ = config.get("training") or {}
        obj.scores_ = config.get("held_out_scores") or {}
        obj.domain_, obj.adapted_ = domain_from_state(config, tensors, forward, where)
        return obj

    @classmethod
    def config_tensors(cls, config: Any, where: str = "aligner config", field: str = "") -> TensorSpec:
        """Validate a saved aligner config; the tensors it implies, for checking the weights header.

        Every value that decides a shape or a size (encoder dims, ``d_in``/``d_out``,
        mapper parameters) is type- and range-checked here, before anything is allocated;
        ``field`` prefixes the names in messages (``aligner`` inside a classifier).
        """
        def f(key: str) -> str:
            return f"{field}.{key}" if field else key

        if not isinstance(config, dict):
            raise ArtefactError(f"{where}: {field or 'the config'} must be a JSON object")
        for key in ("source_encoder", "target_encoder", "forward"):
            if key not in config:
                raise ArtefactError(f"{where} lacks the field {f(key)!r}")
        dims = {}
        for side in ("source", "target"):
            c = config[f"{side}_encoder"]
            if not (isinstance(c, dict) and isinstance(c.get("name"), (str, type(None)))):
                raise ArtefactError(f"{where}: malformed {f(side + '_encoder')} entry {c!r}")
            try:
                dims[side] = check_int_param(f(f"{side}_encoder.dim"), c.get("dim"), 1, MAX_DIM)
            except ValueError as e:
                raise ArtefactError(f"{where}: malformed {f(side + '_encoder')} entry: {e}") from None
        if not isinstance(config["forward"], dict):
            raise ArtefactError(f"{where}: malformed forward mapper entry ({f('forward')})")
        spec = prefix_spec(mapper_config_tensors(config["forward"], where, f("forward")), "forward")
        if config.get("reverse"):
            spec.update(prefix_spec(mapper_config_tensors(config["reverse"], where, f("reverse")), "reverse"))
        if config.get("domain") is not None:  # the training inputs' means (see adapt); checked fully on load
            fwd = config["forward"]  # its d_in / d_out were range-checked by mapper_config_tensors above
            spec["domain.source_mean"] = ((fwd["d_in"],), f"domain, {f('forward')}.d_in")
            spec["domain.target_mean"] = ((fwd["d_out"],), f"domain, {f('forward')}.d_out")
        return spec

    def state_dict(self) -> dict[str, np.ndarray]:
        tensors = add_prefix(self._require("forward").state_dict(), "forward")
        if self.reverse_ is not None:
            tensors.update(add_prefix(self.reverse_.state_dict(), "reverse"))
        if self.domain_:
            tensors.update({f"domain.{side}_mean": np.asarray(v["mean"], dtype=np.float64)
                            for side, v in self.domain_.items()})
        return tensors

    def side_label(self, side: str) -> str:
        """The encoder name of one side for messages; precomputed vectors of no named encoder say so."""
        name = self.source_name if side == "source" else self.target_name
        return name if name is not None else "precomputed embeddings (encoder not recorded)"

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "unfitted"
        return f"LangAlign({self.source_name!r} -> {self.target_name!r}, mapper={self.mapper!r}, {state})"


def check_held_out(value: Any) -> float:
    """``held_out`` as a float, or a ValueError: it is a fraction of the pairs, in [0, 1)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not (0.0 <= float(value) < 1.0):  # NaN fails the comparison too
        shown = value if ok else repr(value)
        raise ValueError(f"held_out must be a fraction of the pairs in [0, 1) (e.g. 0.1 keeps 10% aside to score "
                         f"the maps, 0 keeps none), got {shown}")
    return float(value)


def _check_split(n: int, n_held: int, held_out: float) -> None:
    if n_held and n - n_held < 2:
        raise ValueError(f"held_out={held_out:g} keeps {n_held} of {n} pairs aside and leaves {n - n_held} to fit "
                         "on; lower held_out")


def _fit_mapper(mapper: BaseMapper, X: np.ndarray, Y: np.ndarray, checkpoint_dir: str | Path | None,
                direction: str, resume: bool) -> BaseMapper:
    from .mappers.neural import is_neural

    if checkpoint_dir is not None and is_neural(mapper):
        return mapper.fit(X, Y, checkpoint_dir=Path(checkpoint_dir) / direction, resume=resume)
    return mapper.fit(X, Y)  # closed-form mappers finish in seconds: nothing to checkpoint


# Exceptions a malformed (but parseable) config can provoke deep in a rebuild; they
# become one ArtefactError naming the file instead of escaping as a bare KeyError.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RuntimeError)


def guarded_from_state(build: Any, where: str, config: dict, tensors: dict, *args: Any, **kw: Any) -> Any:
    try:
        return build(config, tensors, *args, where=where, **kw)
    except (ArtefactError, EncoderMismatchError):
        raise
    except _MALFORMED as e:
        raise ArtefactError(f"{where}: malformed artefact ({type(e).__name__}: {e})") from None


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
