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

Nothing is allocated from a file before it is checked: the config's values are
validated and turned into the exact tensor names and shapes they imply (each
artefact class states them through the ``expected`` hook of :func:`load_artefact`),
then the safetensors header (8-byte length + JSON, size-capped) is read on its own
and compared with them, and with the file size. Only a file that matches is loaded,
so neither an edited config (``hidden_dim: 16000``) nor a sparse file whose header
claims a 30000 x 30000 tensor can make a load take gigabytes.

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
import math
import os
import re
import stat
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
# A weights header is a few KB (a 6-layer MLP aligner: ~2 KB). Safetensors itself allows 100 MB.
MAX_HEADER_BYTES = 16 * 1024 * 1024
# Bytes per element of the safetensors dtypes; only the float ones are ever written.
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
                "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}
_FLOAT_DTYPES = ("F16", "F32", "F64")

# What a config implies about its tensors: name -> (shape, the config fields that fix it).
TensorSpec = dict[str, tuple[tuple[int, ...], str]]


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


def check_destination_name(folder: str | os.PathLike) -> Path:
    """The checks of :func:`check_destination` that do not depend on the folder's contents: a name of its own."""
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
    return p


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
    p = check_destination_name(folder)
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
    found = artefact_kind(p / CONFIG_NAME)
    if foreign or found is None:
        shown = ", ".join(foreign[:3] or names[:3]) + (" ..." if len(foreign or names) > 3 else "")
        why = (f"it holds files that are not part of a langalign artefact ({shown})" if foreign
               else f"its {CONFIG_NAME} is not a langalign config")
        raise ArtefactError(f"refusing to replace {p}: {why}; nothing was touched. Save to a new or empty folder")
    if found != kind and not overwrite:
        raise ArtefactError(f"refusing to replace {p}: it holds a langalign {found!r} artefact, not a {kind!r}; "
                            "save to another folder, or pass overwrite=True (CLI: --overwrite) to replace it")


def artefact_kind(cfg: Path) -> str | None:
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
        raise save_error(e, folder) from None
    return folder


def save_error(e: Exception, folder: Path) -> Exception:
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


