"""Saved artefacts: a folder with ``config.json`` + ``model.safetensors``.

The layout follows sentence-transformers and model2vec: parameters and facts in
JSON, arrays in safetensors. Nothing is ever unpickled, so loading a folder from
a stranger cannot run code. Writes go to a temporary folder that is renamed into
place, so a crash never leaves a half-written artefact under the real name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_dir
from ._version import ARTEFACT_FORMAT_VERSION, __version__
from .errors import ArtefactError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_artefact(folder: str | Path, config: dict[str, Any], tensors: dict[str, np.ndarray], kind: str) -> Path:
    """Write ``config`` and ``tensors`` atomically into ``folder`` (replacing it)."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ArtefactError(f"cannot save to {folder}: it exists and is not a folder")
    full = {"format": "langalign", "format_version": ARTEFACT_FORMAT_VERSION, "kind": kind,
            "langalign_version": __version__, **config}
    clean = {}
    for k, v in tensors.items():
        arr = np.ascontiguousarray(v)
        if not np.isfinite(arr).all():
            raise ArtefactError(f"refusing to save tensor {k!r}: it contains NaN or inf")
        clean[k] = arr
    with atomic_dir(folder) as tmp:
        save_file(clean, str(tmp / WEIGHTS_NAME), metadata={"format": "langalign", "kind": kind})
        (tmp / CONFIG_NAME).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def load_artefact(folder: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check an artefact folder; every failure is an :class:`ArtefactError` naming the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not folder.exists():
        raise ArtefactError(f"no artefact at {folder}: the folder does not exist")
    if not folder.is_dir():
        raise ArtefactError(f"{folder} is not a folder; a langalign artefact is a folder with {CONFIG_NAME} and {WEIGHTS_NAME}")
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise ArtefactError(f"{p} is missing; a langalign artefact needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != "langalign":
        raise ArtefactError(f"{cfg_path} is not a langalign config (no \"format\": \"langalign\")")
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ArtefactError(f"{cfg_path}: missing or invalid format_version {version!r}")
    if version > ARTEFACT_FORMAT_VERSION:
        raise ArtefactError(f"{cfg_path} was written by a newer langalign (format {version}, this release reads up to "
                            f"{ARTEFACT_FORMAT_VERSION}); upgrade langalign to load it")
    if config.get("kind") != kind:
        raise ArtefactError(f"{cfg_path} holds a {config.get('kind')!r} artefact, expected {kind!r}")
    try:
        tensors = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtefactError(f"{w_path} is corrupt or truncated: {e}") from None
    return config, tensors


def split_prefix(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The tensors under ``prefix.``, with the prefix removed."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def add_prefix(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}
