"""Task heads: small classifiers trained on (possibly mapped) sentence embeddings.

In LangAlign a head is trained on target-language embeddings and then applied to
source-language embeddings mapped into the target space. Heads are stored without
pickle: ``get_config()`` (JSON) + ``state_dict()`` (numpy arrays for safetensors),
rebuilt by ``head_from_state(config, tensors)``.

Input preprocessing (both heads, learned at fit and stored with the weights):

* ``normalize=True`` (both heads' default) L2-normalises every row first. Least-squares
  mappers shrink vector norms (regression towards the mean), so mapped inputs are
  systematically shorter than the real target embeddings a head was trained on; a
  linear head is scale-sensitive, a normalised one is not, and its ``C`` means the same
  whatever the encoder's vector norms.
* ``standardize=True`` then centres each feature and divides by its training
  standard deviation (like ``StandardScaler``). Off by default for
  ``LogisticRegressionHead``, on for ``MLPHead``: chosen on train/dev splits only by
  ``bench/head_protocol.py`` (``results/head_protocol.md``). For the logistic
  regression it costs cross-lingual accuracy (zero-shot sentiment ja/zh dev
  64.6/63.5 with it, 79.9/71.2 without, both at C=1), probably because dividing by
  the English training spread amplifies low-variance directions in which the target
  language differs from English; the MLP, trained with Adam, does better with it.
* ``C=3`` for ``LogisticRegressionHead`` (from the same protocol; the old default was 1).
  ``C="cv"`` chooses C per task instead, by stratified 5-fold cross-validation on the training
  data over :data:`CV_GRID` (``fit_info`` in the saved config records the C chosen).

Saved heads record every parameter, so a head saved under the old defaults
(``standardize=True, C=1``) loads and predicts exactly as before.

Prediction uses numpy only, so a loaded head needs neither scikit-learn nor torch
objects, and a head predicts bit-identically before saving and after loading.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from ._labels import check_labels
from ._validation import MAX_DIM, check_matrix
from .errors import ArtefactError

__all__ = ["LogisticRegressionHead", "MLPHead", "head_from_state", "make_head", "pair_features",
           "HEAD_CLASSES", "HEAD_NAMES"]

CONFIG_FORMAT = 1
# Preprocessing and strength defaults of the heads when format 1 was introduced. Saved
# configs list every parameter, so these only fill gaps in hand-written or truncated configs.
FORMAT1_DEFAULTS: dict[str, Any] = {"normalize": True, "standardize": True, "C": 1.0}
# LogisticRegressionHead(C="cv"): the grid, the folds (fewer when a class has fewer examples) and the
# fixed default it falls back to (and prefers on ties). A small grid around C=3, as in bench/head_protocol.py.
CV_GRID = (0.3, 1.0, 3.0, 10.0)
CV_FOLDS = 5
CV_FALLBACK_C = 3.0
# MLP training uses one CPU thread when batch_size * n_features * hidden is below this.
_SINGLE_THREAD_BELOW = 1 << 24


def pair_features(U: Any, V: Any) -> np.ndarray:
    """Sentence-pair features ``[u, v, |u - v|, u * v]`` (InferSent/SBERT style), float32 (n, 4d)."""
    U = check_matrix(U, "U")
    V = check_matrix(V, "V", dim=U.shape[1])
    if U.shape[0] != V.shape[0]:
        raise ValueError(f"U and V must have the same number of rows: {U.shape[0]} != {V.shape[0]}")
    return np.hstack([U, V, np.abs(U - V), U * V]).astype(np.float32, copy=False)


def _check_labels(y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (classes, y as class indices); labels must be all-int or all-str (see :mod:`langalign._labels`)."""
    arr = check_labels(y, "y")
    if arr.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {arr.shape[0]} labels")
    classes, y_idx = np.unique(arr, return_inverse=True)
    if classes.size < 2:
        shown = repr(classes[0].item()) if classes.size else "none"
        raise ValueError(f"need at least 2 classes, got {classes.size}: {shown}")
    return classes, y_idx.astype(np.int64)


