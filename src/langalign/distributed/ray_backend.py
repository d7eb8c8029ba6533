"""Old path of :mod:`langalign.scale.ray_backend`, kept so existing imports keep working.

This module *is* ``langalign.scale.ray_backend`` (same module object, so the same classes, functions
and monkeypatch targets); new code should import from there.
"""
import sys

from ..scale.ray_backend import *  # noqa: F401,F403  (the public names, for static tools)
from ..scale.ray_backend import __all__  # noqa: F401

from ..scale import ray_backend as _module

sys.modules[__name__] = _module
