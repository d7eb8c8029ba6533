"""Old path of :mod:`langalign.scale.sharded_fit`, kept so existing imports keep working.

This module *is* ``langalign.scale.sharded_fit`` (same module object, so the same classes, functions
and monkeypatch targets); new code should import from there.
"""
import sys

from .scale.sharded_fit import *  # noqa: F401,F403  (the public names, for static tools)
from .scale.sharded_fit import __all__  # noqa: F401

from .scale import sharded_fit as _module

sys.modules[__name__] = _module
