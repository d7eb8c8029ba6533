"""Per-epoch checkpoints (safetensors + JSON, never pickle): save, find, load, restore."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np


from .base import TuningError


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

    from .._io import atomic_dir

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
