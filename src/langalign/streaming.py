"""Old path of :mod:`langalign.scale.streaming`, kept so existing imports keep working.

This module *is* ``langalign.scale.streaming`` (same module object, so the same classes, functions
and monkeypatch targets); new code should import from there.
"""
import sys

from .scale.streaming import *  # noqa: F401,F403  (the public names, for static tools)
from .scale.streaming import __all__  # noqa: F401

from .scale import streaming as _module

sys.modules[__name__] = _module