def _class_weight_vector(class_weight: Any, classes: np.ndarray, y_idx: np.ndarray) -> np.ndarray | None:
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(y_idx, minlength=classes.size).astype(np.float64)
        return y_idx.size / (classes.size * counts)
    if isinstance(class_weight, dict):
        return np.array([float(class_weight.get(c.item(), 1.0)) for c in classes])
    raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {class_weight!r}")


def _jsonable_class_weight(cw: Any) -> Any:
    # JSON object keys are strings, which would turn int labels into str: store pairs.
    if isinstance(cw, dict):
        return {"pairs": [[k.item() if isinstance(k, np.generic) else k, float(v)] for k, v in cw.items()]}
    return cw


def _class_weight_from_json(cw: Any) -> Any:
    if isinstance(cw, dict):
        try:
            return {k: float(v) for k, v in cw["pairs"]}
        except (KeyError, TypeError, ValueError):
            raise ArtefactError(f"head config has a malformed class_weight: {cw!r}") from None
    return cw


class Head:
    """The base of the task heads: params, preprocessing, probabilities, config and state (shared plumbing)."""

    _param_names: ClassVar[tuple[str, ...]] = ()
    # Parameters both heads' __init__ store (declared for the type checker).
    normalize: bool
    standardize: bool
    classes_: np.ndarray
    n_features_in_: int
    mean_: np.ndarray | None
    scale_: np.ndarray | None

    # --- scikit-learn protocol -------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self, name)) if deep else getattr(self, name)
                for name in self._param_names}

    def set_params(self, **params: Any) -> Head:
        for name, value in params.items():
            if name not in self._param_names:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; "
                                 f"valid: {', '.join(self._param_names)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> None:
        for name in ("normalize", "standardize"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        cw = getattr(self, "class_weight", None)
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {cw!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")

    # --- preprocessing -------------------------------------------------------
    def _fit_preprocess(self, X: np.ndarray) -> np.ndarray:
        Z = X.astype(np.float64)
        if self.normalize:
            Z = _l2_normalize(Z)
        if self.standardize:
            self.mean_ = Z.mean(axis=0)
            std = Z.std(axis=0)
            # Constant features: leave unscaled rather than divide by ~0.
            self.scale_ = np.where(std > 1e-12, std, 1.0)
            Z = (Z - self.mean_) / self.scale_
        else:
            self.mean_ = None
            self.scale_ = None
        return Z

    def _preprocess(self, X: Any) -> np.ndarray:
        self._check_fitted()
        Z = check_matrix(X, "X", dim=self.n_features_in_).astype(np.float64)
        if self.normalize:
            Z = _l2_normalize(Z)
        if self.standardize:
            assert self.mean_ is not None and self.scale_ is not None  # set by fit when standardize
            Z = (Z - self.mean_) / self.scale_
        return Z

    def fit(self, X: Any, y: Any) -> Head:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- prediction ------------------------------------------------------------
    def decision_function(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:  # binary logistic regression: one logit for classes_[1]
            p1 = _sigmoid(scores)
            return np.stack([1.0 - p1, p1], axis=1)
        return _softmax(scores)

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        idx = (scores > 0).astype(np.int64) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy, as in scikit-learn."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    # --- serialisation ---------------------------------------------------------
    def _json_params(self) -> dict[str, Any]:
        params = self.get_params()
        if "class_weight" in params:
            params["class_weight"] = _jsonable_class_weight(params["class_weight"])
        return params

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable description: class, params, classes, dimensions."""
        self._check_fitted()
        return {
            "class": type(self).__name__,
            "format": CONFIG_FORMAT,
            "params": self._json_params(),
            "classes": [c.item() for c in self.classes_],
            "n_features": int(self.n_features_in_),
            "n_classes": int(self.classes_.size),
        }

    def _preprocess_state(self) -> dict[str, np.ndarray]:
        if not self.standardize:
            return {}
        return {"mean": np.asarray(self.mean_), "scale": np.asarray(self.scale_)}

    @classmethod
    def _expected_shapes(cls, config: dict[str, Any], params: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    @classmethod
    def config_tensors(cls, config: Any) -> dict[str, tuple[tuple[int, ...], str]]:
        """Validate a saved head config; the tensors it implies, ``name -> (shape, fields)`` (no allocation)."""
        head, _, _, expected = cls._parse_config(config)
        fields = "n_features, n_classes" + (", params.hidden" if "W1" in expected else "")
        return {k: (v, fields) for k, v in expected.items()}

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, Any]) -> Head:
        """Rebuild a fitted head from ``get_config()`` and ``state_dict()`` output.

        Raises ArtefactError if the config is for another head class or malformed,
        or if a tensor is missing, unexpected, of the wrong shape/dtype, or not finite.
        """
        head, classes_arr, n_features, expected = cls._parse_config(config)
        arrays = _check_tensors(tensors, expected, cls.__name__)
        head.classes_ = classes_arr
        head.n_features_in_ = n_features
        mean, scale = arrays.pop("mean", None), arrays.pop("scale", None)
        head.mean_ = None if mean is None else np.ascontiguousarray(mean, dtype=np.float64)
        head.scale_ = None if scale is None else np.ascontiguousarray(scale, dtype=np.float64)
        if head.scale_ is not None and np.any(head.scale_ <= 0):
            raise ArtefactError(f"{cls.__name__} tensor 'scale' must be positive")
        head._set_weights(arrays)
        return head

    @classmethod
    def _parse_config(cls, config: Any) -> tuple[Head, np.ndarray, int, dict[str, tuple[int, ...]]]:
        """Unfitted head, classes, n_features and expected tensor shapes from a config, every value checked."""
        if not isinstance(config, dict):
            raise ArtefactError(f"head config must be a JSON object, got {type(config).__name__}")
        if config.get("class") != cls.__name__:
            raise ArtefactError(f"head config is for {config.get('class')!r}, not {cls.__name__}")
        if config.get("format", CONFIG_FORMAT) != CONFIG_FORMAT:
            raise ArtefactError(f"head config format {config.get('format')!r} is not supported "
                                f"(this version reads format {CONFIG_FORMAT})")
        params = config.get("params")
        if not isinstance(params, dict):
            raise ArtefactError("head config has no 'params' object")
        unknown = sorted(set(params) - set(cls._param_names))
        if unknown:
            raise ArtefactError(f"head config has unknown {cls.__name__} parameter(s): {', '.join(unknown)}")
        # A stored config means what it meant when it was written: a parameter it does not
        # list takes the value the default had then, never today's (defaults change).
        params = {**{k: v for k, v in FORMAT1_DEFAULTS.items() if k in cls._param_names}, **params}
        if "class_weight" in params:
            params["class_weight"] = _class_weight_from_json(params["class_weight"])
        head = cls(**params)
        try:
            head._validate_params()
        except (TypeError, ValueError) as e:
            raise ArtefactError(f"head config has invalid {cls.__name__} parameters: {e}") from None

        classes = config.get("classes")
        if not isinstance(classes, list) or len(classes) < 2:
            raise ArtefactError("head config must list at least 2 classes")
        if all(isinstance(c, str) for c in classes):
            classes_arr = np.array(classes, dtype=str)
        elif all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            classes_arr = np.array(classes, dtype=np.int64)
        else:
            raise ArtefactError("head config classes must be all strings or all integers")
        if len(set(classes)) != len(classes):
            raise ArtefactError("head config lists duplicate classes")
        n_features = config.get("n_features")
        if not isinstance(n_features, int) or isinstance(n_features, bool) or not 1 <= n_features <= 4 * MAX_DIM:
            raise ArtefactError(f"head config has an invalid n_features: {n_features!r}")
        if config.get("n_classes", len(classes)) != len(classes):
            raise ArtefactError(f"head config says n_classes={config.get('n_classes')} "
                                f"but lists {len(classes)} classes")

        expected = cls._expected_shapes({**config, "n_classes": len(classes)}, params)
        if not head.standardize:
            expected.pop("mean", None)
            expected.pop("scale", None)
        return head, classes_arr, n_features, expected

    def _set_weights(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


def _check_tensors(tensors: Any, expected: dict[str, tuple[int, ...]], owner: str) -> dict[str, np.ndarray]:
    if not isinstance(tensors, dict):
        raise ArtefactError(f"{owner} tensors must be a dict of arrays, got {type(tensors).__name__}")
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise ArtefactError(f"{owner} tensors do not match its config: {'; '.join(parts)}")
    out: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        arr = np.asarray(tensors[name])
        if arr.dtype.kind != "f":
            raise ArtefactError(f"{owner} tensor {name!r} has dtype {arr.dtype}, expected floating point")
        if arr.shape != shape:
            raise ArtefactError(f"{owner} tensor {name!r} has shape {arr.shape}, expected {shape}")
        if not np.isfinite(arr).all():
            raise ArtefactError(f"{owner} tensor {name!r} contains NaN or inf")
        out[name] = arr
    return out


def _l2_normalize(Z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    out = np.zeros_like(Z)
    np.divide(Z, norms, out=out, where=norms > 0)
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow warnings for large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)) \
            or (value < 0 if allow_zero else value <= 0):
        kind = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite {kind} {bound}, got {value!r}")


class LogisticRegressionHead(Head):
    """Multinomial logistic regression (scikit-learn lbfgs), stored as plain arrays.

    Parameters mirror ``sklearn.linear_model.LogisticRegression`` (C = inverse L2
    strength); see the module docstring for ``normalize`` and ``standardize``.
    Fitted attributes: ``classes_``, ``coef_`` (1 x d for two classes, else k x d),
    ``intercept_``, ``mean_``/``scale_`` (None without standardisation),
    ``n_features_in_``, ``C_`` (the C used: ``C``, or with ``C="cv"`` the grid value that
    stratified 5-fold cross-validation on the training data chose; ``cv_scores_`` holds its scores).
    """

    _param_names = ("C", "max_iter", "class_weight", "normalize", "standardize")

    def __init__(self, C: float | str = 3.0, max_iter: int = 1000, class_weight: Any = None,
                 normalize: bool = True, standardize: bool = False) -> None:
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.normalize = normalize
        self.standardize = standardize

    def _validate_params(self) -> None:
        super()._validate_params()
        if not (isinstance(self.C, str) and self.C == "cv"):
            if isinstance(self.C, str):
                raise ValueError(f"C must be a positive number or 'cv', got {self.C!r}")
            _check_positive("C", self.C)
        _check_positive("max_iter", self.max_iter, integer=True)

    def _choose_C(self, Z: np.ndarray, y_idx: np.ndarray, sample_weight: np.ndarray | None) -> float:
        """``C="cv"``: the grid value with the best stratified k-fold accuracy on the training data."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        counts = np.bincount(y_idx)
        folds = int(min(CV_FOLDS, counts[counts > 0].min()))
        if folds < 2:
            warnings.warn(f"LogisticRegressionHead(C='cv'): a class has a single training example, too few to "
                          f"cross-validate; using C={CV_FALLBACK_C:g}", RuntimeWarning, stacklevel=3)
            self.cv_scores_ = {}
            return CV_FALLBACK_C
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(Z, y_idx))
        w = np.ones(y_idx.size) if sample_weight is None else sample_weight
        scores: dict[float, float] = {}
        for C in CV_GRID:
            fold_scores = []
            for tr, te in splits:
                clf = LogisticRegression(C=C, max_iter=int(self.max_iter), solver="lbfgs")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a fold that does not converge still scores
                    clf.fit(Z[tr], y_idx[tr], sample_weight=None if sample_weight is None else sample_weight[tr])
                ok = clf.predict(Z[te]) == y_idx[te]
                fold_scores.append(float((ok * w[te]).sum() / w[te].sum()))  # class-weighted when asked
            scores[C] = float(np.mean(fold_scores))
        self.cv_scores_ = scores
        # ties go to the grid value closest to the fixed default (in log scale)
        return max(CV_GRID, key=lambda C: (round(scores[C], 12), -abs(math.log(C / CV_FALLBACK_C))))

    def fit(self, X: Any, y: Any) -> LogisticRegressionHead:
        from sklearn.linear_model import LogisticRegression  # only needed to train

        self._validate_params()
        Xm = check_matrix(X, "X", allow_empty=False)
        classes, y_idx = _check_labels(y, Xm.shape[0])
        weights = _class_weight_vector(self.class_weight, classes, y_idx)
        Z = self._fit_preprocess(Xm)
        sample_weight = None if weights is None else weights[y_idx]
        self.C_ = self._choose_C(Z, y_idx, sample_weight) if self.C == "cv" else float(self.C)
        clf = LogisticRegression(C=self.C_, max_iter=int(self.max_iter), solver="lbfgs")
        with warnings.catch_warnings():
            # Non-convergence is reported once, in our words, below.
            warnings.simplefilter("ignore")
            clf.fit(Z, y_idx, sample_weight=sample_weight)
        if int(np.max(clf.n_iter_)) >= int(self.max_iter):
            warnings.warn(f"LogisticRegressionHead did not converge in max_iter={self.max_iter} "
                          f"iterations; consider raising max_iter", RuntimeWarning, stacklevel=2)
        self.classes_ = classes
        self.n_features_in_ = int(Xm.shape[1])
        # C-contiguous, like arrays read back from safetensors: BLAS may round
        # differently for other layouts, and loaded heads must predict identically.
        self.coef_ = np.ascontiguousarray(clf.coef_, dtype=np.float64)
        self.intercept_ = np.ascontiguousarray(clf.intercept_, dtype=np.float64)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: shape (n,) for two classes (positive = classes_[1]), else (n, k)."""
        Z = self._preprocess(X)
        scores = Z @ self.coef_.T + self.intercept_
        return scores[:, 0] if self.coef_.shape[0] == 1 else scores

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"coef": self.coef_.copy(), "intercept": self.intercept_.copy(), **self._preprocess_state()}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.C == "cv" and hasattr(self, "C_"):  # the C that cross-validation chose, for the record
            config["fit_info"] = {"C": self.C_, "cv_scores": {f"{c:g}": v for c, v in self.cv_scores_.items()}}
        return config

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, Any]) -> LogisticRegressionHead:
        head = super().from_state(config, tensors)
        assert isinstance(head, LogisticRegressionHead)
        info = config.get("fit_info")
        chosen = info.get("C") if isinstance(info, dict) else None
        if isinstance(chosen, (int, float)) and not isinstance(chosen, bool) and math.isfinite(chosen) and chosen > 0:
            head.C_ = float(chosen)
        else:  # a fixed C, or a "cv" head saved without its record (the weights are all prediction needs)
            head.C_ = float("nan") if head.C == "cv" else float(head.C)
        return head

    @classmethod
    def _expected_shapes(cls, config: dict[str, Any], params: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        d, k = config["n_features"], config["n_classes"]
        rows = 1 if k == 2 else k
        return {"coef": (rows, d), "intercept": (rows,), "mean": (d,), "scale": (d,)}

    def _set_weights(self, arrays: dict[str, np.ndarray]) -> None:
        self.coef_ = np.ascontiguousarray(arrays["coef"], dtype=np.float64)
        self.intercept_ = np.ascontiguousarray(arrays["intercept"], dtype=np.float64)


class MLPHead(Head):
    """One-hidden-layer MLP (Linear -> ReLU -> Dropout -> Linear), trained with AdamW in torch.

    A ``val_fraction`` of the training data (stratified when every class has at
    least 2 examples) is held out; training stops after ``patience`` epochs
    without a lower validation loss and keeps the best epoch's weights. With
    ``val_fraction=0`` it trains for all ``epochs``. ``device="auto"`` uses CUDA
    when available. Training is deterministic for a given ``seed`` on CPU (GPU
    kernels may not be). Prediction runs in numpy.
    Fitted attributes: ``classes_``, ``W1_`` (hidden x d), ``b1_``, ``W2_``
    (k x hidden), ``b2_``, ``mean_``/``scale_``, ``n_features_in_``,
    ``n_epochs_`` (epochs run), ``best_epoch_``, ``best_val_loss_``.
    """

    _param_names = ("hidden", "dropout", "epochs", "lr", "batch_size", "weight_decay", "seed", "device",
                    "val_fraction", "patience", "class_weight", "normalize", "standardize")

    def __init__(self, hidden: int = 256, dropout: float = 0.1, epochs: int = 100, lr: float = 1e-3,
                 batch_size: int = 64, weight_decay: float = 1e-4, seed: int = 0, device: str = "auto",
                 val_fraction: float = 0.1, patience: int = 10, class_weight: Any = None,
                 normalize: bool = True, standardize: bool = True) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device
        self.val_fraction = val_fraction
        self.patience = patience
        self.class_weight = class_weight
        self.normalize = normalize
        self.standardize = standardize

    def _validate_params(self) -> None:
        super()._validate_params()
        _check_positive("hidden", self.hidden, integer=True)
        _check_positive("epochs", self.epochs, integer=True)
        _check_positive("lr", self.lr)
        _check_positive("batch_size", self.batch_size, integer=True)
        _check_positive("weight_decay", self.weight_decay, allow_zero=True)
        _check_positive("patience", self.patience, integer=True)
        _check_positive("seed", self.seed, integer=True, allow_zero=True)
        if not (0.0 <= float(self.dropout) < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not (0.0 <= float(self.val_fraction) < 1.0):
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.device not in ("auto", "cpu") and not str(self.device).startswith("cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    def _split(self, y_idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n = y_idx.size
        n_val = int(round(float(self.val_fraction) * n))
        if n_val < 1 or n - n_val < 2:
            return np.arange(n), np.empty(0, dtype=np.int64)
        counts = np.bincount(y_idx)
        if counts.min() >= 2 and n_val >= counts.size:
            # Stratified: take ~val_fraction of each class, at least one, leaving one to train on.
            val = []
            for c in range(counts.size):
                members = rng.permutation(np.flatnonzero(y_idx == c))
                take = min(max(1, int(round(float(self.val_fraction) * members.size))), members.size - 1)
                val.append(members[:take])
            val_idx = np.sort(np.concatenate(val))
        else:
            val_idx = np.sort(rng.permutation(n)[:n_val])
        train_mask = np.ones(n, dtype=bool)
        train_mask[val_idx] = False
        return np.flatnonzero(train_mask), val_idx

    def fit(self, X: Any, y: Any) -> MLPHead:
        import torch  # only needed to train

        self._validate_params()
        Xm = check_matrix(X, "X", allow_empty=False)
        classes, y_idx = _check_labels(y, Xm.shape[0])
        weights = _class_weight_vector(self.class_weight, classes, y_idx)
        Z = self._fit_preprocess(Xm).astype(np.float32)
        k = classes.size
        rng = np.random.default_rng(int(self.seed))
        train_idx, val_idx = self._split(y_idx, rng)

        if self.device == "auto":
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            device = torch.device(self.device)

        # A head's per-batch work is tiny; on CPU, intra-op threads cost more in
        # synchronisation than they save (50x slower on a busy 2-core machine).
        small = int(self.batch_size) * Z.shape[1] * int(self.hidden) < _SINGLE_THREAD_BELOW
        threads = torch.get_num_threads()
        if device.type == "cpu" and small:
            torch.set_num_threads(1)
        try:
            self._train(Z, y_idx, k, weights, train_idx, val_idx, device)
        finally:
            torch.set_num_threads(threads)
        self.classes_ = classes
        self.n_features_in_ = int(Xm.shape[1])
        return self

    def _train(self, Z: np.ndarray, y_idx: np.ndarray, k: int, weights: np.ndarray | None,
               train_idx: np.ndarray, val_idx: np.ndarray, device: Any) -> None:
        import torch

        # fork_rng: seed init and dropout without disturbing the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            net = torch.nn.Sequential(
                torch.nn.Linear(Z.shape[1], int(self.hidden)),
                torch.nn.ReLU(),
                torch.nn.Dropout(float(self.dropout)),
                torch.nn.Linear(int(self.hidden), k),
            ).to(device)
            opt = torch.optim.AdamW(net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
            ce_weight = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)
            loss_fn = torch.nn.CrossEntropyLoss(weight=ce_weight)
            Xt = torch.from_numpy(Z).to(device)
            yt = torch.from_numpy(y_idx).to(device)
            Xtr, ytr = Xt[train_idx], yt[train_idx]
            Xva, yva = Xt[val_idx], yt[val_idx]
            gen = torch.Generator().manual_seed(int(self.seed))
            bs = int(self.batch_size)

            best_loss, best_epoch, best_state, stale = math.inf, 0, None, 0
            epoch = 0
            for epoch in range(1, int(self.epochs) + 1):
                net.train()
                order = torch.randperm(Xtr.shape[0], generator=gen).to(device)
                for start in range(0, Xtr.shape[0], bs):
                    batch = order[start:start + bs]
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(net(Xtr[batch]), ytr[batch])
                    loss.backward()
                    opt.step()
                if val_idx.size == 0:
                    continue
                net.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(net(Xva), yva))
                if val_loss < best_loss - 1e-6:
                    best_loss, best_epoch, stale = val_loss, epoch, 0
                    best_state = {name: t.detach().clone() for name, t in net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= int(self.patience):
                        break
            if best_state is not None:
                net.load_state_dict(best_state)

        sd = {name: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
              for name, t in net.state_dict().items()}
        self.W1_, self.b1_ = sd["0.weight"], sd["0.bias"]
        self.W2_, self.b2_ = sd["3.weight"], sd["3.bias"]
        self.n_epochs_ = int(epoch)
        self.best_epoch_ = int(best_epoch) if best_state is not None else int(epoch)
        self.best_val_loss_ = float(best_loss) if best_state is not None else None

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, shape (n, k). Dropout is inactive at prediction time."""
        Z = self._preprocess(X).astype(np.float32)
        H = np.maximum(Z @ self.W1_.T + self.b1_, 0.0)
        return (H @ self.W2_.T + self.b2_).astype(np.float64)

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"W1": self.W1_.copy(), "b1": self.b1_.copy(), "W2": self.W2_.copy(), "b2": self.b2_.copy(),
                **self._preprocess_state()}

    @classmethod
    def _expected_shapes(cls, config: dict[str, Any], params: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        d, k = config["n_features"], config["n_classes"]
        h = params.get("hidden", 256)
        if not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= MAX_DIM:
            raise ArtefactError(f"MLPHead config has an invalid hidden size: {h!r}")
        return {"W1": (h, d), "b1": (h,), "W2": (k, h), "b2": (k,), "mean": (d,), "scale": (d,)}

    def _set_weights(self, arrays: dict[str, np.ndarray]) -> None:
        self.W1_ = np.ascontiguousarray(arrays["W1"], dtype=np.float32)
        self.b1_ = np.ascontiguousarray(arrays["b1"], dtype=np.float32)
        self.W2_ = np.ascontiguousarray(arrays["W2"], dtype=np.float32)
        self.b2_ = np.ascontiguousarray(arrays["b2"], dtype=np.float32)


# Explicit registries: a config names a class, never a module path to import.
HEAD_CLASSES: dict[str, type[Head]] = {
    "LogisticRegressionHead": LogisticRegressionHead,
    "MLPHead": MLPHead,
}
HEAD_NAMES: dict[str, type[Head]] = {"logreg": LogisticRegressionHead, "mlp": MLPHead}


def make_head(name: str, **params: Any) -> Head:
    """A new, unfitted head by short name: ``"logreg"`` or ``"mlp"``."""
    try:
        cls = HEAD_NAMES[name]
    except KeyError:
        raise ValueError(f"unknown head {name!r}; choose from {', '.join(HEAD_NAMES)}") from None
    unknown = sorted(set(params) - set(cls._param_names))
    if unknown:
        raise ValueError(f"{cls.__name__} has no parameter(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(cls._param_names)}")
    return cls(**params)


def _head_class(config: Any) -> type[Head]:
    if not isinstance(config, dict):
        raise ArtefactError(f"head config must be a JSON object, got {type(config).__name__}")
    name = config.get("class")
    cls = HEAD_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ArtefactError(f"unknown head class {name!r} in config; known: {', '.join(HEAD_CLASSES)}")
    return cls


def head_from_state(config: Any, tensors: dict[str, Any]) -> Head:
    """Rebuild any fitted head from its ``get_config()`` and ``state_dict()``."""
    return _head_class(config).from_state(config, tensors)


def head_config_tensors(config: Any, where: str, field: str = "head_config") -> dict:
    """Validate a saved head config (``field`` of the file ``where``); the tensors it implies."""
    try:
        spec = _head_class(config).config_tensors(config)
    except ArtefactError as e:
        raise ArtefactError(f"{where}: {field}: {e}") from None
    return {k: (shape, ", ".join(f"{field}.{f.strip()}" for f in fields.split(",")))
            for k, (shape, fields) in spec.items()}
