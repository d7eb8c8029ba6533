"""Retrieval retention, like for like: a bridged system's top-1 over the best reference scored the same way.

A bridge (an English index read by mapped target-language queries) is judged against what a
user would otherwise do: re-embed everything with a multilingual encoder. Every scoring method
(cosine, CSLS, ...) helps both sides, so a retention divides the bridge's top-1 under one method
by the reference's top-1 under the *same* method, and the reference is the best of the
alternatives measured (re-embedding with use-multilingual and with e5-small, where both ran).
Dividing a CSLS top-1 by a cosine one flatters the bridge; this module exists so that no
report does it again.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["best_reference", "like_for_like_retention"]


def best_reference(references: Mapping[str, Mapping[str, float]], method: str) -> tuple[str, float]:
    """``(name, top-1)`` of the best reference scored with ``method`` (``references[name][method]``)."""
    scored = [(name, float(by[method])) for name, by in references.items()
              if method in by and by[method] is not None and math.isfinite(float(by[method]))]
    if not scored:
        raise ValueError(f"no reference was scored with {method!r} (have: "
                         f"{', '.join(sorted({m for by in references.values() for m in by})) or 'nothing'}); "
                         "a retention needs the reference scored the same way as the bridge")
    return max(scored, key=lambda nv: nv[1])


def like_for_like_retention(bridged: Mapping[str, float], references: Mapping[str, Mapping[str, float]]
                            ) -> dict[str, dict[str, Any]]:
    """Per scoring method of ``bridged`` (``{method: top-1}``): ``{"top1", "reference", "reference_top1",
    "retention"}``, the reference being the best of ``references`` (``{name: {method: top-1}}``) under the
    same method. A method no reference was scored with raises (never a mixed ratio)."""
    out: dict[str, dict[str, Any]] = {}
    for method, top1 in bridged.items():
        name, ref = best_reference(references, method)
        out[method] = {"top1": float(top1), "reference": name, "reference_top1": ref,
                       "retention": float(top1) / ref if ref else float("nan")}
    return out
