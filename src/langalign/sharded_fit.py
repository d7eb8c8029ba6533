"""Fitting mappers from shard folders without loading all pairs at once.

- :func:`fit_mapper_from_shards`: ``LinearMapper`` / ``ProcrustesMapper`` from
  :class:`~langalign.mappers.linear.PairStats` accumulated shard by shard. Folds are
  assigned by global row index, so the result equals the in-memory ``fit`` up to
  float summation order. Neural mappers are passed on to :func:`fit_neural_from_shards`.
- :func:`fit_neural_from_shards`: the neural mappers' training loop over streamed
  minibatches. Memory holds ``shuffle_shards`` shards at a time; the residual
  linear base is fitted exactly from statistics over the training rows first.

The held-out split of the streaming trainer is by a hash of the global row
index (not the random permutation of the in-memory fit), so the two give
comparable, not identical, networks.
"""
from __future__ import annotations

import copy
import math
import os
from typing import Any, Iterator

import numpy as np

from ._validation import check_matrix
from .mappers.linear import _CHUNK, LinearMapper, PairStats, ProcrustesMapper
from .streaming import iter_pair_chunks, read_manifest

__all__ = ["fit_mapper_from_shards", "fit_neural_from_shards", "pair_stats_from_shards", "update_stats"]

PathLike = str | os.PathLike


def update_stats(stats: PairStats, X: np.ndarray, Y: np.ndarray, start: int | None = None) -> PairStats:
    """Add a chunk of pairs whose first row has global index ``start`` (default: ``stats.rows_seen``).

    Folds depend on the global row index, so chunks may come in any order (or from
    different workers) as long as each knows where it starts.
    """
    if start is not None:
        stats.rows_seen = int(start)
    for s in range(0, X.shape[0], _CHUNK):
        stats.update(X[s : s + _CHUNK], Y[s : s + _CHUNK])
    return stats


def _prep_for(mapper: Any):
    if isinstance(mapper, ProcrustesMapper):
        return mapper._prep  # unit rows when normalize=True, applied per chunk
    return lambda A: A


def n_folds_for(mapper: Any, n: int) -> int:
    return mapper._n_folds(n) if isinstance(mapper, LinearMapper) else 1


def pair_stats_from_shards(mapper: Any, x_path: PathLike, y_path: PathLike, verify: bool = False) -> PairStats:
    """The :class:`PairStats` ``mapper.fit_stats`` needs, accumulated over two shard folders."""
    mx, my = read_manifest(x_path), read_manifest(y_path)
    n = int(mx.get("count", 0))
    stats = PairStats(int(mx["dim"]), int(my["dim"]), n_folds_for(mapper, n))
    prep = _prep_for(mapper)
    for X, Y in iter_pair_chunks(x_path, y_path, verify=verify):
        X = check_matrix(X, "X shard")
        Y = check_matrix(Y, "Y shard")
        update_stats(stats, prep(X), prep(Y))
    return stats


def fit_mapper_from_shards(mapper: Any, x_path: PathLike, y_path: PathLike, verify: bool = False,
                           **neural_kw: Any) -> Any:
    """Fit ``mapper`` on row-aligned pairs stored as shard folders (see :mod:`langalign.streaming`).

    Linear and Procrustes mappers get the exact in-memory answer; neural mappers
    stream minibatches (``neural_kw`` go to :func:`fit_neural_from_shards`).
    """
    from .mappers.neural import _NeuralMapper

    if isinstance(mapper, _NeuralMapper):
        return fit_neural_from_shards(mapper, x_path, y_path, **neural_kw)
    if not isinstance(mapper, (LinearMapper, ProcrustesMapper)):
        raise TypeError(f"{type(mapper).__name__} cannot be fitted from shards; use LinearMapper, "
                        "ProcrustesMapper or a neural mapper")
    stats = pair_stats_from_shards(mapper, x_path, y_path, verify=verify)
    return mapper.fit_stats(stats)


# -- neural ------------------------------------------------------------------------------

def _val_mask(start: int, count: int, fraction: float) -> np.ndarray:
    # Held-out rows by a hash of the global index: stable across epochs and chunkings.
    idx = np.arange(start, start + count, dtype=np.int64)
    h = ((idx * 2246822519 + 374761393) % 4294967296) / 4294967296.0
    return h < fraction


