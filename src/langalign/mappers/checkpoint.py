"""Training checkpoints for the neural mappers: safetensors + JSON, written atomically.

Layout of a checkpoint folder::

    DIR/epoch-00007/state.safetensors   weights, best weights, Adam moments, RNG states (uint8)
    DIR/epoch-00007/state.json          epoch, done, history, best epoch/loss, bad-epoch count,
                                        numpy RNG state, optimizer scalars, run key

Each epoch goes to a *new* folder built under a temporary name and renamed into
place, and older folders are removed only afterwards: killed at any instant
(Ctrl-C, SIGKILL, power loss before the rename), the folder still holds the last
complete checkpoint. Loading takes the newest folder that reads back cleanly.

Nothing is pickled and ``torch.load`` is never used: tensors go through
safetensors, scalars through JSON. The ``run key`` (a hash of the training pairs,
the mapper class and its parameters) ties a checkpoint to its run, so resuming
with other data or settings is refused instead of silently mixing the two.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_dir
from ..errors import LangAlignError

FORMAT = "langalign-checkpoint"
VERSION = 1
_DIR_RE = re.compile(r"^epoch-(\d{5,})$")
# Parameters that may change between an interrupted run and its resumption.
_NOT_IN_KEY = ("device", "epochs")


class CheckpointError(LangAlignError, ValueError):
    """A checkpoint folder cannot be used to resume this run."""


def run_key(X: np.ndarray, Y: np.ndarray, params: dict[str, Any], cls_name: str) -> str:
    """The key of an in-memory run: a hash of the training pairs, the class and its parameters."""
    h = hashlib.sha256()
    for A in (X, Y):
        A = np.ascontiguousarray(A, dtype=np.float32)
        h.update(repr(A.shape).encode())
        h.update(A.data.cast("B"))  # A.data: the array's memoryview (no copy)
    return run_key_from_digest(h.hexdigest(), params, cls_name)


def run_key_from_digest(data_digest: str, params: dict[str, Any], cls_name: str) -> str:
    """The key of a run whose data are identified by ``data_digest`` (e.g. shard checksums)."""
    h = hashlib.sha256(data_digest.encode())
    kept = {k: v for k, v in params.items() if k not in _NOT_IN_KEY}
    h.update(json.dumps([cls_name, kept], sort_keys=True, default=str).encode())
    return h.hexdigest()


def _epoch_dirs(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = _DIR_RE.match(p.name)
        if m and p.is_dir() and not p.is_symlink():
            out.append((int(m.group(1)), p))
    return sorted(out)


def clear(folder: Path) -> None:
    """Remove the checkpoints of an earlier run (a fresh, non-resumed run replaces them)."""
    for _, p in _epoch_dirs(folder):
        shutil.rmtree(p, ignore_errors=True)


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def save(folder: Path, key: str, *, epoch: int, done: bool, net: Any, opt: Any, gen: Any, rng: np.random.Generator,
         device: str, history: list[dict], best: tuple, bad_epochs: int) -> Path:
    import torch
    from safetensors.numpy import save_file

    tensors: dict[str, np.ndarray] = {}
    for k, v in net.state_dict().items():
        tensors[f"net.{k}"] = _np(v)
    for k, v in best[2].items():
        tensors[f"best.{k}"] = _np(v)
    opt_sd = opt.state_dict()
    opt_meta: dict[str, Any] = {"param_groups": _jsonable(opt_sd["param_groups"]), "state": {}}
    for pid, st in opt_sd["state"].items():
        shapes = {}
        for name, val in st.items():
            if torch.is_tensor(val):
                arr = _np(val)
                shapes[name] = [list(arr.shape), str(arr.dtype)]
                tensors[f"opt.{pid}.{name}"] = arr.reshape(-1) if arr.ndim == 0 else arr
            else:
                shapes[name] = ["scalar", val]
        opt_meta["state"][str(pid)] = shapes
    tensors["rng.torch"] = _np(torch.get_rng_state())
    tensors["rng.generator"] = _np(gen.get_state())
    if str(device).startswith("cuda"):
        tensors["rng.cuda"] = _np(torch.cuda.get_rng_state(torch.device(device)))
    meta = {
        "format": FORMAT, "version": VERSION, "run_key": key, "epoch": int(epoch), "done": bool(done),
        "history": history, "best_val_loss": float(best[0]), "best_epoch": int(best[1]),
        "bad_epochs": int(bad_epochs), "numpy_rng": rng.bit_generator.state, "optimizer": opt_meta,
    }
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"epoch-{epoch:05d}"
    with atomic_dir(target) as tmp:
        save_file(tensors, str(tmp / "state.safetensors"), metadata={"format": FORMAT})
        (tmp / "state.json").write_text(json.dumps(meta), encoding="utf-8")
    for e, p in _epoch_dirs(folder):  # only now that the new one is in place
        if e != epoch:
            shutil.rmtree(p, ignore_errors=True)
    return target


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    from safetensors.numpy import load_file

    meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not a langalign checkpoint")
    if int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"checkpoint version {meta.get('version')} is newer than this langalign")
    return meta, load_file(str(path / "state.safetensors"))


def load_latest(folder: Path, key: str) -> dict[str, Any] | None:
    """The newest checkpoint in ``folder`` that reads back cleanly, or None if there is none."""
    errors = []
    for _epoch, path in reversed(_epoch_dirs(folder)):
        try:
            meta, tensors = _read(path)
        except Exception as e:  # a damaged newest checkpoint: fall back to an older one
            errors.append(f"{path.name}: {type(e).__name__}: {e}")
            continue
        if meta.get("run_key") != key:
            raise CheckpointError(f"the checkpoint in {folder} was made for other training pairs or mapper "
                                  "parameters; resume with the same inputs and settings, or use a new checkpoint "
                                  "folder (or drop resume to start afresh)")
        return {"meta": meta, "tensors": tensors, "path": str(path)}
    if errors:
        raise CheckpointError(f"no readable checkpoint in {folder}: {'; '.join(errors[:3])}")
    return None


def restore(state: dict[str, Any], net: Any, opt: Any, gen: Any, rng: np.random.Generator,
            device: str) -> tuple[list[dict], tuple, int, int, bool]:
    """Put a loaded checkpoint back into the training objects.

    Returns ``(history, best, bad_epochs, next_epoch, done)``.
    """
    import torch

    meta, tensors = state["meta"], state["tensors"]
    where = state["path"]
    try:
        net_sd = {k[4:]: torch.from_numpy(v.copy()) for k, v in tensors.items() if k.startswith("net.")}
        best_sd = {k[5:]: torch.from_numpy(v.copy()).to(device) for k, v in tensors.items() if k.startswith("best.")}
        net.load_state_dict(net_sd)
        opt_sd = opt.state_dict()
        new_state: dict[int, dict[str, Any]] = {}
        for pid, shapes in meta["optimizer"]["state"].items():
            st: dict[str, Any] = {}
            for name, (shape, dtype) in shapes.items():
                if shape == "scalar":
                    st[name] = dtype
                    continue
                arr = tensors[f"opt.{pid}.{name}"].reshape(shape).astype(dtype)
                t = torch.from_numpy(arr.copy())
                # Adam keeps "step" on the CPU unless capturable/fused; moments live with the weights.
                st[name] = t if name == "step" else t.to(device)
            new_state[int(pid)] = st
        opt_sd["state"] = new_state
        opt.load_state_dict(opt_sd)
        torch.set_rng_state(torch.from_numpy(tensors["rng.torch"].copy()))
        gen.set_state(torch.from_numpy(tensors["rng.generator"].copy()))
        if "rng.cuda" in tensors and str(device).startswith("cuda"):
            torch.cuda.set_rng_state(torch.from_numpy(tensors["rng.cuda"].copy()), torch.device(device))
        rng.bit_generator.state = meta["numpy_rng"]
        history = list(meta["history"])
        best = (float(meta["best_val_loss"]), int(meta["best_epoch"]), best_sd)
        return history, best, int(meta["bad_epochs"]), int(meta["epoch"]) + 1, bool(meta["done"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {where} does not match this mapper ({type(e).__name__}: {e}); "
                              "use a new checkpoint folder") from None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    return repr(obj)
