"""Mappers: scikit-learn-style estimators that map one embedding space onto another."""
from __future__ import annotations

from typing import Any

from ..errors import ArtefactError
from .base import BaseMapper, NotFittedError
from .centering import CenteringMapper
from .linear import LinearMapper
from .procrustes import ProcrustesMapper
from .stats import PairStats, accumulate
from .neural import AutoEncoderMapper, MLPMapper
from .contrastive import ContrastiveMapper

# Explicit registry: loading dispatches on these names only, never on arbitrary imports.
MAPPER_CLASSES: dict[str, type[BaseMapper]] = {
    cls.__name__: cls
    for cls in (LinearMapper, ProcrustesMapper, CenteringMapper, MLPMapper, AutoEncoderMapper, ContrastiveMapper)
}

# Short names accepted by make_mapper / LangAlign(mapper=...).
MAPPER_NAMES: dict[str, tuple[type[BaseMapper], dict[str, Any]]] = {
    "linear": (LinearMapper, {}),
    "ridge": (LinearMapper, {"prior": "zero"}),
    "procrustes": (ProcrustesMapper, {}),
    "procrustes-plain": (ProcrustesMapper, {"shrink": False}),
    "centering": (CenteringMapper, {}),
    "mlp": (MLPMapper, {}),
    "fc": (MLPMapper, {}),
    "mlp-paper": (MLPMapper, {"residual": False}),
    "autoencoder": (AutoEncoderMapper, {}),
    "ae": (AutoEncoderMapper, {}),
    "autoencoder-paper": (AutoEncoderMapper, {"residual": False}),
    # InfoNCE over in-batch negatives (+ an MSE term) on top of the ridge map; see mappers/contrastive.py.
    "contrastive": (ContrastiveMapper, {}),
    # The English-only bridge's map (LangAlign.fit_bridge's default): the residual MLP, sized
    # and budgeted as chosen on dev splits by bench/english_bridge.py (results/english_bridge.md).
    "bridge": (MLPMapper, {"hidden_dim": 1024, "n_layers": 2, "epochs": 40, "patience": 4, "batch_size": 256}),
}
DEFAULT_MAPPER = "linear"


def make_mapper(name: str | BaseMapper = "default", **params: Any) -> BaseMapper:
    """Build an unfitted mapper from a short name (see ``MAPPER_NAMES``) or clone an instance."""
    if isinstance(name, BaseMapper):
        return name.clone().set_params(**params) if params else name.clone()
    key = DEFAULT_MAPPER if name == "default" else str(name).lower()
    if key not in MAPPER_NAMES:
        raise ValueError(f"unknown mapper {name!r}; choose one of {sorted(MAPPER_NAMES)} or pass a mapper instance")
    cls, defaults = MAPPER_NAMES[key]
    unknown = sorted(set(params) - set(cls._param_names()))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {cls.__name__} (mapper {name!r}); "
                         f"valid: {cls._param_names()}")
    return cls(**{**defaults, **params})


def _mapper_class(config: Any, where: str, field: str) -> type[BaseMapper]:
    cls_name = config.get("class") if isinstance(config, dict) else None
    if not isinstance(cls_name, str) or cls_name not in MAPPER_CLASSES:
        raise ArtefactError(f"{where}: unknown mapper class {cls_name!r} in {field}; known: {sorted(MAPPER_CLASSES)}")
    return MAPPER_CLASSES[cls_name]


def mapper_config_tensors(config: Any, where: str = "mapper config", field: str = "mapper") -> dict:
    """Validate a saved mapper config; the tensors (name -> (shape, fields)) it implies."""
    return _mapper_class(config, where, field).config_tensors(config, where, field)


def mapper_from_state(config: dict[str, Any], tensors: dict, where: str = "mapper config",
                      field: str = "mapper") -> BaseMapper:
    """Rebuild a fitted mapper from its saved config and tensors."""
    return _mapper_class(config, where, field).from_state(config, tensors, where, field)


__all__ = [
    "BaseMapper", "NotFittedError", "LinearMapper", "ProcrustesMapper", "CenteringMapper", "MLPMapper",
    "AutoEncoderMapper", "ContrastiveMapper", "PairStats", "accumulate", "make_mapper", "mapper_from_state",
    "mapper_config_tensors", "MAPPER_CLASSES",
    "MAPPER_NAMES", "DEFAULT_MAPPER",
]
