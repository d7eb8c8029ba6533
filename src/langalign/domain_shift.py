"""Domain shift: how far unlabelled inputs lie from the domain of the pairs, and how much of the map to trust.

:meth:`langalign.aligner.LangAlign.domain_shift` measures the distance of the inputs' mean from the training inputs'
mean in units of the training variance (:func:`domain_summary`); :meth:`~langalign.aligner.LangAlign.adapt` blends
the map toward a fallback by :func:`map_trust` of that shift.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ArtefactError
from .mappers import BaseMapper

# adapt(): at or below this domain shift (see LangAlign.domain_shift) the map is kept in
# full, at or above SHIFT_NO_MAP it is replaced by the fallback, log-linear in between.
# Chosen on dev splits (bench/domain_shift.py): dev inputs from the domain of the pairs
# (LibreOffice help) score 0.004-0.006 against a LibreOffice-fitted aligner; SIB-200,
# sentiment and NLI dev inputs 0.1-0.28, where that aligner lost up to 4.5 points.
SHIFT_FULL_MAP = 0.02
SHIFT_NO_MAP = 0.06
FALLBACKS = ("identity", "shift")


def domain_summary(V: np.ndarray, chunk: int = 65536) -> dict[str, Any]:
    """Mean and total variance of the rows of ``V``, in float64 chunks (no full float64 copy)."""
    n = V.shape[0]
    total, sq = np.zeros(V.shape[1]), 0.0
    for s in range(0, n, chunk):
        c = np.asarray(V[s : s + chunk], dtype=np.float64)
        total += c.sum(0)
        sq += float(np.einsum("ij,ij->", c, c))
    mean = total / n
    return {"mean": mean, "var": max(sq - n * float(mean @ mean), 0.0) / max(n - 1, 1), "n": int(n)}


def map_trust(shift: float) -> float:
    """Weight of the map for a given domain shift: 1 up to SHIFT_FULL_MAP, 0 from SHIFT_NO_MAP, log-linear between."""
    if shift <= SHIFT_FULL_MAP:
        return 1.0
    if shift >= SHIFT_NO_MAP:
        return 0.0
    return float(np.log(SHIFT_NO_MAP / shift) / np.log(SHIFT_NO_MAP / SHIFT_FULL_MAP))


def domain_from_state(config: dict, tensors: dict, forward: BaseMapper, where: str
                       ) -> tuple[dict[str, dict[str, Any]] | None, dict[str, dict[str, Any]]]:
    """``domain_`` and ``adapted_`` of a saved aligner (None / {} for artefacts from before they existed)."""
    info = config.get("domain")
    domain = None
    if info is not None:
        if not (isinstance(info, dict) and set(info) == {"source", "target"}):
            raise ArtefactError(f"{where}: malformed domain entry")
        domain = {}
        for side, dim in (("source", forward.d_in_), ("target", forward.d_out_)):
            mean = tensors.get(f"domain.{side}_mean")
            if mean is None or mean.shape != (dim,) or not np.isfinite(mean).all():
                raise ArtefactError(f"{where}: tensor domain.{side}_mean is missing or not a finite {dim}-vector")
            var, n = info[side].get("var"), info[side].get("n")
            if not (isinstance(var, (int, float)) and var >= 0 and isinstance(n, int) and n >= 1):
                raise ArtefactError(f"{where}: malformed domain.{side} entry {info[side]!r}")
            domain[side] = {"mean": np.asarray(mean, dtype=np.float64), "var": float(var), "n": n}
    adapted = config.get("adapted") or {}
    if not isinstance(adapted, dict) or not set(adapted) <= {"forward", "reverse"}:
        raise ArtefactError(f"{where}: malformed adapted entry")
    for direction, a in adapted.items():
        trust = a.get("trust") if isinstance(a, dict) else None
        if not (isinstance(trust, (int, float)) and 0.0 <= trust <= 1.0 and a.get("fallback") in FALLBACKS):
            raise ArtefactError(f"{where}: malformed adapted.{direction} entry {a!r}")
        if a["fallback"] == "shift" and domain is None:
            raise ArtefactError(f"{where}: adapted.{direction} falls back to a mean shift but the artefact has "
                                "no domain means")
    return domain, adapted
