"""Weighted fits: whole-number sample weights (a row of weight k counts as k copies) and the bridge's pair weight.

:meth:`langalign.aligner.LangAlign.fit_bridge` repeats each in-domain parallel pair :func:`bridge_pair_weight`
times so that a few hundred pairs are not drowned by a large English pool.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_int_param

# Weighted fits copy each row k times: at most this many rows in all (10M rows of 2 x 512 float32 are 40 GB).
MAX_WEIGHTED_ROWS = 10_000_000
# fit_bridge(pair_weight="auto"): parallel pairs make up this share of the fit's rows.
# Chosen on dev splits (bench/english_bridge.py, pairs stage: 50k pool + 300 SIB-200 pairs):
# 0.05 and 0.1 gain most in the pairs' domain (SIB-200 mean +0.4) and cost nothing on
# STS-B dev retrieval; 0.2 costs 0.01 top-1 there, 0.4 costs 0.03-0.05 and loses on SIB-200.
BRIDGE_PAIR_SHARE = 0.05


def bridge_pair_weight(n_english: int, n_parallel: int, pair_weight: int | str = "auto") -> int:
    """How many times each parallel pair counts in :meth:`LangAlign.fit_bridge`."""
    if isinstance(pair_weight, str):
        if pair_weight != "auto":
            raise ValueError(f"pair_weight must be a whole number >= 1 or 'auto', got {pair_weight!r}")
        if n_parallel == 0:
            return 1
        share = BRIDGE_PAIR_SHARE
        return max(1, int(round(share * n_english / ((1 - share) * n_parallel))))
    return check_int_param("pair_weight", pair_weight, 1)


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must hold one weight per pair ({n}), got shape {w.shape}")
    if w.dtype.kind not in "iuf" or not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w != np.round(w)):
        raise ValueError("sample_weight must hold whole numbers >= 0 (a row of weight k counts as k copies)")
    total = float(np.sum(w, dtype=np.float64))
    if total > MAX_WEIGHTED_ROWS:
        raise ValueError(f"sample_weight expands the fit to {total:,.0f} rows (a row of weight k is k copies), more "
                         f"than the {MAX_WEIGHTED_ROWS:,} allowed; use smaller weights")
    return w.astype(np.int64)


def check_weighted_rows(n_plain: int, n_weighted: int, k: int) -> None:
    """fit_bridge: refuse ``pair_weight`` copies that would not fit, before anything is encoded."""
    total = n_plain + n_weighted * k
    if total > MAX_WEIGHTED_ROWS:
        raise ValueError(f"pair_weight={k:,} makes {n_weighted:,} pairs count as {n_weighted * k:,} rows "
                         f"({total:,} in all), more than the {MAX_WEIGHTED_ROWS:,} allowed; use a smaller pair_weight "
                         "(or 'auto')")
