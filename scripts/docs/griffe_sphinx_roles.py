"""A griffe extension for the API reference: Sphinx roles in docstrings become code spans.

The docstrings use numpy style with Sphinx cross-reference roles (``:class:`~langalign.encoders.Encoder```).
mkdocstrings does not read roles, so they would show as raw text; here each becomes inline code naming the
object (the last component when the target starts with ``~``, as Sphinx shows it).
"""
from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|obj|exc|data|const):`(?P<tilde>~?)(?P<target>[^`]+)`")


def plain_roles(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        target = m.group("target")
        return f"`{target.rsplit('.', 1)[-1] if m.group('tilde') else target}`"

    return ROLE.sub(repl, text)


class SphinxRoles(Extension):
    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
