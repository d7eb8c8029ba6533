"""A :class:`QueryDocEmbedder` that asks a running ``langalign serve`` over HTTP.

It speaks the service's OpenAI-compatible ``POST /v1/embeddings``: queries go to the model
``ALIGNER:to-source`` (text read by the aligner's target encoder, mapped into the source space),
documents to the aligner's source encoder, served under its own name. Which encoder that is, and
its dimension and fingerprint, come from ``GET /v1/models`` on first use. Standard library only
(``urllib``): no client package to install.
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import numpy as np

from ..errors import LangAlignError
from .embedder import QueryDocEmbedder


class ServiceError(LangAlignError):
    """The service could not be reached, or answered with an error (its message is kept)."""


class ServiceEmbedder(QueryDocEmbedder):
    """Documents and queries embedded by a ``langalign serve`` at ``base_url``.

    Parameters
    ----------
    base_url:
        the service, e.g. ``"http://127.0.0.1:8000"`` (a trailing ``/v1`` is accepted).
    aligner:
        the aligner's name in the service (``--aligner NAME=PATH``).
    api_key:
        sent as ``Authorization: Bearer KEY`` when the service requires one.
    batch_size:
        texts per request (the service's ``--max-items`` is 256 by default).
    """

    def __init__(self, base_url: str, aligner: str, api_key: str | None = None, normalize: bool = True,
                 batch_size: int = 128, timeout: float = 60.0):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(aligner, str) or not aligner:
            raise ValueError("aligner must be the name of an aligner the service loaded")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        url = base_url.rstrip("/")
        self.base_url = url[:-3] if url.endswith("/v1") else url
        self.aligner = aligner
        self.api_key = api_key
        self.normalize = bool(normalize)
        self.batch_size = batch_size
        self.timeout = float(timeout)
        self.query_model = f"{aligner}:to-source"
        self._space: dict[str, Any] | None = None
        self._document_model: str | None = None

    # -- HTTP ------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise ServiceError(f"the langalign service at {self.base_url} answered {e.code} to {method} {path}: "
                               f"{_error_message(e)}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServiceError(f"cannot reach the langalign service at {self.base_url}: {reason}") from None
        except ValueError as e:  # not JSON
            raise ServiceError(f"the service at {self.base_url} did not answer JSON to {method} {path}: {e}") from None

    def _embed(self, model: str, texts: list[str]) -> np.ndarray:
        parts = []
        for s in range(0, len(texts), self.batch_size):
            batch = texts[s : s + self.batch_size]
            out = self._request("POST", "/v1/embeddings", {"model": model, "input": batch,
                                                          "encoding_format": "base64"})
            rows = sorted(out.get("data", []), key=lambda d: d["index"])
            if len(rows) != len(batch):
                raise ServiceError(f"the service answered {len(rows)} vectors for {len(batch)} texts")
            parts.append(np.stack([_vector(r["embedding"]) for r in rows]))
        V = np.concatenate(parts).astype(np.float32, copy=False)
        if V.shape[1] != self.dim:
            raise ServiceError(f"model {model!r} answered {V.shape[1]}-d vectors; its card says {self.dim}")
        return V

    # -- QueryDocEmbedder --------------------------------------------------------------
    def _discover(self) -> None:
        cards = {c["id"]: c.get("langalign", {}) for c in self._request("GET", "/v1/models").get("data", [])}
        q = cards.get(self.query_model)
        if q is None:
            aligners = sorted({m.split(":")[0] for m in cards if m.endswith(":to-source")})
            raise ServiceError(f"the service at {self.base_url} has no aligner {self.aligner!r} with a target -> "
                               f"source map (it serves: {', '.join(aligners) or 'none'})")
        space = q.get("space")
        doc = next((mid for mid, c in cards.items() if c.get("pipeline") == "encoder" and c.get("reads") == space),
                   None)
        if doc is None:
            raise ServiceError(f"the service does not serve the documents' encoder {space!r} by name")
        self._document_model = doc
        self._space = {"name": space, "dim": int(q["dim"])}
        fp = cards[doc].get("fingerprint") or q.get("fingerprint")
        if fp:
            self._space["fingerprint"] = fp

    @property
    def space(self) -> dict[str, Any]:
        if self._space is None:
            self._discover()
        assert self._space is not None
        return self._space

    def _documents(self, texts: list[str]) -> np.ndarray:
        if self._document_model is None:
            self._discover()
        assert self._document_model is not None
        return self._embed(self._document_model, texts)

    def _queries(self, texts: list[str]) -> np.ndarray:
        self.space  # noqa: B018 - discovers the models (and fails clearly) before the first request
        return self._embed(self.query_model, texts)

    def __repr__(self) -> str:
        return f"ServiceEmbedder({self.base_url!r}, aligner={self.aligner!r})"


def _vector(e: Any) -> np.ndarray:
    if isinstance(e, str):
        return np.frombuffer(base64.b64decode(e), dtype="<f4")
    return np.asarray(e, dtype=np.float32)


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(e.read().decode("utf-8"))
        return " ".join(str(body["error"]["message"]).split())
    except Exception:  # not the OpenAI error shape: the status line is all there is
        return str(e.reason)
