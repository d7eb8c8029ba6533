"""Retention is like for like: each scoring method divides by the best reference scored the same way."""
from __future__ import annotations

import math

import pytest

from langalign.evaluation import best_reference, like_for_like_retention


def test_each_method_divides_by_the_best_reference_under_the_same_method():
    refs = {"use-multilingual": {"cosine": 0.80, "csls": 0.86}, "e5-small": {"cosine": 0.84, "csls": 0.85}}
    r = like_for_like_retention({"cosine": 0.70, "csls": 0.80}, refs)
    assert r["cosine"]["reference"] == "e5-small" and math.isclose(r["cosine"]["retention"], 0.70 / 0.84)
    assert r["csls"]["reference"] == "use-multilingual" and math.isclose(r["csls"]["retention"], 0.80 / 0.86)
    # never the flattering mixed ratio (CSLS over cosine)
    assert r["csls"]["retention"] < 0.80 / 0.80


def test_a_method_no_reference_was_scored_with_is_refused():
    with pytest.raises(ValueError, match="scored the same way"):
        like_for_like_retention({"csls": 0.8}, {"use-multilingual": {"cosine": 0.9}})


def test_best_reference_skips_missing_and_nan():
    refs = {"a": {"cosine": float("nan")}, "b": {"cosine": 0.5}, "c": {}}
    assert best_reference(refs, "cosine") == ("b", 0.5)
