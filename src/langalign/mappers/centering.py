"""The mean-shift map: removes the language offset and nothing else."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_matrix
from .base import BaseMapper, expect_shape


class CenteringMapper(BaseMapper):
    """Mean shift only: ``y ≈ x - mean_x + mean_y`` (the "centring" baseline).

    Needs equal dimensions. Removes the language-specific offset that a
    multilingual encoder adds to every sentence, and nothing else.
    """

    kind = "centering"

    def __init__(self):
        pass

    def fit(self, X: Any, Y: Any) -> CenteringMapper:
        self._validate_params()
        X = check_matrix(X, "X", allow_empty=False)
        Y = check_matrix(Y, "Y", allow_empty=False)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"centring needs equal dimensions, got {X.shape[1]} -> {Y.shape[1]}")
        if X.shape[0] < 1 or Y.shape[0] < 1:
            raise ValueError("need at least one vector on each side")
        self.shift_ = (Y.mean(0) - X.mean(0)).astype(np.float32)
        self.d_in_ = self.d_out_ = X.shape[1]
        return self

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X + self.shift_

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"shift": self.shift_}

    def _state_shapes(self, d_in: int, d_out: int, config: dict[str, Any], where: str, field: str) -> dict:
        if d_in != d_out:
            from ..errors import ArtefactError

            raise ArtefactError(f"{where}: {field}: a centring map needs d_in == d_out, got {d_in} and {d_out}")
        return {"shift": ((d_out,), f"{field}.d_out")}

    def _set_state(self, tensors: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        self.shift_ = expect_shape(tensors, "shift", (self.d_out_,), type(self).__name__).astype(np.float32)
