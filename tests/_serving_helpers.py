"""A real uvicorn server on 127.0.0.1:0 in a thread, and encoders whose speed a test controls."""
from __future__ import annotations

import threading
import time

import numpy as np
from _scale_helpers import text_vectors

from langalign.encoders import FunctionEncoder
from langalign.serving import Registry, ServeConfig, build_server


class ThreadServer:
    """The real uvicorn server on a socket bound to 127.0.0.1:0, in a background thread."""

    def __init__(self, config: ServeConfig, registry: Registry | None = None, access_log: bool = False):
        self.server, self.sock, self.registry = build_server(config, log_level="warning", access_log=access_log,
                                                             registry=registry)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        for _ in range(1200):  # bounded: 60 s at most
            if self.server.started and self.registry.state != "loading":
                break
            time.sleep(0.05)
        assert self.server.started and self.registry.state == "ready", self.registry.error
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    @property
    def stats(self):
        return self.registry.admission.stats


class PacedEncoder(FunctionEncoder):
    """Deterministic vectors; each call sleeps ``per_call + per_text * len(texts)`` seconds (0 until set),
    and every call's texts are recorded in ``calls``."""

    def __init__(self, name: str = "paced", dim: int = 8):
        self.per_call = 0.0
        self.per_text = 0.0
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

        def fn(texts: list[str]) -> np.ndarray:
            pause = self.per_call + self.per_text * len(texts)
            if pause:
                time.sleep(pause)
            with self._lock:
                self.calls.append(list(texts))
            return text_vectors(texts, dim)

        super().__init__(fn, name, dim)

    def texts_encoded(self, marker: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls for t in c if marker in t)
