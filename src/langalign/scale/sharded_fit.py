"""Fitting mappers from shard folders without loading all pairs at once.

- :func:`fit_mapper_from_shards`: ``LinearMapper`` / ``ProcrustesMapper`` from
  :class:`~langalign.mappers.stats.PairStats` accumulated shard by shard. Folds are
  assigned by global row index, so the result equals the in-memory ``fit`` up to
  float summation order. Neural mappers are passed on to :func:`fit_neural_from_shards`.
- :func:`fit_neural_from_shards`: the neural mappers' training loop over streamed
  minibatches. Memory holds ``shuffle_shards`` shards at a time; the residual
  linear base is fitted exactly from statistics over the training rows first.

The validation split of the streaming trainer is by a hash of the global row
index (not the random permutation of the in-memory fit), so the two give
comparable, not identical, networks. ``held_out`` (every fit here) leaves out
the rows :func:`held_out_mask` picks, which ``LangAlign.fit_shards`` scores on.
Neural training from shards checkpoints and resumes like the in-memory fit.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_matrix
from ..mappers.linear import LinearMapper
from ..mappers.procrustes import ProcrustesMapper
from ..mappers.stats import STATS_CHUNK, PairStats
from .streaming import iter_pair_chunks, read_pair_manifests

__all__ = ["fit_mapper_from_shards", "fit_neural_from_shards", "held_out_mask", "count_held_out",
           "pair_stats_from_shards", "update_stats"]

PathLike = str | os.PathLike


def update_stats(stats: PairStats, X: np.ndarray, Y: np.ndarray, start: int | None = None) -> PairStats:
    """Add a chunk of pairs whose first row has global index ``start`` (default: ``stats.rows_seen``).

    Folds depend on the global row index, so chunks may come in any order (or from
    different workers) as long as each knows where it starts.
    """
    if start is not None:
        stats.rows_seen = int(start)
    for s in range(0, X.shape[0], STATS_CHUNK):
        stats.update(X[s : s + STATS_CHUNK], Y[s : s + STATS_CHUNK])
    return stats


def _prep_for(mapper: Any):
    if isinstance(mapper, ProcrustesMapper):
        return mapper._prep  # unit rows when normalize=True, applied per chunk
    return lambda A: A


def n_folds_for(mapper: Any, n: int) -> int:
    # Both closed-form mappers cross-validate their shrinkage from per-fold sums.
    return mapper._n_folds(n) if isinstance(mapper, (LinearMapper, ProcrustesMapper)) else 1


def held_out_mask(start: int, count: int, fraction: float) -> np.ndarray:
    """True for the rows ``start .. start+count-1`` that a ``held_out=fraction`` fit leaves out.

    A mixing hash of the global row index (splitmix64), so the choice is the same
    whatever the shard sizes, chunking or worker, and independent of the neural
    trainer's validation rows. :meth:`LangAlign.fit_shards` scores the maps on these rows.
    """
    if fraction <= 0.0:
        return np.zeros(count, dtype=bool)
    z = np.arange(start, start + count, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53) < fraction


def _check_held_out(held_out: float) -> float:
    held_out = float(held_out)
    if not 0.0 <= held_out < 1.0:
        raise ValueError(f"held_out must be in [0, 1), got {held_out}")
    return held_out


def pair_stats_from_shards(mapper: Any, x_path: PathLike, y_path: PathLike, verify: bool = False,
                           held_out: float = 0.0) -> PairStats:
    """The :class:`PairStats` ``mapper.fit_stats`` needs, accumulated over two shard folders.

    Rows chosen by :func:`held_out_mask` with ``held_out`` are left out; cross-validation
    folds then follow the index among the rows kept.
    """
    held_out = _check_held_out(held_out)
    mx, my = read_pair_manifests(x_path, y_path)
    n = int(mx.get("count", 0))
    n_kept = n - int(count_held_out(n, held_out))
    stats = PairStats(int(mx["dim"]), int(my["dim"]), n_folds_for(mapper, n_kept))
    prep = _prep_for(mapper)
    pos = 0
    for X, Y in iter_pair_chunks(x_path, y_path, verify=verify):
        X = check_matrix(X, "X shard")
        Y = check_matrix(Y, "Y shard")
        keep = ~held_out_mask(pos, X.shape[0], held_out)
        pos += X.shape[0]
        if not keep.all():
            X, Y = X[keep], Y[keep]
        update_stats(stats, prep(X), prep(Y))
    return stats


def count_held_out(n: int, fraction: float, step: int = 1 << 20) -> int:
    """How many of rows ``0..n-1`` :func:`held_out_mask` holds out at ``fraction``: from the indices alone, in
    bounded memory."""
    return sum(int(held_out_mask(s, min(step, n - s), fraction).sum()) for s in range(0, n, step)) if fraction else 0


def fit_mapper_from_shards(mapper: Any, x_path: PathLike, y_path: PathLike, verify: bool = False,
                           held_out: float = 0.0, **neural_kw: Any) -> Any:
    """Fit ``mapper`` on row-aligned pairs stored as shard folders (see :mod:`langalign.scale.streaming`).

    Linear and Procrustes mappers get the exact in-memory answer; neural mappers
    stream minibatches (``neural_kw`` go to :func:`fit_neural_from_shards`).
    ``held_out``: leave out the rows :func:`held_out_mask` picks (default none).
    """
    from ..mappers.neural import is_neural

    mapper._validate_params()  # before any shard is read
    if is_neural(mapper):
        return fit_neural_from_shards(mapper, x_path, y_path, verify=verify, held_out=held_out, **neural_kw)
    if not isinstance(mapper, (LinearMapper, ProcrustesMapper)):
        raise TypeError(f"{type(mapper).__name__} cannot be fitted from shards; use LinearMapper, "
                        "ProcrustesMapper or a neural mapper")
    stats = pair_stats_from_shards(mapper, x_path, y_path, verify=verify, held_out=held_out)
    return mapper.fit_stats(stats)


# -- neural ------------------------------------------------------------------------------

def _val_mask(start: int, count: int, fraction: float) -> np.ndarray:
    # Held-out rows by a hash of the global index: stable across epochs and chunkings.
    idx = np.arange(start, start + count, dtype=np.int64)
    h = ((idx * 2246822519 + 374761393) % 4294967296) / 4294967296.0
    return h < fraction


def _windows(x_path: PathLike, y_path: PathLike, rows: int,
             verify: bool = False) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(global start, X, Y) windows of about ``rows`` pairs (copies; shards are read lazily)."""
    bx: list[np.ndarray] = []
    by: list[np.ndarray] = []
    have = start = 0
    for X, Y in iter_pair_chunks(x_path, y_path, verify=verify):
        bx.append(X)
        by.append(Y)
        have += X.shape[0]
        if have >= rows:
            yield start, np.concatenate(bx), np.concatenate(by)
            start += have
            bx, by, have = [], [], 0
    if have:
        yield start, np.concatenate(bx), np.concatenate(by)


