"""Old path of :mod:`langalign.scale.cache`, kept so existing imports keep working.

This module *is* ``langalign.scale.cache`` (same module object, so the same classes, functions
and monkeypatch targets); new code should import from there.
"""
import sys

from .scale.cache import *  # noqa: F401,F403  (the public names, for static tools)
from .scale.cache import __all__  # noqa: F401

from .scale import cache as _module

sys.modules[__name__] = _module
