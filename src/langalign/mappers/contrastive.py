"""The contrastive mapper: alignment trained with InfoNCE over in-batch negatives.

The LangAlign paper summarises its alignment as contrastive learning at the interface between
the encoder and the task head. :class:`ContrastiveMapper` is that objective as a mapper: for a
batch of pairs, each mapped source vector must score its own target higher (cosine / temperature)
than the batch's other targets, in both directions (symmetric InfoNCE), optionally plus an MSE
term (``mse_weight`` x the mean squared distance) that keeps the mapped vectors at the target's
scale and position, which a cosine-only loss leaves free (heads and indexes read both).

Like the residual MLP it starts from the cross-validated ridge map (``residual=True``: a zero-
initialised correction on top of it, early stopping on held-out pairs including epoch 0), so on
held-out pairs it can only improve on ridge by its own loss. ``hidden_dim=0`` makes the
correction linear; a positive value makes it one hidden layer wide.
"""
from __future__ import annotations

from typing import Any

from .._validation import MAX_DIM, check_float_param, check_int_param
from .neural import _mlp, _mlp_shapes, _NeuralMapper, _torch


class ContrastiveMapper(_NeuralMapper):
    """Ridge map + a correction trained with symmetric InfoNCE (in-batch negatives) + ``mse_weight`` x MSE.

    Parameters not listed here work as in :class:`~langalign.mappers.neural.MLPMapper`.

    Parameters
    ----------
    hidden_dim: 0 for a linear correction, else the width of one hidden layer.
    mse_weight: weight of the mean squared distance ``||A(x) - y||^2`` next to InfoNCE (0: InfoNCE alone).
    temperature: InfoNCE temperature (cosine / temperature are the logits).
    batch_size: pairs per batch, which is also the number of negatives each pair sees (minus one).
    """

    kind = "contrastive"
    loss = "infonce"  # the base class's loss switch (skips 1-row batches); _loss below adds the MSE term

    def __init__(self, hidden_dim: int = 0, mse_weight: float = 1.0, temperature: float = 0.05,
                 dropout: float = 0.0, residual: bool = True, lr: float = 1e-3, weight_decay: float = 0.0,
                 epochs: int = 100, batch_size: int = 256, val_fraction: float = 0.1, patience: int = 10,
                 seed: int = 0, device: str = "auto", linear_params: dict | None = None):
        self.hidden_dim = hidden_dim
        self.mse_weight = mse_weight
        self.temperature = temperature
        self.dropout = dropout
        self.residual = residual
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.seed = seed
        self.device = device
        self.linear_params = linear_params

    def _validate_params(self) -> None:
        check_int_param("hidden_dim", self.hidden_dim, 0, MAX_DIM)
        check_float_param("mse_weight", self.mse_weight, 0.0)
        check_int_param("batch_size", self.batch_size, 2, 1 << 31)
        super()._validate_params()

    def _dims(self, d_in: int, d_out: int) -> list[int]:
        return [d_in, d_out] if self.hidden_dim == 0 else [d_in, self.hidden_dim, d_out]

    def _build_net(self, d_in: int, d_out: int) -> Any:
        return _mlp(self._dims(d_in, d_out), self.dropout)

    def _net_shapes(self, d_in: int, d_out: int, field: str) -> dict:
        fields = ", ".join(f"{field}.{k}" for k in ("d_in", "d_out", "params.hidden_dim"))
        return _mlp_shapes(self._dims(d_in, d_out), self.dropout, "", fields)

    def _loss(self, pred: Any, target: Any) -> Any:
        torch = _torch()
        F = torch.nn.functional
        p = F.normalize(pred, dim=1)
        t = F.normalize(target, dim=1)
        logits = p @ t.T / self.temperature
        labels = torch.arange(len(p), device=p.device)
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        if self.mse_weight:
            loss = loss + float(self.mse_weight) * ((pred - target) ** 2).sum(1).mean()
        return loss


__all__ = ["ContrastiveMapper"]