def _shards_digest(*manifests: dict[str, Any]) -> str:
    # What identifies the data of a sharded run: every shard's row count and checksum.
    parts = [[m.get("dim"), [[sh.get("count"), sh.get("sha256")] for sh in m.get("shards", [])]] for m in manifests]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def fit_neural_from_shards(mapper: Any, x_path: PathLike, y_path: PathLike, shuffle_rows: int | None = None,
                           verify: bool = False, held_out: float = 0.0,
                           checkpoint_dir: PathLike | None = None, resume: bool = False) -> Any:
    """Train a neural mapper (``MLPMapper``, ``AutoEncoderMapper``) from shard folders.

    Same network, loss, optimiser, early stopping and residual base as
    ``mapper.fit``; the data are streamed. Each epoch visits windows of
    ``shuffle_rows`` consecutive pairs (default: 4 x the X shard size) in a
    random order and shuffles rows within each window, so memory holds one
    window, never the whole set. Validation rows: a ``val_fraction`` share chosen
    by hashing the global row index. ``held_out``: rows left out entirely (see
    :func:`held_out_mask`).

    ``checkpoint_dir`` / ``resume``: as in ``mapper.fit``: a checkpoint after every
    epoch, and a resumed run ends exactly where an uninterrupted one would. The
    checkpoint is tied to the shards' checksums, the parameters and ``shuffle_rows``.
    """
    import torch

    from ..mappers import checkpoint as ckpt_mod
    from ..mappers.neural import LOSSES, resolve_device

    mapper._validate_params()
    if mapper.loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {mapper.loss!r}")
    if not 0.0 <= mapper.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {mapper.val_fraction}")
    held_out = _check_held_out(held_out)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (the folder the interrupted run wrote)")
    mx, my = read_pair_manifests(x_path, y_path)
    n_all, d_in, d_out = int(mx.get("count", 0)), int(mx["dim"]), int(my["dim"])
    rows = int(shuffle_rows or 4 * int(mx.get("shard_size", 10_000)))
    # As in the in-memory fit: no validation split below 10 pairs (counted after held-out rows).
    frac = mapper.val_fraction if n_all - count_held_out(n_all, held_out) >= 10 else 0.0

    def masks(start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, validation rows) of a window."""
        keep = ~held_out_mask(start, count, held_out)
        val = _val_mask(start, count, frac) & keep
        return keep & ~val, val

    step = 1 << 20
    n_val = n = 0
    for s0 in range(0, n_all, step):
        tr_m, val_m = masks(s0, min(step, n_all - s0))
        n_val += int(val_m.sum())
        n += int(tr_m.sum()) + int(val_m.sum())
    if n < 2:
        raise ValueError(f"need at least 2 pairs to fit, got {n}")
    if n - n_val < 2:
        raise ValueError(f"{n} pairs leave {n - n_val} for training after the validation split "
                         f"(val_fraction={mapper.val_fraction}); use more pairs or a smaller val_fraction")
    device = resolve_device(mapper.device)
    ckpt_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
    run_key = ""
    if ckpt_dir is not None:
        run_key = ckpt_mod.run_key_from_digest(
            f"shards:{_shards_digest(mx, my)}:rows={rows}:held_out={held_out!r}",
            mapper.get_params(), type(mapper).__name__)

    # Pass 0: residual base from exact statistics over the training rows.
    mapper.linear_ = None
    if mapper.residual:
        base = LinearMapper(**(mapper.linear_params or {}))
        lin_stats = PairStats(d_in, d_out, n_folds_for(base, n - n_val))
        for start, X, Y in _windows(x_path, y_path, rows, verify=verify):
            X = check_matrix(X, "X shard")
            Y = check_matrix(Y, "Y shard")
            tr_m, _ = masks(start, X.shape[0])
            update_stats(lin_stats, X[tr_m], Y[tr_m])
        mapper.linear_ = base.fit_stats(lin_stats)
    else:
        for _, X, Y in _windows(x_path, y_path, rows, verify=verify):  # same input checks as the residual pass
            check_matrix(X, "X shard")
            check_matrix(Y, "Y shard")

    net, opt = mapper._new_net(d_in, d_out, device)
    rng = np.random.default_rng(mapper.seed)
    gen = torch.Generator().manual_seed(mapper.seed)  # unused here; the checkpoint format carries one

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
                _, val_m = masks(start, X.shape[0])
                Xv, Yv = X[val_m], Y[val_m]
                for s in range(0, Xv.shape[0], 4096):
                    xb, yb = Xv[s : s + 4096], Yv[s : s + 4096]
                    total += mapper._loss(predict(xb), torch.from_numpy(yb).to(device)).item() * len(xb)
        return total / n_val

    n_windows = -(-n_all // rows)

    def train_epoch() -> tuple[float, int]:
        total, count = 0.0, 0
        # Windows are re-read in a random order; reading is sequential within each.
        for w in rng.permutation(n_windows):
            start, X, Y = _nth_window(x_path, y_path, rows, int(w))
            tr = np.flatnonzero(masks(start, X.shape[0])[0])
            tr = tr[rng.permutation(tr.size)]
            for s in range(0, tr.size, mapper.batch_size):
                idx = tr[s : s + mapper.batch_size]
                if len(idx) < 2 and mapper.loss == "infonce":
                    continue
                total += mapper._step(net, opt, predict(X[idx]), torch.from_numpy(Y[idx]).to(device)) * len(idx)
                count += len(idx)
        return total, count

    from ..mappers.neural import deterministic_torch

    with deterministic_torch():
        return mapper._train_epochs(net, opt, gen, rng, device, train_epoch, val_loss, n_val, ckpt_dir, run_key,
                                    resume, n, d_in, d_out)


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
