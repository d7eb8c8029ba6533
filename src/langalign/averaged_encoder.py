"""Several roads into one vector space, averaged: a query encoder made of a distilled student and a bridge.

An English system (a MiniLM head, a MiniLM vector index) can read Korean through more than one route: an encoder
distilled into its space (``langalign tune --mode distil``), or a bridge, an aligner whose Rev-LangAlign map takes
another encoder's target-language vectors into it (``LangAlign("minilm", "use-multilingual").fit_bridge(...)``).
Routes built on different multilingual models make different mistakes, so the mean of their unit vectors ranks
better than either alone (measured in ``bench/distil_bridge.py``). :class:`AveragedEncoder` is that mean as an
:class:`~langalign.encoders.Encoder`: ``SearchIndex.search(..., encoder=avg)`` and
``clf.predict_embeddings(avg.encode(texts))`` take it like any encoder whose vectors live in the index's space.

Saved (:meth:`AveragedEncoder.save`), it is a folder like any langalign artefact: ``config.json`` (the routes,
their encoders' identities, the weights, the shared space) and ``model.safetensors`` (the bridges' maps), plus a
copy of each tuned route encoder in ``encoder_<i>/``, so the folder is complete on another machine.
``load_encoder(folder)`` loads it, so ``langalign serve --encoder FOLDER`` and ``langalign search --query-encoder
FOLDER`` take it by its path.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ._io import atomic_dir
from ._version import ARTEFACT_FORMAT_VERSION, __version__
from .aligner import LangAlign, guarded_from_state
from .artefacts import (CONFIG_NAME, WEIGHTS_NAME, TensorSpec, artefact_kind, save_error, add_prefix,
                        check_destination, check_destination_name, load_artefact, prefix_spec, split_prefix)
from .encoder_base import Encoder
from .encoder_identity import check_encoder_identity, describe_identity, safe_identity, space_problem, vector_space
from .encoders import FOLDER_ENCODER_KINDS, TUNING_METADATA, canonical_encoder_name, load_encoder
from .errors import ArtefactError, EncoderMismatchError, EncoderNotAvailableError

KIND = "averaged-encoder"
MAX_ROUTES = 16
ROUTE_TYPES = ("encoder", "tuned-encoder", "aligner")


def route_folder(i: int) -> str:
    """Where route ``i``'s tuned encoder is copied inside a saved folder (fixed by position: a path written in a
    config is never opened)."""
    return f"encoder_{i}"


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

    # -- saving and loading ---------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """What ``config.json`` records: the routes (an encoder's identity, or an aligner's config), the weights
        and the shared space."""
        routes = []
        for r in self.routes:
            if isinstance(r, LangAlign):
                routes.append({"type": "aligner", "aligner": r.get_config()})
            else:
                tuned = isinstance(getattr(r, "tuning", None), dict) and getattr(r, "folder", None)
                routes.append({"type": "tuned-encoder" if tuned else "encoder", "encoder": safe_identity(r)})
        return {"name": self.name, "dim": int(self.dim), "weights": list(self.weights),
                "vector_space": dict(self.vector_space_), "identity": safe_identity(self), "routes": routes}

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the folder atomically: ``config.json``, ``model.safetensors`` (the bridges' maps, ``route_<i>.*``)
        and a copy of each tuned route encoder in ``encoder_<i>/`` (bundled encoders are recorded by name).

        ``folder`` must be new, empty, or an averaged encoder saved before (``overwrite=True``: any langalign
        artefact); a folder holding anything else is refused and left as it is.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import save_file

        _check_destination(folder, overwrite)
        config = {"format": "langalign", "format_version": ARTEFACT_FORMAT_VERSION, "kind": KIND,
                  "langalign_version": __version__, **self.get_config()}
        tensors: dict[str, np.ndarray] = {}
        for i, r in enumerate(self.routes):
            if isinstance(r, LangAlign):
                tensors.update(add_prefix(r.state_dict(), f"route_{i}"))
        copies = {i: _tuned_files(r, i) for i, r in enumerate(self.routes)
                  if config["routes"][i]["type"] == "tuned-encoder"}
        folder = Path(folder)
        try:
            with atomic_dir(folder, check=lambda p: _check_destination(p, overwrite)) as tmp:
                save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp / WEIGHTS_NAME),
                          metadata={"format": "langalign", "kind": KIND})
                (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
                for i, (src, files) in copies.items():
                    for rel in files:
                        dst = tmp / route_folder(i) / rel
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src / rel, dst)
        except (SafetensorError, OSError) as e:
            raise save_error(e, folder) from None
        return folder

    @classmethod
    def load(cls, folder: str | Path, encoders: Sequence[Encoder | str] = (), force: bool = False) -> AveragedEncoder:
        """Load a saved averaged encoder.

        Route encoders come from ``encoder_<i>/`` (tuned ones, copied at save time) or by their recorded names
        (bundled ones, never downloaded); ``encoders`` supplies any other (a ``FunctionEncoder``), matched by name.
        Each is checked against the recorded fingerprint (:class:`~langalign.errors.EncoderMismatchError`;
        ``force=True`` downgrades a name/fingerprint mismatch to a warning).
        """
        folder = Path(folder)
        config, tensors = load_artefact(folder, KIND, expected=lambda c, w: guarded_from_state(
            lambda c2, t2, where: cls.config_tensors(c2, where), w, c, {}))
        avg = guarded_from_state(cls._from_state, str(folder / CONFIG_NAME), config, tensors, folder,
                                 list(encoders), force=force)
        avg.folder = str(folder)
        return avg

    @classmethod
    def config_tensors(cls, config: Any, where: str = "averaged-encoder config") -> TensorSpec:
        """Validate a saved config; the tensors it implies (each aligner route's, under ``route_<i>.``)."""
        routes = config.get("routes") if isinstance(config, dict) else None
        if not isinstance(routes, list) or not 2 <= len(routes) <= MAX_ROUTES:
            raise ArtefactError(f"{where}: 'routes' must be a list of 2 to {MAX_ROUTES} routes")
        weights = config.get("weights")
        if (not isinstance(weights, list) or len(weights) != len(routes)
                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and np.isfinite(w) and w > 0
                           for w in weights)):
            raise ArtefactError(f"{where}: 'weights' must be {len(routes)} positive numbers, one per route")
        spec: TensorSpec = {}
        for i, r in enumerate(routes):
            if not isinstance(r, dict) or r.get("type") not in ROUTE_TYPES:
                raise ArtefactError(f"{where}: route {i} must be an object with a type in {ROUTE_TYPES}")
            if r["type"] == "aligner":
                spec.update(prefix_spec(LangAlign.config_tensors(r.get("aligner"), where, f"routes[{i}].aligner"),
                                        f"route_{i}"))
            elif not isinstance(r.get("encoder"), dict) or not isinstance(r["encoder"].get("name"), str):
                raise ArtefactError(f"{where}: route {i} lacks its encoder's name")
        return spec

    @classmethod
    def _from_state(cls, config: dict, tensors: dict, folder: Path, given: list, where: str,
                    force: bool = False) -> AveragedEncoder:
        cls.config_tensors(config, where)
        by_name = {}
        for e in given:
            enc = load_encoder(e) if isinstance(e, str) else e
            if not isinstance(enc, Encoder):
                raise TypeError(f"encoders must hold Encoder objects or names, got {type(e).__name__}")
            by_name[canonical_encoder_name(enc.name)] = enc
        routes: list[Any] = []
        for i, r in enumerate(config["routes"]):
            what = f"route {i} of {where}"
            if r["type"] == "aligner":
                al = r["aligner"]
                src, tgt = (by_name.get(canonical_encoder_name(str(al[k].get("name"))))
                            for k in ("source_encoder", "target_encoder"))
                routes.append(LangAlign.from_state(al, split_prefix(tensors, f"route_{i}"), src, tgt,
                                                   where=f"{where} (route {i})", force=force))
                continue
            recorded = r["encoder"]
            if r["type"] == "tuned-encoder":
                sub = folder / route_folder(i)
                if sub.is_symlink():  # the copy must live inside the folder, as the tuned loader's own check asks
                    raise ArtefactError(f"{sub} is a link; a saved averaged encoder holds its tuned routes itself")
                if not (sub / TUNING_METADATA).is_file():
                    raise ArtefactError(f"{what} is a tuned encoder, but {sub} does not hold one; the folder is "
                                        "incomplete")
                enc = load_encoder(str(sub))
            else:
                enc = by_name.get(canonical_encoder_name(recorded["name"]))
                if enc is None:
                    try:
                        enc = load_encoder(recorded["name"], allow_download=False)
                    except Exception as e:  # noqa: BLE001 - any failure to load is the same advice
                        raise EncoderNotAvailableError(
                            f"{what} is encoder {recorded['name']!r}, which is not on this machine or cannot be "
                            f"loaded from its name ({type(e).__name__}); if you trust it, load it yourself and pass "
                            "it: AveragedEncoder.load(folder, encoders=[encoder])") from None
            check_encoder_identity(recorded, enc, what, force=force)
            routes.append(enc)
        return cls(routes, weights=config["weights"], name=config.get("name") or None)


