"""Saved artefacts: a folder with ``config.json`` + ``model.safetensors``.

The layout follows sentence-transformers and model2vec: parameters and facts in
JSON, arrays in safetensors. Nothing is ever unpickled, so loading a folder from
a stranger cannot run code. Writes go to a temporary folder that is renamed into
place, so a crash never leaves a half-written artefact under the real name.

Loading is defensive: every problem (missing or truncated file, invalid JSON, a
symlink leading out of the folder, tensors of the wrong dtype/shape, NaN/inf
weights, an unknown class name, a newer format) is one :class:`ArtefactError`.
No path written in a config is ever opened, and class names are looked up in
explicit registries, never imported.

Format versions: ``format_version`` is bumped whenever the layout changes; older
versions are upgraded on load by the functions in :data:`MIGRATIONS` (one step
each), newer ones are refused with a message to upgrade langalign.

- 1: the current format. Encoder entries hold ``name`` and ``dim`` and, when the
  encoder was loaded at save time, ``fingerprint`` and ``probe`` (see
  :meth:`langalign.encoders.Encoder.fingerprint`); absent keys mean "unknown" and
  are not checked, so v1 files from before fingerprints load unchanged.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_dir
from ._version import ARTEFACT_FORMAT_VERSION, __version__
from .errors import ArtefactError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# A config is a few KB; refuse absurd sizes before reading them into memory.
MAX_CONFIG_BYTES = 64 * 1024 * 1024


# format_version N -> function upgrading a version-N config dict to N+1. Empty while
# 1 is the only format; a layout change bumps ARTEFACT_FORMAT_VERSION and adds a step
# here, so artefacts from every older release keep loading.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """Upgrade ``config`` step by step to :data:`ARTEFACT_FORMAT_VERSION`."""
    from . import _version

    version: int = config["format_version"]  # an int: load_artefact checks it before migrating
    while version < _version.ARTEFACT_FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:  # pragma: no cover - a gap in the table is a packaging bug
            raise ArtefactError(f"{where}: no upgrade path from format {version}")
        config = step(dict(config))
        version += 1
        config["format_version"] = version
    return config


def _inside(folder: Path, p: Path, where: Path) -> Path:
    """``p`` resolved; it must be a regular file inside ``folder`` (symlinks must not lead out)."""
    try:
        real, root = p.resolve(strict=True), folder.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # a dangling or looping symlink
        raise ArtefactError(f"{where} cannot be resolved: {e}") from None
    if real.parent != root:
        raise ArtefactError(f"{where} is a link to {real}, outside the artefact folder; refusing to read it")
    if not real.is_file():
        raise ArtefactError(f"{where} is not a regular file")
    return real


def check_destination(folder: str | Path, kind: str, overwrite: bool = False) -> None:
    """Raise :class:`ArtefactError` unless a ``kind`` artefact may be saved at ``folder``.

    The rule (a user's files are never deleted): a folder that does not exist is
    created; an empty folder is used; a langalign artefact of the same ``kind`` (a
    folder holding only ``config.json`` with ``"format": "langalign"`` and
    ``model.safetensors``) is replaced atomically. With ``overwrite=True`` a
    langalign artefact of another kind may be replaced too. Anything else is refused
    and left untouched: a folder with any other file in it, a foreign
    ``config.json``, a file, a symbolic link, the current folder or one of its parents.
    """
    from ._io import refuse_current_folder
    from .errors import LangAlignError

    text = os.fspath(folder)
    p = Path(text)
    if not text.strip() or p.name in ("", ".", ".."):
        raise ArtefactError(f"cannot save an artefact to {text!r}: give a folder name of its own "
                            "(e.g. aligners/en-ko), not the current folder or a parent")
    try:
        refuse_current_folder(p)
    except LangAlignError as e:
        raise ArtefactError(str(e)) from None
    if p.is_symlink():
        raise ArtefactError(f"refusing to save to {p}: it is a symbolic link; give the real folder or a new name")
    if not p.exists():
        return
    if not p.is_dir():
        raise ArtefactError(f"refusing to save to {p}: it exists and is not a folder; nothing was written")
    try:
        names = sorted(e.name for e in p.iterdir())
    except OSError as e:
        raise ArtefactError(f"cannot save to {p}: its contents cannot be listed ({e.strerror or e})") from None
    if not names:
        return
    foreign = [n for n in names if n not in (CONFIG_NAME, WEIGHTS_NAME)]
    found = _artefact_kind(p / CONFIG_NAME)
    if foreign or found is None:
        shown = ", ".join(foreign[:3] or names[:3]) + (" ..." if len(foreign or names) > 3 else "")
        why = (f"it holds files that are not part of a langalign artefact ({shown})" if foreign
               else f"its {CONFIG_NAME} is not a langalign config")
        raise ArtefactError(f"refusing to replace {p}: {why}; nothing was touched. Save to a new or empty folder")
    if found != kind and not overwrite:
        raise ArtefactError(f"refusing to replace {p}: it holds a langalign {found!r} artefact, not a {kind!r}; "
                            "save to another folder, or pass overwrite=True (CLI: --overwrite) to replace it")


def _artefact_kind(cfg: Path) -> str | None:
    """The ``kind`` of a langalign config file (``""`` when it has none), or None if it is not one."""
    try:
        if not cfg.is_file() or os.path.getsize(cfg) > MAX_CONFIG_BYTES:
            return None
        config = json.loads(cfg.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or UTF-8
        return None
    if not isinstance(config, dict) or config.get("format") != "langalign":
        return None
    kind = config.get("kind")
    return kind if isinstance(kind, str) else ""


def save_artefact(folder: str | Path, config: dict[str, Any], tensors: dict[str, np.ndarray], kind: str,
                  overwrite: bool = False) -> Path:
    """Write ``config`` and ``tensors`` atomically into ``folder``.

    What may be replaced is decided by :func:`check_destination` (checked before
    writing and again just before the swap). A failed write names ``folder`` and leaves
    what was there unchanged: an ``OSError`` with its errno (``ENOSPC`` for a full disk)
    or, for other safetensors failures, an :class:`ArtefactError`.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    check_destination(folder, kind, overwrite)
    folder = Path(folder)
    full = {"format": "langalign", "format_version": ARTEFACT_FORMAT_VERSION, "kind": kind,
            "langalign_version": __version__, **config}
    clean = {}
    for k, v in tensors.items():
        arr = np.ascontiguousarray(v)
        if not np.isfinite(arr).all():
            raise ArtefactError(f"refusing to save tensor {k!r}: it contains NaN or inf")
        clean[k] = arr
    try:
        with atomic_dir(folder, check=lambda p: check_destination(p, kind, overwrite)) as tmp:
            save_file(clean, str(tmp / WEIGHTS_NAME), metadata={"format": "langalign", "kind": kind})
            (tmp / CONFIG_NAME).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except (SafetensorError, OSError) as e:
        raise _save_error(e, folder) from None
    return folder


def _save_error(e: Exception, folder: Path) -> Exception:
    """A failed write as an error naming ``folder`` (never the hidden temporary folder).

    An operating-system failure (a full disk, no permission) stays an ``OSError`` with
    its errno, whichever writer hit it (safetensors reports its own as text).
    """
    errno_, reason = getattr(e, "errno", None), getattr(e, "strerror", None)
    if not isinstance(e, OSError):
        m = re.search(r"code: (\d+).*?message: \"([^\"]*)\"", str(e))
        errno_, reason = (int(m.group(1)), m.group(2)) if m else (None, None)
    if errno_ is None:
        cls = OSError if isinstance(e, OSError) else ArtefactError
        return cls(f"cannot save the artefact to {folder}: {e}; nothing was replaced")
    return OSError(errno_, f"cannot save the artefact to {folder}: {reason or e}; nothing was replaced")


def load_artefact(folder: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check an artefact folder; every failure is an :class:`ArtefactError` naming the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not folder.exists():
        raise ArtefactError(f"no artefact at {folder}: the folder does not exist")
    if not folder.is_dir():
        raise ArtefactError(f"{folder} is not a folder; a langalign artefact is a folder with {CONFIG_NAME} "
                            f"and {WEIGHTS_NAME}")
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file() and not p.is_symlink():
            raise ArtefactError(f"{p} is missing; a langalign artefact needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    cfg_real, w_real = _inside(folder, cfg_path, cfg_path), _inside(folder, w_path, w_path)
    try:
        if os.path.getsize(cfg_real) > MAX_CONFIG_BYTES:
            raise ArtefactError(f"{cfg_path} is larger than {MAX_CONFIG_BYTES >> 20} MB; not a langalign config")
        config = json.loads(cfg_real.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{cfg_path} is not valid JSON: {e}") from None
    except RecursionError:
        raise ArtefactError(f"{cfg_path} is nested too deeply to be a langalign config") from None
    except OSError as e:
        raise ArtefactError(f"{cfg_path} cannot be read: {e}") from None
    if not isinstance(config, dict) or config.get("format") != "langalign":
        raise ArtefactError(f"{cfg_path} is not a langalign config (no \"format\": \"langalign\")")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtefactError(f"{cfg_path}: missing or invalid format_version {version!r}")
    from . import _version

    if version > _version.ARTEFACT_FORMAT_VERSION:
        raise ArtefactError(f"{cfg_path} was written by a newer langalign (format {version}, this release reads up to "
                            f"{_version.ARTEFACT_FORMAT_VERSION}); upgrade langalign to load it")
    if config.get("kind") != kind:
        raise ArtefactError(f"{cfg_path} holds a {config.get('kind')!r} artefact, expected {kind!r}")
    config = migrate_config(config, str(cfg_path))
    try:
        tensors = load_file(str(w_real))
    except (SafetensorError, OSError, ValueError, TypeError, MemoryError, OverflowError) as e:
        raise ArtefactError(f"{w_path} is corrupt or truncated: {e}") from None
    for name, arr in tensors.items():
        # Only real-valued float tensors are ever written; anything else is damage or a foreign file.
        if arr.dtype.kind != "f":
            raise ArtefactError(f"{w_path}: tensor {name!r} has dtype {arr.dtype}, expected floating point")
        if not np.isfinite(arr).all():
            raise ArtefactError(f"{w_path}: tensor {name!r} contains NaN or inf")
    return config, tensors


def split_prefix(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The tensors under ``prefix.``, with the prefix removed."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def add_prefix(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}
