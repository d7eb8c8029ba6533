"""The estimator :class:`EncoderTuner` and the one-call form :func:`tune_encoder`."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..encoders import (TUNED_PREFIX, TUNING_METADATA, Encoder, load_encoder)
from ..errors import ArtefactError, DataError

from .base import DEFAULT_TASK_LOSS, FORMAT_VERSION, KIND, MODES, TASK_LOSSES, _PICKLE_SUFFIXES, TuningError
from .environment import (_base_model, _freeze_token_embeddings, _ModelEncoder, _quiet_identity, _torch_threads,
                          resolve_device)
from .inputs import _digest, _labels, _native, _pairs, _random_split, _stratified_split, _task_examples, _texts
from .distil import load_teacher, prepare_distil, teacher_name
from .output import check_tuned_destination
from .training import _TrainingLoop


# -- the estimator -----------------------------------------------------------------------
class EncoderTuner(_TrainingLoop):
    """Fine-tune a sentence-transformers encoder (see the module docstring).

    Fitted attributes: ``model_`` (the tuned SentenceTransformer, on CPU), ``history_``,
    ``dev_scores_``, ``best_epoch_``, ``base_identity_``, ``data_``, ``classes_`` (task mode),
    ``seconds_``.

    Parameters
    ----------
    base: ``"minilm"``, ``"e5-small"``, a local sentence-transformers folder (a tuned folder too), a hub id
        in the local cache, or a loaded sentence-transformers :class:`Encoder`.
    mode: ``"task"`` (``fit(texts_or_pairs, labels)``) or ``"parallel"`` (``fit(english, translations)``).
    loss: task mode: ``"contrastive"``, ``"softmax"`` or ``"auto"`` (contrastive for single texts,
        softmax for pairs); parallel mode: ``"mse"``.
    epochs, batch_size, lr: AdamW with linear warm-up over ``warmup`` of the steps, then linear decay.
    head_lr: learning rate of the softmax loss's classifier (it starts from scratch, the encoder does not).
    patience: stop after this many epochs without a better dev score (None: never stop early).
    dev_fraction: share of the training data held out as the dev split when ``fit`` gets no ``dev``.
    max_seq_length: truncate inputs to this many tokens while training and in the dev scores (a speed
        setting: the saved model keeps the base model's limit).
    freeze_embeddings: keep the token-embedding matrix (about half of MiniLM's weights) as it is:
        faster and lighter, and tokens the tuning data never show keep their vectors. Default: frozen
        in task mode, trained in parallel mode (new-language tokens must move there).
    device: ``"auto"`` (CUDA, then MPS, then CPU), or a torch device string.
    num_threads: torch CPU threads while training (default: torch's, capped at the usable CPUs).
    """

    def __init__(self, base: str | Encoder = "minilm", mode: str = "task", *, loss: str = "auto", epochs: int = 1,
                 batch_size: int = 16, lr: float = 5e-5, head_lr: float = 2e-3, warmup: float = 0.1,
                 weight_decay: float = 0.01, patience: int | None = 2, dev_fraction: float = 0.15,
                 max_seq_length: int | None = None, freeze_embeddings: bool | None = None, seed: int = 0,
                 device: str = "auto", num_threads: int | None = None, teacher: str | Encoder | None = None,
                 start_map: bool = False):
        self.base = base
        self.mode = mode
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.warmup = warmup
        self.weight_decay = weight_decay
        self.patience = patience
        self.dev_fraction = dev_fraction
        self.max_seq_length = max_seq_length
        self.freeze_embeddings = freeze_embeddings
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.teacher = teacher
        self.start_map = start_map

    # -- parameters ----------------------------------------------------------------
    _PARAMS = ("mode", "loss", "epochs", "batch_size", "lr", "head_lr", "warmup", "weight_decay", "patience",
               "dev_fraction", "max_seq_length", "freeze_embeddings", "seed", "device", "num_threads", "teacher",
               "start_map")
    # Settings that may differ between an interrupted run and its resumption.
    _NOT_IN_RUN_KEY = ("device", "num_threads")

    def get_params(self) -> dict[str, Any]:
        return {"base": self.base, **{k: getattr(self, k) for k in self._PARAMS}}

    def _resolved_loss(self, pairs: bool = False) -> str:
        if self.mode in ("parallel", "distil"):
            if self.loss not in ("auto", "mse"):
                raise TuningError(f"{self.mode} mode uses the MSE distillation loss; loss={self.loss!r} is not one "
                                  "(use loss='auto' or 'mse')")
            return "mse"
        if self.loss == "auto":
            return "softmax" if pairs else DEFAULT_TASK_LOSS
        if self.loss not in TASK_LOSSES:
            raise TuningError(f"unknown task loss {self.loss!r}; use one of {', '.join(TASK_LOSSES)} or 'auto'")
        return self.loss

    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise TuningError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

        def integer(name: str, lo: int, none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise TuningError(f"{name} must be an integer >= {lo}{' or None' if none else ''}, got {v!r}")

        def number(name: str, lo: float, hi: float | None = None, lo_open: bool = True) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (v > lo if lo_open else v >= lo) and (hi is None or v < hi)
            if not ok:
                rng = f"{'>' if lo_open else '>='} {lo}" + (f" and < {hi}" if hi is not None else "")
                raise TuningError(f"{name} must be a number {rng}, got {v!r}")

        integer("epochs", 1)
        integer("batch_size", 2)
        integer("patience", 0, none=True)
        integer("max_seq_length", 8, none=True)
        if self.freeze_embeddings not in (None, True, False):
            raise TuningError(f"freeze_embeddings must be True, False or None, got {self.freeze_embeddings!r}")
        integer("seed", 0)
        integer("num_threads", 1, none=True)
        number("lr", 0.0)
        number("head_lr", 0.0)
        number("warmup", 0.0, 1.0, lo_open=False)
        number("weight_decay", 0.0, lo_open=False)
        number("dev_fraction", 0.0, 1.0)
        if self.mode == "distil" and self.teacher is None:
            raise TuningError("distil mode needs a teacher: the encoder whose space the student learns "
                              "(e.g. teacher='minilm', CLI --teacher minilm)")
        if self.start_map not in (True, False):
            raise TuningError(f"start_map must be True or False, got {self.start_map!r}")
        if self.mode != "distil" and self.start_map:
            raise TuningError("start_map is for distil mode (a linear layer into the teacher's space)")
        if self.mode != "distil" and self.teacher is not None:
            raise TuningError(f"teacher is for distil mode; {self.mode} mode "
                              + ("uses the base model as its own teacher" if self.mode == "parallel" else
                                 "has no teacher"))
        self._resolved_loss()

    # -- data ----------------------------------------------------------------------
    def _prepare(self, X: Any, y: Any, dev: Any) -> dict[str, Any]:
        """Validated train/dev data and the hash of what was given."""
        if self.mode == "distil":
            return prepare_distil(X, y, dev, float(self.dev_fraction), int(self.seed))
        if self.mode == "task":
            a, b = _task_examples(X, "texts")
            labels = _labels(y, len(a), "labels")
            classes = np.unique(labels)
            if classes.size < 2:
                raise DataError(f"task tuning needs at least 2 classes; all {labels.size} examples have the label "
                                f"{_native(labels[0])!r}")
            rows = [[t, *([b[i]] if b is not None else []), _native(labels[i])] for i, t in enumerate(a)]
            data: dict[str, Any] = {"texts": a, "pairs": b, "labels": labels, "classes": classes,
                                    "sha256": _digest(rows)}
            if dev is not None:
                if not (isinstance(dev, (tuple, list)) and len(dev) == 2):
                    raise DataError("dev must be a (texts, labels) tuple")
                da, db = _task_examples(dev[0], "dev texts")
                if (db is None) != (b is None):
                    raise DataError("dev examples must be of the same kind as the training examples "
                                    "(single texts or (text, text) pairs)")
                dl = _labels(dev[1], len(da), "dev labels")
                if dl.dtype.kind != labels.dtype.kind:
                    raise DataError("dev labels and training labels must be of one type (all strings or all integers)")
                unknown = sorted(set(dl.tolist()) - set(classes.tolist()))
                if unknown:
                    raise DataError(f"dev labels {', '.join(map(repr, unknown[:5]))} do not occur in the training "
                                    "labels")
                tr, dv = np.arange(len(a)), None
                data["dev"] = {"texts": da, "pairs": db, "labels": dl}
                data["dev_sha256"] = _digest([[t, *([db[i]] if db is not None else []), _native(dl[i])]
                                              for i, t in enumerate(da)])
            else:
                tr, dv = _stratified_split(labels, float(self.dev_fraction), int(self.seed))
                if dv.size == 0:
                    raise DataError(f"too few examples to hold out a dev split ({labels.size}; every class needs 2+); "
                                    "give more data or a dev set (dev=(texts, labels), CLI --dev FILE)")
                data["dev"] = {"texts": [a[i] for i in dv], "pairs": None if b is None else [b[i] for i in dv],
                               "labels": labels[dv]}
                data["dev_sha256"] = None
            for key in ("texts", "pairs"):
                if data[key] is not None:
                    data[key] = [data[key][i] for i in tr]
            data["labels"] = labels[tr]
            if np.unique(data["labels"]).size < 2:
                raise DataError("after holding out the dev split, the training data has only one class; give more "
                                "data or a dev set")
            if self._resolved_loss(b is not None) == "contrastive":
                if b is not None:
                    raise DataError("the contrastive loss compares single texts; for (text, text) pairs use "
                                    "loss='softmax'")
                _, counts = np.unique(data["labels"], return_counts=True)
                if counts.max() < 2:
                    raise DataError("the contrastive loss needs a class with at least 2 training examples "
                                    "(to form a same-label pair)")
            return data
        # parallel
        if y is None:
            _texts(X, "English texts")  # a bad X is named first
            raise DataError("parallel tuning needs translations: fit(english, translations)")
        english, trans = _pairs(X, y, hint="; row i of each must be translations of each other")
        if len(english) < 3:
            raise DataError(f"parallel tuning needs at least 3 pairs, got {len(english)}")
        data = {"english": english, "translations": trans, "sha256": _digest(zip(english, trans, strict=True))}
        if dev is not None:
            if not (isinstance(dev, (tuple, list)) and len(dev) == 2):
                raise DataError("dev must be an (english, translations) tuple")
            de, dt = _pairs(dev[0], dev[1], "dev pairs")
            if not de:
                raise DataError("the dev set is empty")
            data["dev"] = {"english": de, "translations": dt}
            data["dev_sha256"] = _digest(zip(de, dt, strict=True))
        else:
            tr, dv = _random_split(len(english), float(self.dev_fraction), int(self.seed))
            data["dev"] = {"english": [english[i] for i in dv], "translations": [trans[i] for i in dv]}
            data["dev_sha256"] = None
            data["english"], data["translations"] = [english[i] for i in tr], [trans[i] for i in tr]
        return data

    def _run_key(self, base_fp: str, data: dict[str, Any]) -> str:
        params = {k: v for k, v in self.get_params().items() if k not in self._NOT_IN_RUN_KEY and k != "base"}
        if self.teacher is not None:  # the teacher by what it is, not by how it was named
            params["teacher"] = (self.teacher_identity_ or {}).get("fingerprint") or teacher_name(self.teacher)
        payload = [base_fp, data["sha256"], data.get("dev_sha256"), params, __version__.split("+")[0]]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    # -- fitting -------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, dev: Any = None, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False, callback: Callable[[int, dict[str, Any]], None] | None = None,
            show_progress: bool | None = None) -> EncoderTuner:
        """Tune on ``X, y`` (task: texts or pairs and labels; parallel: English texts and translations).

        ``dev``: ``(X_dev, y_dev)`` for early stopping; default: a ``dev_fraction`` split of the data.
        ``checkpoint_dir``: write a checkpoint after every epoch; ``resume=True`` continues from the
        newest one there (same data and settings required). ``callback(epoch, logs)`` runs after each
        epoch's checkpoint (raising in it interrupts the run; the checkpoint is kept).
        """
        import time

        self._check_params()
        if resume and checkpoint_dir is None:
            raise TuningError("resume=True needs checkpoint_dir (the folder the interrupted run wrote)")
        data = self._prepare(X, y, dev)
        loss_name = self._resolved_loss(self.mode == "task" and data["pairs"] is not None)
        model, base_enc, label = _base_model(self.base)
        base_identity = _quiet_identity(base_enc)
        device = resolve_device(self.device)
        base_max_len = model.max_seq_length
        if self.max_seq_length is not None:
            model.max_seq_length = int(self.max_seq_length)
        freeze = self.mode == "task" if self.freeze_embeddings is None else bool(self.freeze_embeddings)
        self.frozen_ = _freeze_token_embeddings(model) if freeze else []
        self._teacher: Encoder | None = None
        self.start_map_ = None
        self.teacher_identity_: dict[str, Any] | None = None
        if self.mode == "distil":
            self._teacher = load_teacher(self.teacher)
            self.teacher_identity_ = {"given": teacher_name(self.teacher), **_quiet_identity(self._teacher)}
        key = self._run_key(base_identity.get("fingerprint", base_enc.name), data)
        ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        t0 = time.perf_counter()
        from ..mappers.neural import deterministic_torch

        # Same seed, data and thread count: the same weights (the thread count matters here: the tuned
        # weights differ between 1 and 2 threads; num_threads fixes it, and it is recorded).
        with _torch_threads(self.num_threads) as threads, deterministic_torch():
            model.to(device)
            state = self._train(model, data, loss_name, device, key, ckdir, resume, callback, show_progress)
            model.to("cpu")
        model.max_seq_length = base_max_len
        for p in model.parameters():
            p.requires_grad_(True)
        self.seconds_ = round(time.perf_counter() - t0, 2)
        self.model_ = model
        self.history_ = state["history"]
        self.best_epoch_ = state["best_epoch"]
        self.dev_scores_ = state["dev_scores"]
        self.base_identity_ = base_identity
        self.base_label_ = label
        self.loss_ = loss_name
        self.device_, self.threads_ = device, threads
        self.resumed_from_ = state["resumed_from"]
        self.data_ = {"sha256": data["sha256"], "dev_sha256": data.get("dev_sha256"),
                      "n_train": len(data["texts"] if self.mode == "task" else data["english"]),
                      "n_dev": len(data["dev"]["texts"] if self.mode == "task" else data["dev"]["english"]),
                      "dev": "given" if data.get("dev_sha256") else f"held out from the data ({self.dev_fraction})"}
        if self.mode == "distil":
            self.data_["translations"] = data["translations"] is not None
            self.data_["dev_translations"] = data["dev"]["translations"] is not None
        if self.mode == "task":
            self.classes_ = data["classes"]
            self.data_["pairs"] = data["pairs"] is not None
            self.data_["n_classes"] = int(data["classes"].size)
        ds = self.dev_scores_
        better = ds["best"] > ds["before"] if ds["higher_is_better"] else ds["best"] < ds["before"]
        if not better:
            import warnings

            warnings.warn(f"tuning did not improve the dev {ds['metric']} (before {ds['before']:.4f}, best "
                          f"{ds['best']:.4f} at epoch {ds['best_epoch']}); the untuned base may serve this task "
                          "as well or better",
                          RuntimeWarning, stacklevel=2)
        self._encoder: Encoder | None = None
        return self

    # -- results -------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TuningError("this EncoderTuner is not fitted yet; call fit(...) first")

    @property
    def encoder_(self) -> Encoder:
        """The tuned model as an :class:`Encoder` (named ``tuned:<base>:<fingerprint>``), without saving it."""
        self._check_fitted()
        if getattr(self, "_encoder", None) is None:
            probe = _ModelEncoder(self.model_, "tuned")
            fp = probe.fingerprint()
            probe.name = f"{TUNED_PREFIX}{self.base_label_}:{fp}"
            self._encoder = probe
        assert self._encoder is not None
        return self._encoder

    def metadata(self) -> dict[str, Any]:
        """What ``langalign_tuning.json`` records."""
        self._check_fitted()
        enc = self.encoder_
        params = {k: _native(v) for k, v in self.get_params().items() if k != "base"}
        params["loss"] = self.loss_
        params["teacher"] = None if self.teacher is None else teacher_name(self.teacher)
        base = self.base if isinstance(self.base, str) else self.base.name
        return {
            "format": "langalign", "kind": KIND, "format_version": FORMAT_VERSION, "langalign_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "encoder_name": enc.name, "fingerprint": enc.fingerprint(), "probe": enc.probe_signature(),
            "dim": enc.dim,
            "base": {"given": base, **self.base_identity_},
            "mode": self.mode, "parameters": params, "data": self.data_,
            # distil mode: the vectors live in the teacher's space (name, dim, fingerprint), whatever the
            # encoder's own name; encoder_identity.vector_space and SearchIndex(..., encoder=) read this.
            **({"teacher": self.teacher_identity_, "start_map": self.start_map_,
                "vector_space": {k: self.teacher_identity_.get(k) for k in ("name", "dim", "fingerprint")}}
               if self.teacher_identity_ else {}),
            "classes": [_native(c) for c in self.classes_.tolist()] if self.mode == "task" else None,
            "dev_scores": self.dev_scores_, "history": self.history_, "best_epoch": self.best_epoch_,
            "frozen_parameters": self.frozen_,
            "device": self.device_, "threads": self.threads_, "seconds": self.seconds_,
            "resumed_from_epoch": self.resumed_from_,
        }

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the tuned encoder: a sentence-transformers folder + ``langalign_tuning.json``.

        The folder may be new, empty, or a tuned encoder langalign wrote before (replaced
        atomically); anything else is refused before writing (see :func:`check_tuned_destination`).
        """
        from .._io import atomic_dir

        self._check_fitted()
        check_tuned_destination(path, overwrite)
        meta = self.metadata()
        folder = Path(path)
        with atomic_dir(folder, check=lambda p: check_tuned_destination(p, overwrite)) as tmp:
            self.model_.save(str(tmp), safe_serialization=True, create_model_card=False)
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            pickled = [f for f in files if f.lower().endswith(_PICKLE_SUFFIXES)]
            if pickled:  # pragma: no cover - sentence-transformers wrote a pickle despite safe_serialization
                raise ArtefactError(f"the model saved pickle files ({', '.join(pickled)}); refusing to write them")
            meta["files"] = files + [TUNING_METADATA]
            (tmp / TUNING_METADATA).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        return folder



# -- the one-call form -------------------------------------------------------------------
def tune_encoder(base: str | Encoder, X: Any, y: Any = None, output: str | os.PathLike | None = None, *,
                 mode: str = "task", dev: Any = None, overwrite: bool = False,
                 checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                 callback: Callable[[int, dict[str, Any]], None] | None = None,
                 show_progress: bool | None = None, **params: Any) -> Encoder:
    """Tune ``base`` on ``X, y`` and return the tuned :class:`Encoder`; with ``output``, saved there first.

    ``la.tune_encoder("minilm", texts, labels, "tuned/topic")`` (task mode) or
    ``la.tune_encoder("my-model", english, korean, "tuned/ko", mode="parallel")``. ``params`` go to
    :class:`EncoderTuner` (epochs, loss, lr, batch_size, seed, device, ...). The returned encoder
    is ``load_encoder(output)`` when saved.
    """
    if output is not None:
        check_tuned_destination(output, overwrite)  # before the work, not after it
    tuner = EncoderTuner(base, mode, **params).fit(X, y, dev=dev, checkpoint_dir=checkpoint_dir, resume=resume,
                                                   callback=callback, show_progress=show_progress)
    if output is None:
        return tuner.encoder_
    tuner.save(output, overwrite=overwrite)
    return load_encoder(os.fspath(output))
