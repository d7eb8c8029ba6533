"""What a ``langalign serve`` process serves: read from flags or a JSON file, checked before anything loads.

A config file (paths are relative to the file's folder)::

    {
      "host": "127.0.0.1", "port": 8000,
      "api_key_env": "LANGALIGN_API_KEY",
      "encoders": ["use-multilingual", "minilm", "tuned/topic"],
      "aligners": {"bridge": {"path": "aligners/bridge", "source_lang": "en", "target_langs": ["ko", "ja", "zh"]}},
      "classifiers": {"topic": "models/topic"},
      "indexes": {"docs": "indexes/docs"},
      "limits": {"max_items": 256, "max_chars": 8192, "max_body_bytes": 4194304, "max_top_k": 100,
                 "max_in_flight": 64, "max_queued_texts": 2048, "max_queued_chars": 2097152,
                 "request_timeout_s": 120, "header_timeout_s": 10, "body_timeout_s": 30},
      "batch": {"max_texts": 64, "max_chars": 32768, "max_wait_ms": 5},
      "allowed_hosts": ["api.example.com"],
      "metrics": "auth"
    }

``metrics``: who may read ``GET /metrics`` (Prometheus): ``"auth"`` (the default) asks for the API
key like every route but ``/health`` (when a key is configured); ``"open"`` answers without it (a
scraper that should not hold the key; the Host rule still applies); ``"off"`` removes the route.

``allowed_hosts``: Host header values accepted besides the bound address (and, on a loopback
address, ``localhost``); ``"*"`` accepts any. It guards against DNS rebinding: a web page whose
name resolves to 127.0.0.1 must not be able to read the service.

An encoder entry is a bundled name, a hub id, or a local folder such as one written by
``langalign tune`` (the operator names it here; artefacts never load a path written in
their own configs). A relative folder is looked up next to the config file first.

The API key itself is never written in the config: it is read from an
environment variable or a file, and kept out of every repr and log line.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..encoders import BUNDLED, Encoder, canonical_encoder_name
from ..errors import DataError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_TARGET_LANGS = ("ko", "ja", "zh")
# Names of served artefacts: no ':' or '->' (those build pipeline names) and nothing path-like.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_KEYS = {"host", "port", "api_key_env", "api_key_file", "encoders", "aligners", "classifiers", "indexes",
         "limits", "batch", "force", "allowed_hosts", "metrics"}
METRICS_ACCESS = ("auth", "open", "off")
_HOST = re.compile(r"^(\*|[A-Za-z0-9_.:-]{1,253}|\[[0-9A-Fa-f:.]{2,60}\])$")


@dataclass
class Limits:
    max_items: int = 256           # texts per request
    max_chars: int = 8192          # characters per text
    max_body_bytes: int = 4 << 20  # request body
    max_top_k: int = 100
    # admission (see langalign.serving.admission): beyond these, 429 with Retry-After
    max_in_flight: int = 64               # requests being served at once
    max_queued_texts: int = 2048          # texts of admitted requests not answered yet
    max_queued_chars: int = 2 << 20       # their characters (one request of 256 x 8,192 fits)
    request_timeout_s: float = 120.0      # an admitted request is answered within this (else 503)
    header_timeout_s: float = 10.0        # a client must send a request's headers within this
    body_timeout_s: float = 30.0          # ... and its body within this (else 408)


@dataclass
class BatchSettings:
    max_texts: int = 64     # texts per encoder call when requests are batched together
    max_wait_ms: float = 5.0  # how long a batch waits for company (not when a request is alone)
    max_chars: int = 32768  # characters per encoder call: bounds how long a small request waits behind a large one


@dataclass
class AlignerSpec:
    path: Path
    source_lang: str = "en"
    target_langs: tuple[str, ...] = DEFAULT_TARGET_LANGS


@dataclass
class ServeConfig:
    """Everything a service loads; ``encoders`` may hold :class:`Encoder` objects (Python API, tests)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    encoders: list[str | Encoder] = field(default_factory=list)
    aligners: dict[str, AlignerSpec] = field(default_factory=dict)
    classifiers: dict[str, Path] = field(default_factory=dict)
    indexes: dict[str, Path] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    batch: BatchSettings = field(default_factory=BatchSettings)
    force: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    metrics: str = "auth"  # GET /metrics: "auth" (the API key, if one is set), "open" or "off"
    api_key: str | None = field(default=None, repr=False)

    def check(self) -> ServeConfig:
        """Raise a clear error for anything wrong that can be seen without loading a model."""
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise DataError(f"port must be an integer in 0..65535, got {self.port!r}")
        if not isinstance(self.host, str) or not self.host:
            raise DataError(f"host must be a non-empty string, got {self.host!r}")
        for what, table in (("aligner", self.aligners), ("classifier", self.classifiers), ("index", self.indexes)):
            for name, spec in table.items():
                if not isinstance(name, str) or not _NAME.match(name):
                    raise DataError(f"{what} name {name!r} must be 1-64 letters, digits, '.', '_' or '-' "
                                    "(it becomes part of model names)")
                path = spec.path if isinstance(spec, AlignerSpec) else spec
                if not Path(path).is_dir():
                    raise DataError(f"{what} {name!r}: {path} is not a folder (a saved langalign {what})")
        names = [n for t in (self.aligners, self.classifiers, self.indexes) for n in t]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise DataError(f"names must be unique across aligners, classifiers and indexes: {sorted(dup)}")
        for name, spec in self.aligners.items():
            for lang in (spec.source_lang, *spec.target_langs):
                if not isinstance(lang, str) or not _LANG.match(lang):
                    raise DataError(f"aligner {name!r}: {lang!r} is not a language code like 'en' or 'ko'")
        for e in self.encoders:
            if not isinstance(e, (str, Encoder)) or (isinstance(e, str) and not e.strip()):
                raise DataError(f"encoders must be encoder names, got {e!r}")
        lim = self.limits
        for k in ("max_items", "max_chars", "max_body_bytes", "max_top_k", "max_in_flight", "max_queued_texts",
                  "max_queued_chars"):
            v = getattr(lim, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DataError(f"limits.{k} must be a positive integer, got {v!r}")
        for k in ("request_timeout_s", "header_timeout_s", "body_timeout_s"):
            v = getattr(lim, k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 86400:
                raise DataError(f"limits.{k} must be a number of seconds in (0, 86400], got {v!r}")
        for k in ("max_texts", "max_chars"):
            v = getattr(self.batch, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DataError(f"batch.{k} must be a positive integer, got {v!r}")
        if not isinstance(self.allowed_hosts, list) or not all(isinstance(h, str) and _HOST.match(h)
                                                               for h in self.allowed_hosts):
            raise DataError(f"allowed_hosts must be a list of host names or addresses (or \"*\"), got "
                            f"{self.allowed_hosts!r}"[:300])
        if self.metrics not in METRICS_ACCESS:
            raise DataError(f"metrics must be one of {', '.join(repr(m) for m in METRICS_ACCESS)}, "
                            f"got {self.metrics!r}"[:200])
        if not (isinstance(self.batch.max_wait_ms, (int, float)) and 0 <= self.batch.max_wait_ms <= 1000):
            raise DataError(f"batch.max_wait_ms must be a number in 0..1000, got {self.batch.max_wait_ms!r}")
        if not (self.encoders or self.aligners or self.classifiers or self.indexes):
            raise DataError("nothing to serve: name at least one encoder, aligner, classifier or index")
        return self

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ServeConfig:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: no such config file")
        try:
            raw = json.loads(p.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{p}: not valid JSON: {e}") from None
        return cls.from_dict(raw, base_dir=p.parent, where=str(p))

    @classmethod
    def from_dict(cls, raw: Any, base_dir: str | os.PathLike = ".", where: str = "config") -> ServeConfig:
        if not isinstance(raw, dict):
            raise DataError(f"{where}: expected a JSON object")
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; known: {sorted(_KEYS)}")
        base = Path(base_dir)

        def path(v: Any, what: str) -> Path:
            if not isinstance(v, str) or not v:
                raise DataError(f"{where}: {what} must be a path string, got {v!r}")
            p = Path(v).expanduser()
            return p if p.is_absolute() else base / p

        def table(key: str) -> dict[str, Any]:
            v = raw.get(key, {})
            if not isinstance(v, dict):
                raise DataError(f"{where}: {key!r} must be an object of name -> path")
            return v

        aligners = {}
        for name, spec in table("aligners").items():
            if isinstance(spec, str):
                aligners[name] = AlignerSpec(path(spec, f"aligners.{name}"))
            elif isinstance(spec, dict):
                extra = sorted(set(spec) - {"path", "source_lang", "target_langs"})
                if extra:
                    raise DataError(f"{where}: aligners.{name}: unknown key(s) {extra}")
                langs = spec.get("target_langs", list(DEFAULT_TARGET_LANGS))
                if not isinstance(langs, list):
                    raise DataError(f"{where}: aligners.{name}.target_langs must be a list of language codes")
                aligners[name] = AlignerSpec(path(spec.get("path"), f"aligners.{name}.path"),
                                             spec.get("source_lang", "en"), tuple(langs))
            else:
                raise DataError(f"{where}: aligners.{name} must be a path or an object with \"path\"")

        def encoder(v: Any) -> Any:
            # A local folder (a tuned encoder) is relative to the file like every other path; a
            # name that already reaches that folder is kept as written (a plain folder's name is its path).
            if not isinstance(v, str) or not v.strip() or canonical_encoder_name(v) in BUNDLED:
                return v
            p = Path(v).expanduser()
            if p.is_absolute() or not (base / p).is_dir():
                return v
            try:
                same = p.is_dir() and os.path.samefile(p, base / p)
            except OSError:
                same = False
            return v if same else str(base / p)

        encoders = raw.get("encoders", [])
        if not isinstance(encoders, list):
            raise DataError(f"{where}: 'encoders' must be a list of encoder names")
        encoders = [encoder(e) for e in encoders]
        limits, batch = Limits(), BatchSettings()
        for key, obj in (("limits", limits), ("batch", batch)):
            sub = raw.get(key, {})
            if not isinstance(sub, dict):
                raise DataError(f"{where}: {key!r} must be an object")
            for k, v in sub.items():
                if not hasattr(obj, k):
                    raise DataError(f"{where}: unknown setting {key}.{k}")
                setattr(obj, k, v)
        cfg = cls(host=raw.get("host", DEFAULT_HOST), port=raw.get("port", DEFAULT_PORT), encoders=list(encoders),
                  aligners=aligners,
                  classifiers={n: path(v, f"classifiers.{n}") for n, v in table("classifiers").items()},
                  indexes={n: path(v, f"indexes.{n}") for n, v in table("indexes").items()},
                  limits=limits, batch=batch, force=bool(raw.get("force", False)),
                  allowed_hosts=raw.get("allowed_hosts", []), metrics=raw.get("metrics", "auth"))
        key_file = raw.get("api_key_file")
        cfg.api_key = read_api_key(raw.get("api_key_env"), path(key_file, "api_key_file") if key_file else None)
        return cfg


def read_api_key(env: str | None = None, file: str | os.PathLike | None = None) -> str | None:
    """The API key from an environment variable or a file (first line), or None for no key."""
    if env is not None and file is not None:
        raise DataError("give the API key through an environment variable or a file, not both")
    if env is not None:
        if not isinstance(env, str) or not env:
            raise DataError(f"api_key_env must be the name of an environment variable, got {env!r}")
        key = os.environ.get(env)
        if not key:
            raise DataError(f"the environment variable {env} (the API key) is not set or empty")
        return _check_key(key.strip(), f"${env}")
    if file is not None:
        p = Path(file)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read the API key file {p}: {type(e).__name__}") from None
        return _check_key(text.strip().split("\n")[0].strip(), str(p))
    return None


def _check_key(key: str, where: str) -> str:
    if len(key) < 16:
        raise DataError(f"the API key in {where} is shorter than 16 characters; use a long random key")
    if not key.isascii() or not key.isprintable() or " " in key:
        raise DataError(f"the API key in {where} must be printable ASCII without spaces")
    return key