def _tuned_files(encoder: Any, i: int) -> tuple[Path, list[str]]:
    """The tuned route encoder's folder and the files to copy (those its tuning record lists, checked to lie
    inside it), so the saved folder does not depend on where the encoder was tuned."""
    src = Path(encoder.folder)
    listed = [f for f in encoder.tuning.get("files") or [] if isinstance(f, str)]
    files = sorted(set(listed) | {TUNING_METADATA})
    root = os.path.realpath(src)
    for rel in files:
        pp = PurePosixPath(rel)
        real = os.path.realpath(src / rel)
        if pp.is_absolute() or ".." in pp.parts or not real.startswith(root.rstrip(os.sep) + os.sep):
            raise ArtefactError(f"route {i}: the tuned encoder in {src} lists {rel!r}, outside its folder")
        if not os.path.isfile(real):
            raise ArtefactError(f"route {i}: the tuned encoder in {src} lacks {rel}; it is incomplete")
    return src, files


def _check_destination(folder: str | Path, overwrite: bool) -> None:
    """As :func:`~langalign.artefacts.check_destination`, and a saved averaged encoder (its ``encoder_<i>/``
    copies included) may be replaced too; anything else in the folder is refused, never deleted."""
    p = check_destination_name(folder)
    subs = []
    if p.is_dir() and not p.is_symlink():
        subs = [e for e in p.iterdir() if e.name.startswith("encoder_") and e.name[8:].isdigit() and e.is_dir()
                and not e.is_symlink()]
    if not subs:
        check_destination(p, KIND, overwrite)
        return
    others = sorted(e.name for e in p.iterdir() if e not in subs and e.name not in (CONFIG_NAME, WEIGHTS_NAME))
    if others or artefact_kind(p / CONFIG_NAME) != KIND:
        why = f"it holds {', '.join(others[:3])}" if others else "it is not a saved averaged encoder"
        raise ArtefactError(f"refusing to replace {p}: {why}; nothing was touched. Save to a new or empty folder")


FOLDER_ENCODER_KINDS[KIND] = AveragedEncoder.load
