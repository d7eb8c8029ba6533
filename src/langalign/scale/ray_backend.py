"""Ray Data backend: encode with encoder actors, fit linear/Procrustes mappers from per-block statistics.

Needs ``pip install 'langalign[ray]'`` (``ray[data]``). Works on a laptop
(``ray.init()``) and unchanged on a cluster.

- :func:`encode_dataset` runs ``map_batches`` with a callable class: each actor
  loads the encoder once (pass its *name*, so every worker loads the bundled or
  cached model itself) and encodes batches of a text column into a tensor column.
- :func:`pair_stats_ray` computes :class:`~langalign.mappers.stats.PairStats` per
  block in the workers and merges them one at a time on the driver, so the
  driver holds one accumulator, never the pairs.
- :func:`fit_mapper_ray` = count + stats + ``mapper.fit_stats``: the same linear
  or Procrustes fit as :func:`langalign.scale.sharded_fit.fit_mapper_from_shards` and
  the in-memory ``fit``.

**Row index.** ``LinearMapper(alpha="auto")`` assigns cross-validation folds by
*global row index*. Blocks are processed independently and in no fixed order,
so every row must carry its global index in a column (``index_col``, default
``"row"``; :func:`dataset_from_pairs` and :func:`dataset_from_texts` add it).
Each block sorts its rows by that index and feeds each run of consecutive
indices to ``PairStats`` at its own offset, so folds equal those of a local fit.
A fixed ``alpha`` and Procrustes use one fold and need no index.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import check_matrix
from ..encoders import Encoder
from ..mappers.procrustes import ProcrustesMapper
from ..mappers.stats import PairStats
from .sharded_fit import n_folds_for, update_stats

__all__ = ["dataset_from_texts", "dataset_from_pairs", "encode_dataset", "EncoderActor", "pair_stats_ray",
           "fit_mapper_ray"]

_STATS_FIELDS = ("n", "sx", "sy", "sxx", "sxy", "syy")


def _ray_data():
    try:
        import ray.data
    except ImportError as e:
        raise ImportError("the Ray backend needs ray[data]: pip install 'langalign[ray]'") from e
    return ray.data


def dataset_from_texts(texts: Sequence[str], column: str = "text", index_col: str = "row",
                       num_blocks: int | None = None):
    """A Ray dataset with columns ``index_col`` (global row index) and ``column``."""
    rd = _ray_data()
    items = [{index_col: i, column: t} for i, t in enumerate(texts)]
    return rd.from_items(items, override_num_blocks=num_blocks)


def dataset_from_pairs(sources: Sequence[str], targets: Sequence[str], source_col: str = "source",
                       target_col: str = "target", index_col: str = "row", num_blocks: int | None = None):
    """A Ray dataset of text pairs with their global row index."""
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets differ in length: {len(sources)} != {len(targets)}")
    rd = _ray_data()
    items = [{index_col: i, source_col: s, target_col: t}
             for i, (s, t) in enumerate(zip(sources, targets, strict=True))]
    return rd.from_items(items, override_num_blocks=num_blocks)


class EncoderActor:
    """``map_batches`` callable class: loads the encoder once per actor, encodes a text column."""

    def __init__(self, encoder: str | Encoder | Callable[[], Encoder], text_column: str, output_column: str,
                 batch_size: int = 256):
        from ..encoders import load_encoder

        if callable(encoder) and not isinstance(encoder, (str, Encoder)):
            encoder = encoder()  # a factory: build the model inside the worker
        self.encoder = load_encoder(encoder)
        self.text_column = text_column
        self.output_column = output_column
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch[self.text_column]]
        batch[self.output_column] = self.encoder.encode(texts, batch_size=self.batch_size, show_progress=False)
        return batch


def encode_dataset(ds: Any, encoder: str | Encoder | Callable[[], Encoder], text_column: str = "text",
                   output_column: str = "embedding", concurrency: int = 1, batch_size: int = 1024,
                   num_cpus: float = 1.0, encode_batch_size: int = 256):
    """Add ``output_column`` (float32 (dim,) per row) by encoding ``text_column`` with encoder actors.

    ``encoder``: a name (recommended: each actor loads it), an :class:`Encoder` that
    cloudpickle can serialise, or a zero-argument factory. ``concurrency`` actors,
    each reserving ``num_cpus``; ``batch_size`` rows per actor call.
    """
    _ray_data()
    return ds.map_batches(EncoderActor, fn_constructor_args=(encoder, text_column, output_column,
                                                             encode_batch_size),
                          batch_size=batch_size, batch_format="numpy", concurrency=concurrency, num_cpus=num_cpus)


def _block_stats(batch: dict[str, np.ndarray], x_col: str, y_col: str, index_col: str | None, d_in: int,
                 d_out: int, n_folds: int, normalize: bool) -> dict[str, np.ndarray]:
    """PairStats of one block, returned as one row of tensor columns."""
    # An object column holds one row vector per element; np.stack takes them as a list.
    X = check_matrix(np.stack(list(batch[x_col])) if batch[x_col].dtype == object else batch[x_col], x_col, dim=d_in)
    Y = check_matrix(np.stack(list(batch[y_col])) if batch[y_col].dtype == object else batch[y_col], y_col, dim=d_out)
    if normalize:
        prep = ProcrustesMapper(normalize=True)._prep
        X, Y = prep(X), prep(Y)
    stats = PairStats(d_in, d_out, n_folds)
    if n_folds == 1 or index_col is None:
        update_stats(stats, X, Y, start=0)  # one fold: the index does not matter
    else:
        idx = np.asarray(batch[index_col], dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        idx, X, Y = idx[order], X[order], Y[order]
        # Runs of consecutive global indices, each added at its own offset.
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, idx.size], strict=True):
            if hi > lo:
                update_stats(stats, X[lo:hi], Y[lo:hi], start=int(idx[lo]))
    return {f: np.asarray(getattr(stats, f))[None] for f in _STATS_FIELDS}


def pair_stats_ray(ds: Any, d_in: int, d_out: int, n_folds: int = 1, x_col: str = "x", y_col: str = "y",
                   index_col: str | None = "row", normalize: bool = False) -> PairStats:
    """:class:`PairStats` of the pairs in ``ds``, computed per block by Ray workers and merged here."""
    _ray_data()
    if n_folds > 1 and index_col is None:
        raise ValueError("cross-validation folds (alpha='auto') need a global row index column; pass index_col")
    cols = [x_col, y_col] + ([index_col] if index_col is not None and n_folds > 1 else [])
    per_block = ds.select_columns(cols).map_batches(
        _block_stats, batch_size=None, batch_format="numpy",
        fn_kwargs=dict(x_col=x_col, y_col=y_col, index_col=index_col, d_in=d_in, d_out=d_out, n_folds=n_folds,
                       normalize=normalize))
    total = PairStats(d_in, d_out, n_folds)
    for row in per_block.iter_batches(batch_size=1, batch_format="numpy"):
        part = PairStats(d_in, d_out, n_folds)
        for f in _STATS_FIELDS:
            setattr(part, f, np.asarray(row[f][0], dtype=getattr(part, f).dtype))
        total.merge(part)
    total.rows_seen = int(total.n.sum())
    return total


def fit_mapper_ray(mapper: Any, ds: Any, x_col: str = "x", y_col: str = "y", index_col: str | None = "row") -> Any:
    """Fit a ``LinearMapper`` / ``ProcrustesMapper`` on the vector pairs of a Ray dataset."""
    from ..mappers.linear import LinearMapper

    if not isinstance(mapper, (LinearMapper, ProcrustesMapper)):
        raise TypeError(f"{type(mapper).__name__} cannot be fitted from statistics; use LinearMapper or "
                        "ProcrustesMapper (neural mappers: encode to shards and use fit_mapper_from_shards)")
    n = ds.count()
    if n < 2:
        raise ValueError(f"need at least 2 pairs to fit, got {n}")
    first = ds.select_columns([x_col, y_col]).take(1)[0]
    d_in, d_out = int(np.asarray(first[x_col]).shape[-1]), int(np.asarray(first[y_col]).shape[-1])
    stats = pair_stats_ray(ds, d_in, d_out, n_folds_for(mapper, n), x_col, y_col, index_col,
                           normalize=isinstance(mapper, ProcrustesMapper) and mapper.normalize)
    return mapper.fit_stats(stats)
