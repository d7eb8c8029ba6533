"""Common estimator plumbing for mappers: params, fitted checks, state for saving."""
from __future__ import annotations

import inspect
from typing import Any, TypeVar

import numpy as np

from .._validation import MAX_DIM, check_int_param, check_matrix
from ..artefacts import TensorSpec, check_tensors
from ..errors import ArtefactError


_M = TypeVar("_M", bound="BaseMapper")


class NotFittedError(ValueError, AttributeError):
    """Raised when transform is called before fit (same spirit as scikit-learn's)."""


class BaseMapper:
    """scikit-learn-style base: ``__init__`` stores parameters, ``fit`` learns ``*_`` state.

    Subclasses implement ``fit(X, Y)``, ``_transform(X)`` and the pair
    ``_get_state() -> dict[str, np.ndarray]`` / ``_set_state(tensors)`` used by
    saving and loading (safetensors holds the arrays, JSON the parameters).
    ``_validate_params()`` is the one place a class checks its parameters: ``fit``
    calls it (scikit-learn style: not ``__init__``), and so does loading a saved
    config. ``_state_shapes`` states the tensors a config implies, so a load can
    compare them with the weights file's header before reading any data.
    """

    kind: str = "base"
    # Set by fit / from_state (declared, not assigned, so is_fitted's hasattr still works).
    d_in_: int
    d_out_: int

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {p: getattr(self, p) for p in self._param_names()}

    def set_params(self, **params: Any) -> BaseMapper:
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def clone(self) -> BaseMapper:
        """An unfitted copy with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({ps})"

    # -- scikit-learn protocol (tags read by its estimator checks, >= 1.6) ----------
    def __sklearn_tags__(self) -> Any:
        """A transformer whose fit needs a 2-D target ``Y`` (n, d_out); outputs float32."""
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None,
                    target_tags=TargetTags(required=True, multi_output=True, single_output=False),
                    transformer_tags=TransformerTags(preserves_dtype=["float32"]))

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

    def _validate_params(self) -> None:
        """Raise ValueError naming the parameter when one is of the wrong type or out of range."""

    # -- fitted state ----------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "d_in_")

    @property
    def n_features_in_(self) -> int:
        """``d_in_`` under scikit-learn's name (absent, i.e. AttributeError, until fitted)."""
        self._check_fitted()
        return self.d_in_

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, Y) first")

    def transform(self, X: Any) -> np.ndarray:
        """Map rows of ``X`` (n, d_in) to the output space (n, d_out), float32."""
        self._check_fitted()
        X = check_matrix(X, "X", dim=self.d_in_)
        if X.shape[0] == 0:
            return np.empty((0, self.d_out_), dtype=np.float32)
        return np.asarray(self._transform(X), dtype=np.float32)

    def fit(self, X: Any, Y: Any) -> BaseMapper:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_transform(self, X: Any, Y: Any) -> np.ndarray:
        return self.fit(X, Y).transform(X)

    def _transform(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- saving ------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable description: class, parameters, dimensions, fit facts."""
        self._check_fitted()
        return {
            "class": type(self).__name__,
            "params": _jsonable(self.get_params()),
            "d_in": int(self.d_in_),
            "d_out": int(self.d_out_),
            "fit_info": _jsonable(self._fit_info()),
        }

    def _fit_info(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {k: np.ascontiguousarray(v) for k, v in self._get_state().items()}

    def _get_state(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _state_shapes(self, d_in: int, d_out: int, config: dict[str, Any], where: str,
                      field: str) -> TensorSpec:  # pragma: no cover - abstract
        """The fitted state's tensors for these dimensions: name -> (shape, config fields implying it)."""
        raise NotImplementedError

    @classmethod
    def _from_config(cls: type[_M], config: Any, where: str, field: str) -> tuple[_M, int, int]:
        """An unfitted instance and ``(d_in, d_out)`` from a saved config, every value checked."""
        if not isinstance(config, dict):
            raise ArtefactError(f"{where}: {field} must be a JSON object, got {type(config).__name__}")
        params = config.get("params", {})
        if not isinstance(params, dict):
            raise ArtefactError(f"{where}: {field}.params must be a JSON object of parameter names and values, "
                                f"got {type(params).__name__} {str(params)[:40]!r}")
        unknown = set(params) - set(cls._param_names())
        if unknown:
            raise ArtefactError(f"{where}: {field}.params: unknown parameters for {cls.__name__}: {sorted(unknown)}")
        obj = cls(**params)
        try:
            obj._validate_params()
        except (TypeError, ValueError) as e:
            raise ArtefactError(f"{where}: invalid {field}.params for {cls.__name__}: {e}") from None
        dims = []
        for key in ("d_in", "d_out"):
            if key not in config:
                raise ArtefactError(f"{where}: {field} lacks {key}")
            try:
                dims.append(check_int_param(f"{field}.{key}", config[key], 1, MAX_DIM))
            except ValueError as e:
                raise ArtefactError(f"{where}: {e}") from None
        return obj, dims[0], dims[1]

    @classmethod
    def config_tensors(cls, config: Any, where: str = "mapper config", field: str = "mapper") -> TensorSpec:
        """Validate a saved mapper config and return the tensors it implies (no allocation)."""
        obj, d_in, d_out = cls._from_config(config, where, field)
        return obj._state_shapes(d_in, d_out, config, where, field)

    @classmethod
    def from_state(cls: type[_M], config: dict[str, Any], tensors: dict[str, np.ndarray],
                   where: str = "mapper config", field: str = "mapper") -> _M:
        obj, d_in, d_out = cls._from_config(config, where, field)
        check_tensors(tensors, obj._state_shapes(d_in, d_out, config, where, field), f"{where}: {field}")
        obj.d_in_, obj.d_out_ = d_in, d_out
        obj._set_state(tensors, config)
        return obj


def expect_shape(tensors: dict[str, np.ndarray], name: str, shape: tuple[int, ...], owner: str) -> np.ndarray:
    if name not in tensors:
        raise ArtefactError(f"{owner}: tensor {name!r} is missing from the weights file")
    arr = tensors[name]
    if tuple(arr.shape) != tuple(shape):
        raise ArtefactError(f"{owner}: tensor {name!r} has shape {tuple(arr.shape)}, expected {tuple(shape)}")
    return arr


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)  # JSON has no inf/nan
    return obj