def _check_entry(p: Path) -> None:
    """``p`` must be a file (or a link, resolved later); say what it is when it is not."""
    try:
        mode = p.lstat().st_mode
    except FileNotFoundError:
        raise ArtefactError(f"{p} is missing; a langalign artefact needs {CONFIG_NAME} and {WEIGHTS_NAME}") from None
    except OSError as e:
        raise ArtefactError(f"{p} cannot be read: {e}") from None
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return
    what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")
    raise ArtefactError(f"{p} is {what}, not a file; a langalign artefact needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                        "as regular files")


def read_config_file(real: Path | None, where: Path, kind: str, what: str = "a langalign config",
                     max_bytes: int = MAX_CONFIG_BYTES, data: bytes | None = None) -> dict[str, Any]:
    """The checked contents of a langalign ``config.json`` (search indexes use it too).

    ``real`` is the file, already resolved inside its folder (or ``data``, its bytes, already
    read); ``where`` names it in the errors, ``what`` says what it should be (``"an index
    config"``). Refused, each with one :class:`ArtefactError`: a file over ``max_bytes``, invalid JSON or UTF-8, no
    ``"format": "langalign"``, a missing or newer ``format_version``, another ``kind``.
    The config is returned as written (no migration: the caller's format decides that).
    """
    from . import _version

    try:
        if data is None:
            assert real is not None
            if os.path.getsize(real) > max_bytes:
                raise ArtefactError(f"{where} is larger than {max_bytes >> 20} MB; not {what}")
            data = real.read_bytes()
        elif len(data) > max_bytes:
            raise ArtefactError(f"{where} is larger than {max_bytes >> 20} MB; not {what}")
        config = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtefactError(f"{where} is not valid JSON: {e}") from None
    except RecursionError:
        raise ArtefactError(f"{where} is nested too deeply to be {what}") from None
    except OSError as e:
        raise ArtefactError(f"{where} cannot be read: {e}") from None
    if not isinstance(config, dict) or config.get("format") != "langalign":
        raise ArtefactError(f"{where} is not a langalign config (no \"format\": \"langalign\")")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtefactError(f"{where}: missing or invalid format_version {version!r}")
    if version > _version.ARTEFACT_FORMAT_VERSION:
        raise ArtefactError(f"{where} was written by a newer langalign (format {version}, this release reads up to "
                            f"{_version.ARTEFACT_FORMAT_VERSION}); upgrade langalign to load it")
    if config.get("kind") != kind:
        raise ArtefactError(f"{where} holds a {config.get('kind')!r} artefact, expected {kind!r}")
    return config


def load_artefact(folder: str | Path, kind: str,
                  expected: Callable[[dict[str, Any], str], TensorSpec] | None = None,
                  ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check an artefact folder; every failure is an :class:`ArtefactError` naming the file.

    ``expected(config, where)`` validates the config and returns the tensors it implies
    (:data:`TensorSpec`); the weights header must match it exactly before any tensor is
    read. Without it only the header's own consistency is checked.
    """
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
        _check_entry(p)
    cfg_real, w_real = _inside(folder, cfg_path, cfg_path), _inside(folder, w_path, w_path)
    config = read_config_file(cfg_real, cfg_path, kind)
    config = migrate_config(config, str(cfg_path))
    spec = expected(config, str(cfg_path)) if expected is not None else None
    header = read_header(w_real, w_path)
    if spec is not None:
        check_header(header, spec, w_path, cfg_path)
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


def read_header(path: Path, where: Path | str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The tensors a safetensors file declares, ``name -> (dtype, shape)``, without reading their data.

    Checks what the format requires: a capped header length, valid JSON, known
    dtypes, offsets whose span equals shape x dtype size, and tensors that tile the
    data region exactly (no gaps, no overlap, nothing beyond or short of the file end).
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ArtefactError(f"{where} is corrupt or truncated: {size} bytes, too short for a safetensors "
                                    "header")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES:
                raise ArtefactError(f"{where} is corrupt: its header claims {n} bytes (limit "
                                    f"{MAX_HEADER_BYTES >> 20} MB); not a langalign weights file")
            if 8 + n > size:
                raise ArtefactError(f"{where} is corrupt or truncated: the header claims {n} bytes but the file "
                                    f"has {size}")
            raw = f.read(n)
    except OSError as e:
        raise ArtefactError(f"{where} cannot be read: {e}") from None

    def no_duplicates(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ArtefactError(f"{where} is corrupt: its header names a tensor twice")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtefactError(f"{where} is corrupt or truncated: the header is not valid JSON ({e})") from None
    except RecursionError:
        raise ArtefactError(f"{where} is corrupt: the header is nested too deeply") from None
    if not isinstance(header, dict):
        raise ArtefactError(f"{where} is corrupt: the header is not a JSON object")
    data_len = size - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not (isinstance(info, dict) and isinstance(info.get("dtype"), str) and isinstance(info.get("shape"), list)
                and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2):
            raise ArtefactError(f"{where} is corrupt: malformed header entry for tensor {name!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPE_BYTES:
            raise ArtefactError(f"{where} is corrupt: tensor {name!r} has unknown dtype {dtype!r}")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape + offsets):
            raise ArtefactError(f"{where} is corrupt: tensor {name!r} has a malformed shape or offsets")
        begin, end = offsets
        nbytes = math.prod(shape) * _DTYPE_BYTES[dtype]
        if end < begin or end - begin != nbytes:
            raise ArtefactError(f"{where} is corrupt: tensor {name!r} declares shape {tuple(shape)} ({nbytes} bytes "
                                f"of {dtype}) but its data offsets span {end - begin} bytes")
        spans.append((begin, end, name))
        out[name] = (dtype, tuple(shape))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ArtefactError(f"{where} is corrupt: the data of tensor {name!r} starts at byte {begin}, expected "
                                f"{pos} (tensors overlap or leave a gap)")
        pos = end
    if pos != data_len:
        raise ArtefactError(f"{where} is corrupt or truncated: its tensors declare {pos} bytes of data but the file "
                            f"holds {data_len} after the header")
    return out


def check_header(header: dict[str, tuple[str, tuple[int, ...]]], spec: TensorSpec, where: Path | str,
                 config_path: Path | str) -> None:
    """The declared tensors must be exactly those ``spec`` (from the config) implies: names, float dtypes, shapes."""
    cfg = Path(config_path).name
    for name, (shape, fields) in spec.items():  # first what is there: an oversized tensor is the likeliest news
        if name not in header:
            continue
        dtype, got = header[name]
        if dtype not in _FLOAT_DTYPES:
            raise ArtefactError(f"{where}: tensor {name!r} has dtype {dtype}, expected floating point")
        if tuple(got) != tuple(shape):
            raise ArtefactError(f"{where}: tensor {name!r} has shape {tuple(got)}, but {cfg} ({fields}) implies "
                                f"{tuple(shape)}")
    missing = [k for k in spec if k not in header]
    if missing:
        k = missing[0]
        raise ArtefactError(f"{where}: tensor {k!r} is missing ({len(missing)} missing in all); {cfg} "
                            f"({spec[k][1]}) implies it with shape {spec[k][0]}")
    extra = [k for k in header if k not in spec]
    if extra:
        shown = ", ".join(repr(k) for k in extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise ArtefactError(f"{where} holds tensor(s) that {cfg} does not describe: {shown}; refusing to load them")


def check_tensors(tensors: dict[str, Any], spec: TensorSpec, owner: str) -> None:
    """Loaded tensors must match ``spec``: the same names, float dtype, the implied shapes, finite values."""
    if not isinstance(tensors, dict):
        raise ArtefactError(f"{owner}: tensors must be a dict of arrays, got {type(tensors).__name__}")
    for name, (shape, fields) in spec.items():
        if name not in tensors:
            raise ArtefactError(f"{owner}: tensor {name!r} is missing from the weights file")
        arr = tensors[name]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise ArtefactError(f"{owner}: tensor {name!r} has dtype {getattr(arr, 'dtype', type(arr).__name__)}, "
                                "expected float")
        if tuple(arr.shape) != tuple(shape):
            raise ArtefactError(f"{owner}: tensor {name!r} has shape {tuple(arr.shape)}, expected {tuple(shape)} "
                                f"(from {fields})")
        if not np.isfinite(arr).all():
            raise ArtefactError(f"{owner}: tensor {name!r} contains NaN or inf")
    extra = sorted(set(tensors) - set(spec))
    if extra:
        raise ArtefactError(f"{owner}: unexpected tensor(s) {extra[:5]} that the config does not describe")


def prefix_spec(spec: TensorSpec, prefix: str) -> TensorSpec:
    return {f"{prefix}.{k}": v for k, v in spec.items()}


def split_prefix(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The tensors under ``prefix.``, with the prefix removed."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def add_prefix(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}
