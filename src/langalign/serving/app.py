"""The HTTP API (FastAPI): OpenAI-compatible embeddings, classification and cross-lingual search.

Request bodies are read and checked here, not by a schema library, so that every
bad request gets a 4xx answer in OpenAI's error shape naming the problem::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "input", "code": null}}

This module imports FastAPI (the ``serve`` extra); nothing else in langalign needs it.
Nothing in a request is ever used as a path: models, classifiers and indexes are
looked up by name among those the config loaded.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import threading
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .._version import __version__
from ..index import space_problem
from .config import ServeConfig
from .registry import EmbeddingModel, Registry

log = logging.getLogger("langalign.serving")
# Maps up to this many multiply-adds run on the event loop (about 1 ms); larger ones on a thread.
_INLINE_FLOPS = 4_000_000


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers


class ClientGone(Exception):
    """The client disconnected before its answer; its remaining work was dropped."""


async def _disconnected(request: Any) -> None:
    """Return once the client has gone (call only after the body has been read)."""
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            return


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def _usage(texts: list[str]) -> dict[str, int]:
    # A rough token estimate (about 4 characters per token), so OpenAI clients find the field;
    # langalign meters nothing.
    n = sum(max(1, math.ceil(len(t) / 4)) for t in texts)
    return {"prompt_tokens": n, "total_tokens": n}


class _Api:
    def __init__(self, config: ServeConfig, registry: Registry):
        self.config = config
        self.registry = registry
        self.limits = config.limits
        self.admission = registry.admission
        self._key = config.api_key.encode("utf-8") if config.api_key else None

    # -- request checks ----------------------------------------------------------------
    def auth(self, request: Any) -> None:
        if self._key is None:
            return
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'",
                           "authentication_error", code="missing_api_key")
        scheme, _, token = header.partition(" ")
        # compare_digest takes the same time wherever the first differing byte is
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8", "replace"), self._key):
            raise ApiError(401, "invalid API key", "authentication_error", code="invalid_api_key")

    def ready(self) -> None:
        if self.registry.state != "ready":
            raise ApiError(503, "the service is still loading its models; retry when GET /health answers 200"
                           if self.registry.state == "loading" else "the service failed to load its models: "
                           f"{self.registry.error}", "service_unavailable")

    async def body(self, request: Any) -> dict[str, Any]:
        # application/json only: a web page can send text/plain to any address without asking (a CORS
        # "simple request"), but not JSON, so a browser cannot be used to reach this service.
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, f"Content-Type must be application/json, got {ctype[:60] or 'none'!r}",
                           code="unsupported_media_type")
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise ApiError(400, f"invalid Content-Length header {declared[:40]!r}") from None
            if size > limit:
                raise ApiError(413, f"request body is {size} bytes; the limit is {limit}", code="request_too_large")
        buf = bytearray()

        async def read() -> None:
            async for chunk in request.stream():
                buf.extend(chunk)
                if len(buf) > limit:
                    raise ApiError(413, f"request body is larger than the limit of {limit} bytes",
                                   code="request_too_large")

        try:  # a client trickling its body holds nothing for long
            await asyncio.wait_for(read(), self.limits.body_timeout_s)
        except ClientDisconnect:
            self.admission.stats.client_gone += 1
            raise ClientGone() from None
        except asyncio.TimeoutError:
            self.admission.stats.slow_clients += 1
            raise ApiError(408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s",
                           code="request_timeout", headers={"Connection": "close"}) from None
        if not buf:
            raise ApiError(400, "request body is empty; send a JSON object")
        try:
            text = bytes(buf).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ApiError(400, f"request body is not valid UTF-8 (byte {e.start}: {e.reason})") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ApiError(400, f"request body is not valid JSON: {e.msg} (line {e.lineno}, "
                                f"column {e.colno})") from None
        except RecursionError:
            raise ApiError(400, "request body is nested too deeply") from None
        except ValueError as e:  # e.g. an integer of more than 4,300 digits (Python's int parsing limit)
            raise ApiError(400, f"request body is not acceptable JSON: {str(e).split(';')[0][:120]}") from None
        if not isinstance(obj, dict):
            raise ApiError(400, f"request body must be a JSON object, got {_json_type(obj)}")
        return obj

    def text(self, t: Any, where: str) -> str:
        if not isinstance(t, str):
            if isinstance(t, int) and not isinstance(t, bool) or (isinstance(t, list) and t and
                                                                  all(isinstance(x, int) for x in t)):
                raise ApiError(400, f"{where} looks like token ids; this service reads text. (LangChain's "
                               "OpenAIEmbeddings: pass check_embedding_ctx_length=False.)", param="input")
            raise ApiError(400, f"{where} is {_json_type(t)}, expected a string", param="input")
        if len(t) > self.limits.max_chars:
            raise ApiError(400, f"{where} has {len(t)} characters; the limit is {self.limits.max_chars}",
                           param="input", code="text_too_long")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ApiError(400, f"{where} contains an unpaired surrogate at character {e.start}", param="input") \
                from None
        return t

    def texts(self, body: dict[str, Any], field: str = "input") -> list[str]:
        if field not in body:
            raise ApiError(400, f"missing field {field!r}", param=field)
        v = body[field]
        if isinstance(v, str):
            return [self.text(v, field)]
        if not isinstance(v, list):
            raise ApiError(400, f"{field!r} must be a string or a list of strings, got {_json_type(v)}", param=field)
        if not v:
            raise ApiError(400, f"{field!r} is an empty list; send at least one text", param=field)
        if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            self.text(v, field)  # token ids: the message says so
        self.count(len(v), field)
        return [self.text(t, f"{field}[{i}]") for i, t in enumerate(v)]

    def count(self, n: int, field: str) -> None:
        if n > self.limits.max_items:
            raise ApiError(400, f"{field!r} has {n} items; the limit is {self.limits.max_items} per request",
                           param=field, code="too_many_items")

    @staticmethod
    def name(body: dict[str, Any], field: str, default: str | None = None) -> str:
        v = body.get(field, default)
        if v is None:
            raise ApiError(400, f"missing field {field!r}", param=field)
        if not isinstance(v, str) or not v:
            raise ApiError(400, f"{field!r} must be a non-empty string, got {_json_type(v)}", param=field)
        return v

    def embedding_model(self, name: str) -> EmbeddingModel:
        m = self.registry.embeddings.get(name)
        if m is None:
            known = sorted(self.registry.embeddings)
            shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise ApiError(404, f"the model {name[:200]!r} does not exist here; embedding models: {shown}",
                           param="model", code="model_not_found")
        return m

    # -- admitted work -----------------------------------------------------------------
    async def admitted(self, request: Any, texts: list[str], work: Any) -> Any:
        """Run ``work()`` for a request whose ``texts`` are admitted (else 429), within the deadline (else
        503), and drop it when the client disconnects first."""
        from .admission import Rejected

        try:
            ticket = self.admission.admit(texts)
        except Rejected as e:
            raise ApiError(429, e.message, "rate_limit_error", code=e.reason,
                           headers={"Retry-After": str(e.retry_after)}) from None
        task = asyncio.ensure_future(work())
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({task, gone}, timeout=self.limits.request_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()  # its queued batches are dropped (the batcher skips cancelled requests)
            if gone in done:
                self.admission.stats.client_gone += 1
                raise ClientGone()
            self.admission.stats.deadline_exceeded += 1
            raise ApiError(503, f"the request was not done within {self.limits.request_timeout_s:g} s; the service "
                           "is overloaded, retry later", "service_unavailable", code="deadline_exceeded",
                           headers={"Retry-After": str(self.admission.retry_after())})
        finally:
            for t in (task, gone):
                if not t.done():
                    t.cancel()
            ticket.release()

    # -- pipelines ---------------------------------------------------------------------
    async def embed(self, m: EmbeddingModel, texts: list[str]) -> np.ndarray:
        V = await self.registry.batcher(m.encoder).submit(texts)
        if m.transform is not None:
            # A map of a few rows takes microseconds: a thread hop would cost more than it saves.
            small = V.shape[0] * V.shape[1] * m.dim <= _INLINE_FLOPS
            V = m.transform(V) if small else await asyncio.to_thread(m.transform, V)
        return np.asarray(V, dtype=np.float32)

    async def embeddings(self, request: Any) -> dict[str, Any]:
        self.auth(request)
        body = await self.body(request)
        self.ready()
        m = self.embedding_model(self.name(body, "model"))
        request.state.model = m.id  # the statistics' model label
        fmt = body.get("encoding_format", "float")
        if fmt is None:
            fmt = "float"
        if fmt not in ("float", "base64"):
            raise ApiError(400, f"encoding_format must be 'float' or 'base64', got {str(fmt)[:40]!r}",
                           param="encoding_format")
        dims = body.get("dimensions")
        if dims is not None and dims != m.dim:
            raise ApiError(400, f"the model {m.id!r} gives {m.dim}-d vectors; 'dimensions' cannot change that",
                           param="dimensions")
        texts = self.texts(body)
        V = await self.admitted(request, texts, lambda: self.embed(m, texts))
        if fmt == "base64":
            rows: list[Any] = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in V]
        else:
            rows = V.tolist()
        return {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": r}
                                           for i, r in enumerate(rows)],
                "model": m.id, "usage": _usage(texts)}

    async def classify(self, request: Any) -> dict[str, Any]:
        self.auth(request)
        body = await self.body(request)
        self.ready()
        name = self.name(body, "model")
        c = self.registry.classifiers.get(name)
        if c is None:
            raise ApiError(404, f"no classifier {name[:200]!r} here; classifiers: "
                           f"{', '.join(sorted(self.registry.classifiers)) or 'none'}", param="model",
                           code="model_not_found")
        request.state.model = name
        if c.pair_task:
            v = body.get("input")
            if not isinstance(v, list) or not v:
                raise ApiError(400, f"the classifier {name!r} takes sentence pairs: 'input' must be a non-empty list "
                               "of [text, text] pairs", param="input")
            self.count(len(v), "input")
            firsts, seconds = [], []
            for i, p in enumerate(v):
                if not (isinstance(p, list) and len(p) == 2):
                    raise ApiError(400, f"input[{i}] must be a [text, text] pair, got {_json_type(p)}", param="input")
                firsts.append(self.text(p[0], f"input[{i}][0]"))
                seconds.append(self.text(p[1], f"input[{i}][1]"))
            texts = firsts + seconds
        else:
            texts = self.texts(body)
        async def work() -> tuple[list[Any], np.ndarray]:
            V = await self.registry.batcher(c.encoder).submit(texts)
            return await asyncio.to_thread(_predict, c.classifier, V, c.pair_task)

        labels, probs = await self.admitted(request, texts, work)
        return {"object": "list", "model": name,
                "data": [{"object": "classification", "index": i, "label": lab,
                          "probabilities": {str(k): float(p) for k, p in zip(c.classes, row, strict=True)}}
                         for i, (lab, row) in enumerate(zip(labels, probs, strict=True))],
                "usage": _usage(texts)}

    async def search(self, request: Any) -> dict[str, Any]:
        self.auth(request)
        body = await self.body(request)
        self.ready()
        name = self.name(body, "index")
        s = self.registry.indexes.get(name)
        if s is None:
            raise ApiError(404, f"no index {name[:200]!r} here; indexes: "
                           f"{', '.join(sorted(self.registry.indexes)) or 'none'}", param="index",
                           code="index_not_found")
        m = self.embedding_model(self.name(body, "model", s.default_model))
        request.state.model = m.id
        problem = space_problem(s.index.encoder_identity_, m.space)
        if problem:
            raise ApiError(400, f"the model {m.id!r} gives vectors in the {m.space.get('name')!r} space, but the index "
                           f"{name!r} holds {s.index.encoder_name!r} vectors ({problem}); use a model mapping into "
                           f"that space, e.g. an aligner's 'to-source' model", param="model")
        top_k = body.get("top_k", 10)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= self.limits.max_top_k:
            raise ApiError(400, f"top_k must be an integer in 1..{self.limits.max_top_k}, got {top_k!r}"[:200],
                           param="top_k")
        csls = body.get("csls", False)
        if not isinstance(csls, bool):
            raise ApiError(400, f"csls must be true or false, got {_json_type(csls)}", param="csls")
        field = "query" if "query" in body or "input" not in body else "input"
        texts = self.texts(body, field)
        if csls and s.index.csls_info_ is None and len(texts) < s.index.neighbourhood_k:
            raise ApiError(400, f"the index {name!r} has no CSLS reference queries, so CSLS needs at least "
                           f"{s.index.neighbourhood_k} queries per request (or calibrate the index)", param="csls")
        async def work() -> list[list[dict[str, Any]]]:
            V = await self.embed(m, texts)
            return await asyncio.to_thread(_search, s.index, V, top_k, csls)

        hits = await self.admitted(request, texts, work)
        return {"object": "list", "index": name, "model": m.id,
                "data": [{"object": "search_result", "index": i, "hits": h} for i, h in enumerate(hits)],
                "usage": _usage(texts)}


def _predict(clf: Any, V: np.ndarray, pair: bool) -> tuple[list[Any], np.ndarray]:
    if pair:
        n = V.shape[0] // 2
        V = np.concatenate([V[:n], V[n:]], axis=1)
    F = clf._features(V, pair, clf.input_vectors)
    labels = [x.item() if hasattr(x, "item") else x for x in clf.head_.predict(F)]
    return labels, np.asarray(clf.head_.predict_proba(F), dtype=np.float64)


def _search(index: Any, V: np.ndarray, top_k: int, csls: bool) -> list[list[dict[str, Any]]]:
    scores, rows = index.search_vectors(V, top_k, csls=csls)
    flat = sorted({int(r) for r in rows.ravel()})
    docs = dict(zip(flat, index.documents(flat), strict=True))
    return [[{"id": docs[int(r)][0], "text": docs[int(r)][1], "score": float(sc), "rank": j + 1}
             for j, (sc, r) in enumerate(zip(srow, rrow, strict=True))]
            for srow, rrow in zip(scores, rows, strict=True)]


def create_app(config: ServeConfig, registry: Registry | None = None, log_requests: bool = False) -> Any:
    """The ASGI app. Models load on a background thread at startup; ``GET /health`` says when they are ready.

    Every request passes :class:`~.frontdoor.FrontDoor` first (Host check, request id, access log when
    ``log_requests``); the FastAPI app is its ``.app``.
    """
    from .admission import Rejected
    from .frontdoor import FrontDoor, HostRule

    config.check()
    registry = registry or Registry(config)
    api = _Api(config, registry)

    @asynccontextmanager
    async def lifespan(app: Any):
        if registry.state == "loading":
            threading.Thread(target=registry.load_safely, name="langalign-load", daemon=True).start()
        yield
        registry.close()

    app = FastAPI(title="langalign", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.registry = registry

    def error(status: int, message: str, type: str, param: str | None = None, code: str | None = None,
              headers: dict[str, str] | None = None) -> Any:
        return JSONResponse({"error": {"message": message, "type": type, "param": param, "code": code}},
                            status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> Any:
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else dict(e.headers or {}) or None
        return error(e.status, e.message, e.type, e.param, e.code, headers)

    @app.exception_handler(ClientGone)
    async def _client_gone(request: Request, e: Exception) -> Any:
        return error(499, "the client closed the connection", "client_closed_request")  # nobody reads it

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: Any) -> Any:
        kinds = {404: "not_found_error", 405: "invalid_request_error"}
        msg = {404: f"no such endpoint: {request.method} {request.url.path[:200]}",
               405: f"method {request.method} is not allowed on {request.url.path[:200]}"}.get(e.status_code,
                                                                                              str(e.detail))
        return error(e.status_code, msg, kinds.get(e.status_code, "invalid_request_error"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: Any) -> Any:
        return error(400, f"invalid request: {str(e)[:300]}", "invalid_request_error")

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception) -> Any:
        log.exception("internal error on %s %s (request id %s)", request.method, request.url.path,
                      getattr(request.state, "request_id", "-"))
        return error(500, f"internal error ({type(e).__name__}); the service keeps running", "internal_error")

    async def counted(handler: Any, request: Request) -> Any:
        try:
            registry.admission.enter()  # one event loop: no lock needed
        except Rejected as e:  # before reading the body: a flood costs nothing but this answer
            raise ApiError(429, e.message, "rate_limit_error", code=e.reason,
                           headers={"Retry-After": str(e.retry_after)}) from None
        try:
            return JSONResponse(await handler(request))
        finally:
            registry.admission.leave()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        return await counted(api.embeddings, request)

    @app.post("/v1/classify")
    async def classify(request: Request) -> Any:
        return await counted(api.classify, request)

    @app.post("/v1/search")
    async def search(request: Request) -> Any:
        return await counted(api.search, request)

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        api.auth(request)
        api.ready()
        return JSONResponse({"object": "list", "data": registry.model_cards()})

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str, request: Request) -> Any:
        api.auth(request)
        api.ready()
        for card in registry.model_cards():
            if card["id"] == model_id:
                return JSONResponse(card)
        raise ApiError(404, f"the model {model_id[:200]!r} does not exist here", param="model", code="model_not_found")

    if config.metrics != "off":
        from .metrics import CONTENT_TYPE, render

        @app.get("/metrics")
        async def metrics(request: Request) -> Any:
            # Not behind admission: an overloaded service is when its metrics matter most, and a scrape is a
            # read of counters on the event loop. The key rule is config.metrics ("auth": the API's key).
            if config.metrics == "auth":
                api.auth(request)
            return Response(render(registry), media_type=CONTENT_TYPE)

    @app.get("/health")
    async def health() -> Any:
        body: dict[str, Any] = {"status": {"ready": "ok"}.get(registry.state, registry.state),
                                "version": __version__}
        if registry.state == "ready":
            body["models"] = len(registry.embeddings) + len(registry.classifiers) + len(registry.indexes)
        if registry.error:
            body["error"] = registry.error
        return JSONResponse(body, status_code=200 if registry.state == "ready" else 503)

    return FrontDoor(app, HostRule(config.host, config.allowed_hosts), registry.admission, log_requests)
