"""``langalign serve``: an HTTP service (FastAPI + uvicorn) over saved aligners, classifiers and indexes.

Needs the ``serve`` extra: ``pip install 'langalign[serve]'``. Endpoints: ``POST /v1/embeddings``
(OpenAI-compatible), ``POST /v1/classify``, ``POST /v1/search``, ``GET /v1/models``, ``GET /health``,
``GET /metrics`` (Prometheus).
"""
from .config import AlignerSpec, BatchSettings, Limits, ServeConfig, read_api_key
from .registry import Registry

__all__ = ["ServeConfig", "AlignerSpec", "Limits", "BatchSettings", "Registry", "read_api_key", "create_app",
           "serve", "build_server"]


def create_app(*args, **kw):
    """The ASGI app (see :func:`langalign.serving.app.create_app`); imports FastAPI on first use."""
    from .app import create_app as _create

    return _create(*args, **kw)


def serve(*args, **kw):
    from .server import serve as _serve

    return _serve(*args, **kw)


def build_server(*args, **kw):
    from .server import build_server as _build

    return _build(*args, **kw)
