"""``bench/tuned_tasks.py``: pair tasks (NLI) are encoded, mapped and featurised side by side, and a tuned folder
made with other settings is refused rather than measured under this run's name."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from langalign.heads import pair_features

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def tt():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("tuned_tasks")
    finally:
        sys.path.remove(str(BENCH))


def fake_vectors(texts):
    return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_pairs_are_encoded_side_by_side(tt):
    items = [("a cat", "the dog"), ("banana", "x")]
    U, V = tt.encode(fake_vectors, items)
    np.testing.assert_array_equal(U, fake_vectors(["a cat", "banana"]))
    np.testing.assert_array_equal(V, fake_vectors(["the dog", "x"]))
    np.testing.assert_array_equal(tt.features((U, V)), pair_features(U, V))
    assert tt.stacked((U, V)).shape == (4, 3)
    # single texts pass through unchanged
    X = tt.encode(fake_vectors, ["a", "bb"])
    assert tt.features(X) is X and tt.stacked(X) is X


def test_a_map_applies_to_each_side_alone(tt):
    U, V = fake_vectors(["ab", "c"]), fake_vectors(["aaa", "dddd"])
    mU, mV = tt.mapped(lambda x: 2 * x, (U, V))
    np.testing.assert_array_equal(mU, 2 * U)
    np.testing.assert_array_equal(mV, 2 * V)
    # features of mapped pairs differ from mapping the features: the map must come first
    assert not np.allclose(tt.features((mU, mV)), 2 * tt.features((U, V)))


def test_a_folder_tuned_with_other_settings_is_refused(tt, tmp_path):
    (tmp_path / "langalign_tuning.json").write_text(json.dumps(
        {"parameters": {"loss": "softmax", "epochs": 1, "lr": 1e-4, "max_seq_length": 128}}), encoding="utf-8")
    args = argparse.Namespace(tuned=str(tmp_path), loss="softmax", epochs=1, lr=2e-5, max_seq_length=128)
    with pytest.raises(SystemExit, match="tuned with other settings.*'lr': \\(0.0001, 2e-05\\)"):
        tt.tune(args, ["x"], ["y"], (["x"], ["y"]))
