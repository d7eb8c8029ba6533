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


def build_server(config: ServeConfig, log_level: str = "info", access_log: bool = True,
                 registry: Registry | None = None) -> tuple[Any, socket.socket, Registry]:
    """(uvicorn.Server, bound socket, registry); ``server.run(sockets=[sock])`` serves."""
    import uvicorn

    config.check()
    registry = registry or Registry(config)
    app = create_app(config, registry)
    sock = bind(config.host, config.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="on",
                                           timeout_keep_alive=30, server_header=False))
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
