"""Optional third-party packages, imported only when an integration is used.

``langalign.integrations`` itself imports none of them, so ``import langalign`` stays light and
a missing package is one line naming the extra that installs it.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import LangAlignError


class MissingExtraError(LangAlignError, ImportError):
    """An integration's package is not installed; the message names the pip extra."""


def require(module: str, extra: str, what: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` saying ``pip install 'langalign[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise missing(e, module, extra, what, package) from None


def missing(e: ImportError, module: str, extra: str, what: str, package: str | None = None) -> Exception:
    """The error to raise for ``e``, met importing ``module``: a one-line :class:`MissingExtraError`
    when the package itself is absent, else ``e`` (a broken import inside an installed package)."""
    top = module.split(".")[0]
    name = getattr(e, "name", None) or top
    if name.split(".")[0] != top:
        return e
    package = package or top.replace("_", "-")
    return MissingExtraError(f"{what} needs the {package} package: pip install 'langalign[{extra}]'")
