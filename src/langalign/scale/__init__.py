"""Working at scale: streaming encode to shards, the embedding cache, fitting from shards, FAISS, Ray.

One layer above encoders, data, mappers and evaluation, one below the aligner,
index, serving and CLI: these modules take an encoder or a mapper as an argument,
so an encoder never needs to know about shards or caches.

- :mod:`langalign.scale.streaming`: :func:`encode_to` writes ``.npy`` shards + a manifest
  (resumable); :func:`load_shards` / :func:`read_shards` read them back.
- :mod:`langalign.scale.cache`: :class:`EmbeddingCache` (SQLite), :class:`CachedEncoder`,
  :func:`cached_encode`.
- :mod:`langalign.scale.sharded_fit`: :func:`fit_mapper_from_shards`,
  :func:`fit_neural_from_shards` (exact linear / Procrustes fit from statistics,
  neural training over streamed minibatches).
- :mod:`langalign.scale.retrieval_faiss`: :func:`retrieve` / :func:`knn` with FAISS
  when installed (``langalign[faiss]``), numpy otherwise.
- :mod:`langalign.scale.ray_backend`: Ray Data encode and fit (``langalign[ray]``;
  ``ray`` is imported only when a function needs it).

These are the only paths: the old top-level aliases (``langalign.streaming``, ``langalign.cache``,
``langalign.sharded_fit``, ``langalign.retrieval_faiss``, ``langalign.distributed.ray_backend``) are gone.
"""
from .cache import CachedEncoder, CacheError, EmbeddingCache, cached_encode, default_cache_root
from .ray_backend import (EncoderActor, dataset_from_pairs, dataset_from_texts, encode_dataset, fit_mapper_ray,
                          pair_stats_ray)
from .retrieval_faiss import BACKENDS, faiss_available, knn, neighbourhood_means, retrieve
from .sharded_fit import (count_held_out, fit_mapper_from_shards, fit_neural_from_shards, held_out_mask,
                          pair_stats_from_shards, update_stats)
from .streaming import (DEFAULT_SHARD_SIZE, ShardError, encode_to, iter_pair_chunks, load_shards, read_manifest,
                        read_pair_manifests, read_shards, shard_files)

__all__ = [
    # streaming
    "encode_to", "read_shards", "load_shards", "read_manifest", "read_pair_manifests", "iter_pair_chunks",
    "shard_files", "ShardError", "DEFAULT_SHARD_SIZE",
    # cache
    "EmbeddingCache", "CachedEncoder", "cached_encode", "default_cache_root", "CacheError",
    # sharded fit
    "fit_mapper_from_shards", "fit_neural_from_shards", "held_out_mask", "count_held_out", "pair_stats_from_shards",
    "update_stats",
    # FAISS retrieval
    "faiss_available", "knn", "neighbourhood_means", "retrieve", "BACKENDS",
    # Ray
    "dataset_from_texts", "dataset_from_pairs", "encode_dataset", "EncoderActor", "pair_stats_ray", "fit_mapper_ray",
]
