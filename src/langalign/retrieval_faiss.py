"""Old path of :mod:`langalign.scale.retrieval_faiss`, kept so existing imports keep working.

This module *is* ``langalign.scale.retrieval_faiss`` (same module object, so the same classes, functions
and monkeypatch targets); new code should import from there.
"""
import sys

from .scale.retrieval_faiss import *  # noqa: F401,F403  (the public names, for static tools)
from .scale.retrieval_faiss import __all__  # noqa: F401

from .scale import retrieval_faiss as _module

sys.modules[__name__] = _module
