"""What every HTTP request passes first (plain ASGI, around the FastAPI app): its Host header, its
request id, and one access-log line.

- **Host** (DNS rebinding): a web page at ``http://attacker.example`` whose name the attacker
  points at 127.0.0.1 reaches a service on the user's machine, and its browser sends
  ``Host: attacker.example``. Only the bound address, ``localhost`` names on a loopback
  address, IP literals on a wildcard address, and the ``allowed_hosts`` of the config are
  accepted; anything else is 400 before authentication or any work.
- **Request id**: a client's ``X-Request-ID`` (1-128 of ``A-Z a-z 0-9 . _ : - / + =``) is
  kept, anything else is replaced by a fresh one; it is echoed in every response and
  written in the access log and in error logs.
- **Access log**: ``request_id client "METHOD path" status duration_ms`` (logger
  ``langalign.serving.access``).
- **Counts**: every request is counted in :class:`~.admission.ServiceStats` by route, model and
  status, and timed if it succeeded, just before the last byte of its response is handed to the
  connection: a client that has read an answer finds it in ``GET /metrics``.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from typing import Any

access_log = logging.getLogger("langalign.serving.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Routes by name in the statistics; anything else is "other" (a scanner cannot grow the counters).
ROUTES = ("/v1/embeddings", "/v1/classify", "/v1/search", "/v1/models", "/v1/models/{id}", "/health", "/metrics")


def route_of(path: str) -> str:
    """The statistics' name for a request path: one of :data:`ROUTES`, or ``"other"``."""
    if path in ROUTES:
        return path
    if path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
        return "/v1/models/{id}"
    return "other"


def _host_name(header: str) -> str | None:
    """The name part of a Host header (no port), lower-case; None if malformed."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end < 0 or (h[end + 1:] and not re.fullmatch(r":\d{1,5}", h[end + 1:])):
            return None
        return h[1:end]
    name, sep, port = h.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        h = name
    return h.rstrip(".") or None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class HostRule:
    """Which Host headers a service bound to ``bound`` answers (see the module docstring)."""

    def __init__(self, bound: str, allowed: list[str] | tuple[str, ...] = ()):
        self.any = "*" in allowed
        self.allowed = {n for n in (_host_name(a) for a in allowed if a != "*") if n}
        b = bound.strip("[]").lower()
        self.bound = b
        ip = _ip(b)
        self.loopback = b == "localhost" or (ip is not None and ip.is_loopback)
        self.wildcard = ip is not None and ip.is_unspecified

    def accepts(self, header: str | None) -> bool:
        if self.any or header is None:  # no Host at all: HTTP/1.0, never a browser
            return True
        name = _host_name(header)
        if name is None:
            return False
        if name in self.allowed or name == self.bound:
            return True
        ip = _ip(name)
        if self.loopback:
            return name == "localhost" or name.endswith(".localhost") or (ip is not None and ip.is_loopback)
        if self.wildcard:
            return ip is not None or name == "localhost"
        return False


class FrontDoor:
    """ASGI middleware: Host check, request id, access log, answered-request counts."""

    def __init__(self, app: Any, hosts: HostRule, admission: Any, log_requests: bool = True):
        self.app, self.hosts, self.admission, self.log_requests = app, hosts, admission, log_requests
        # the wrapped app's attributes (FastAPI's .state, .routes, ...) stay reachable
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        # the handlers write the served model's name here (request.state.model) for the statistics
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        counted = False
        t0 = time.perf_counter()

        def count() -> None:
            nonlocal counted
            if not counted:
                counted = True
                model = state.get("model")
                self.admission.answered(route_of(scope.get("path", "")), status,
                                        model if isinstance(model, str) else "", time.perf_counter() - t0)

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                count()  # before the client can have the answer: what it has read is already counted
            await send(message)

        try:
            host = headers.get(b"host")
            if not self.hosts.accepts(host.decode("latin-1") if host is not None else None):
                shown = host.decode("latin-1", "replace")[:100] if host is not None else ""
                await _json(send_with_id, 400, {"error": {
                    "message": f"Host {shown!r} is not an address of this service (DNS rebinding guard); the "
                               "operator can allow it with allowed_hosts in the config (CLI: --allowed-host)",
                    "type": "invalid_request_error", "param": None, "code": "invalid_host"}})
                return
            await self.app(scope, receive, send_with_id)
        finally:
            count()  # no response was sent (the client left, or the app failed): counted all the same
            path = scope.get("path", "")
            if self.log_requests:
                client = scope.get("client")
                access_log.info('%s %s "%s %s" %d %.1fms', rid, f"{client[0]}:{client[1]}" if client else "-",
                                scope.get("method"), path[:200], status, 1000 * (time.perf_counter() - t0))


async def _json(send: Any, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})
