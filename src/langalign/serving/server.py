"""Run the service with uvicorn on a socket we bind ourselves (so ``port=0`` picks a free port)."""
from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from typing import Any
from collections.abc import Callable

from ..errors import LangAlignError
from .app import create_app
from .config import ServeConfig
from .registry import Registry

log = logging.getLogger("langalign.serving")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns on TCP_NODELAY only for sockets that say they are TCP; without it
    # every response waits ~40 ms for a delayed ACK (Nagle), which was most of a request's time.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise LangAlignError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def guarded_protocol(header_timeout: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head does not arrive within
    ``header_timeout`` seconds (counted from the connection, or from the end of the previous response, to
    the end of the headers). uvicorn has no such timeout: a client trickling one header byte at a time held
    a socket for minutes. Bodies have their own timeout in the app (``limits.body_timeout_s``)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _head_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the first bytes of the next request on a kept-alive connection
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a request's headers are complete
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.cycle is None or self.cycle.response_complete:
                log.info("closing a connection whose request headers did not arrive within %g s", header_timeout)
                self.transport.close()

    return GuardedH11Protocol


def build_server(config: ServeConfig, log_level: str = "info", access_log: bool = True,
                 registry: Registry | None = None) -> tuple[Any, socket.socket, Registry]:
    """(uvicorn.Server, bound socket, registry); ``server.run(sockets=[sock])`` serves.

    ``access_log``: one line per request with its request id (logger ``langalign.serving.access``).
    """
    import uvicorn

    config.check()
    registry = registry or Registry(config)
    app = create_app(config, registry, log_requests=access_log)
    sock = bind(config.host, config.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                                           timeout_keep_alive=30, server_header=False,
                                           http=guarded_protocol(config.limits.header_timeout_s)))
    # A service that cannot load its models stops instead of answering 503 forever.
    registry.on_error = lambda: setattr(server, "should_exit", True)
    return server, sock, registry


def serve(config: ServeConfig, log_level: str = "info", access_log: bool = True,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; raises :class:`LangAlignError` if the models fail to load."""
    if not logging.getLogger().handlers:
        # langalign's own lines at the chosen level; other libraries' only when they warn
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger("langalign").setLevel(getattr(logging, log_level.upper(), logging.INFO))
    if not is_loopback(config.host) and not config.api_key:
        log.warning("listening on %s without an API key: anyone who can reach this host can use the service "
                    "(set --api-key-env or --api-key-file)", config.host)
    server, sock, registry = build_server(config, log_level, access_log)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    (announce or (lambda u: print(f"langalign: serving on {u} (loading models; GET /health answers 200 when "
                                   "ready)", file=sys.stderr, flush=True)))(url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if registry.state == "error":
        raise LangAlignError(f"the service could not load its models: {registry.error}")