def _windows(x_path: PathLike, y_path: PathLike, rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(global start, X, Y) windows of about ``rows`` pairs (copies; shards are read lazily)."""
    bx: list[np.ndarray] = []
    by: list[np.ndarray] = []
    have = start = 0
    for X, Y in iter_pair_chunks(x_path, y_path):
        bx.append(X)
        by.append(Y)
        have += X.shape[0]
        if have >= rows:
            yield start, np.concatenate(bx), np.concatenate(by)
            start += have
            bx, by, have = [], [], 0
    if have:
        yield start, np.concatenate(bx), np.concatenate(by)


def fit_neural_from_shards(mapper: Any, x_path: PathLike, y_path: PathLike, shuffle_rows: int | None = None,
                           verify: bool = False) -> Any:
    """Train a neural mapper (``MLPMapper``, ``AutoEncoderMapper``) from shard folders.

    Same network, loss, optimiser, early stopping and residual base as
    ``mapper.fit``; the data are streamed. Each epoch visits windows of
    ``shuffle_rows`` consecutive pairs (default: 4 x the X shard size) in a
    random order and shuffles rows within each window, so memory holds one
    window, never the whole set. Held-out rows: a ``val_fraction`` share chosen
    by hashing the global row index.
    """
    import torch

    from .mappers.neural import LOSSES, resolve_device

    if mapper.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {mapper.loss!r}")
    if not 0.0 <= mapper.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {mapper.val_fraction}")
    mx, my = read_manifest(x_path), read_manifest(y_path)
    n, d_in, d_out = int(mx.get("count", 0)), int(mx["dim"]), int(my["dim"])
    if n < 2:
        raise ValueError(f"need at least 2 pairs to fit, got {n}")
    rows = int(shuffle_rows or 4 * int(mx.get("shard_size", 10_000)))
    frac = mapper.val_fraction if n >= 10 else 0.0
    device = resolve_device(mapper.device)

    # Pass 0: residual base from exact statistics over the training rows.
    n_val = int(_val_mask(0, n, frac).sum())
    mapper.linear_ = None
    if mapper.residual:
        base = LinearMapper(**(mapper.linear_params or {}))
        lin_stats = PairStats(d_in, d_out, n_folds_for(base, n - n_val))
        for start, X, Y in _windows(x_path, y_path, rows):
            X = check_matrix(X, "X shard")
            Y = check_matrix(Y, "Y shard")
            vm = _val_mask(start, X.shape[0], frac)
            update_stats(lin_stats, X[~vm], Y[~vm])
        mapper.linear_ = base.fit_stats(lin_stats)
    else:
        for _, X, Y in _windows(x_path, y_path, rows):  # same input checks as the residual pass
            check_matrix(X, "X shard")
            check_matrix(Y, "Y shard")

    torch.manual_seed(mapper.seed)
    net = mapper._build_net(d_in, d_out)
    if mapper.residual:
        last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=mapper.lr, weight_decay=mapper.weight_decay)
    rng = np.random.default_rng(mapper.seed)

    if mapper.linear_ is not None:
        W = torch.from_numpy(mapper.linear_.coef_).to(device)
        b = torch.from_numpy(mapper.linear_.intercept_).to(device)

    def predict(Xb: np.ndarray):
        xt = torch.from_numpy(np.ascontiguousarray(Xb)).to(device)
        out = net(xt)
        if mapper.linear_ is not None:
            out = out + (xt @ W + b)  # the residual base, as LinearMapper.transform computes it
        return out

    def val_loss() -> float:
        if n_val == 0:
            return float("nan")
        net.eval()
        total = 0.0
        with torch.no_grad():
            for start, X, Y in _windows(x_path, y_path, rows):
                vm = _val_mask(start, X.shape[0], frac)
                Xv, Yv = X[vm], Y[vm]
                for s in range(0, Xv.shape[0], 4096):
                    xb, yb = Xv[s : s + 4096], Yv[s : s + 4096]
                    total += mapper._loss(predict(xb), torch.from_numpy(yb).to(device)).item() * len(xb)
        return total / n_val

    history = [{"epoch": 0, "train_loss": float("nan"), "val_loss": val_loss()}]
    best = (history[0]["val_loss"], 0, copy.deepcopy(net.state_dict()))
    bad_epochs = 0
    n_windows = -(-n // rows)
    for epoch in range(1, mapper.epochs + 1):
        net.train()
        total, count = 0.0, 0
        order = rng.permutation(n_windows)
        # Windows are re-read in a random order; reading is sequential within each.
        for w in order:
            start, X, Y = _nth_window(x_path, y_path, rows, int(w))
            tr = np.flatnonzero(~_val_mask(start, X.shape[0], frac))
            tr = tr[rng.permutation(tr.size)]
            for s in range(0, tr.size, mapper.batch_size):
                idx = tr[s : s + mapper.batch_size]
                if len(idx) < 2 and mapper.loss == "infonce":
                    continue
                loss = mapper._loss(predict(X[idx]), torch.from_numpy(Y[idx]).to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
        if not math.isfinite(total):
            raise FloatingPointError(f"{type(mapper).__name__}: training loss became NaN/inf at epoch {epoch}; "
                                     "lower lr or check the input vectors")
        vl = val_loss()
        history.append({"epoch": epoch, "train_loss": total / max(count, 1), "val_loss": vl})
        if n_val == 0:
            best = (vl, epoch, copy.deepcopy(net.state_dict()))
            continue
        if vl < best[0] - 1e-7:
            best = (vl, epoch, copy.deepcopy(net.state_dict()))
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= mapper.patience:
                break
    return mapper._finish_fit(net, best, history, n, d_in, d_out)


def _nth_window(x_path: PathLike, y_path: PathLike, rows: int, w: int) -> tuple[int, np.ndarray, np.ndarray]:
    # Simple and bounded: walk the shards up to window w. Shards before it are
    # memory-mapped, so skipping them reads only their headers.
    target = w * rows
    bx: list[np.ndarray] = []
    by: list[np.ndarray] = []
    pos = 0
    for X, Y in iter_pair_chunks(x_path, y_path, mmap=True):
        end = pos + X.shape[0]
        if end <= target:
            pos = end
            continue
        lo = max(target - pos, 0)
        hi = min(target + rows - pos, X.shape[0])
        if lo < hi:
            bx.append(np.array(X[lo:hi]))
            by.append(np.array(Y[lo:hi]))
        pos = end
        if pos >= target + rows:
            break
    return target, np.concatenate(bx), np.concatenate(by)
