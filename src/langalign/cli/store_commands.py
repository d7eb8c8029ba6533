"""``--store KIND:PATH/COLLECTION`` for ``langalign index build|add|info|stamp`` and ``langalign search``.

A thin shell over :mod:`langalign.integrations.stores`: Chroma, LanceDB and Qdrant collections
written (and stamped) by langalign, or existing ones, queried through a saved aligner.
Registered by :mod:`langalign.cli.serve_commands`, which owns the ``index`` and ``search`` commands.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

STORE_HELP = ("a collection of an embedded vector store, KIND:PATH/COLLECTION with KIND chroma, lancedb or qdrant "
              "(e.g. chroma:stores/chroma/docs)")


def _collection(spec: str) -> Any:
    from ..integrations.stores import open_collection

    return open_collection(spec)


def _encoder_embedder(name: str) -> Any:
    from ..integrations.embedder import EncoderEmbedder

    return EncoderEmbedder(name)


def cmd_store_build(args: argparse.Namespace, texts: list[str], ids: list[str] | None) -> int:
    t0 = time.perf_counter()
    with _collection(args.store) as col:
        if col.exists():
            # `build` makes a new collection; adding to one is `index add`, which checks its stamp
            from ..errors import LangAlignError

            raise LangAlignError(f"{args.store} already exists; use 'langalign index add --store' to add documents")
        col.add_texts(texts, _encoder_embedder(args.encoder), ids=ids, batch_size=args.batch_size)
        n, dim = col.count(), col.dimension()
    print(f"wrote {n} documents with {args.encoder} ({dim}-d) to {args.store} (stamped) in "
          f"{time.perf_counter() - t0:.1f}s")
    return 0


def cmd_store_add(args: argparse.Namespace, texts: list[str], ids: list[str] | None) -> int:
    t0 = time.perf_counter()
    with _collection(args.store) as col:
        col.require_collection()
        stamp = col.read_stamp() or {}
        name = args.encoder or stamp.get("encoder")
        if not name:
            from ..errors import LangAlignError

            raise LangAlignError(f"{args.store} has no langalign stamp; name its encoder with --encoder (adding to a "
                                 "collection langalign did not write is refused unless it is stamped: index stamp)")
        before = col.count()
        col.add_texts(texts, _encoder_embedder(name), ids=ids, batch_size=args.batch_size)
        after = col.count()
    print(f"added {after - before} documents to {args.store} ({after} in all) in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_store_info(args: argparse.Namespace) -> int:
    with _collection(args.store) as col:
        info = col.info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        for k, v in info.items():
            print(f"{k}: {json.dumps(v) if isinstance(v, dict) else v}")
    return 0


def cmd_store_stamp(args: argparse.Namespace) -> int:
    with _collection(args.store) as col:
        stamp = col.stamp(_encoder_embedder(args.encoder), force=args.force)
    print(f"{args.store} is stamped: {json.dumps(stamp, sort_keys=True)}")
    return 0


def cmd_store_search(args: argparse.Namespace, queries: list[str]) -> int:
    from ..aligner import LangAlign
    from ..integrations.embedder import AlignerEmbedder

    if args.csls:
        raise ValueError("--csls needs langalign's own index (--index); a store ranks by its own metric")
    if args.aligner:
        embedder: Any = AlignerEmbedder(LangAlign.load(args.aligner))
    else:
        with _collection(args.store) as col:
            col.require_collection()
            stamp = col.read_stamp()
        if not stamp or not stamp.get("encoder"):
            raise ValueError(f"{args.store} has no langalign stamp naming its encoder: give --aligner (queries in "
                             "another language) or stamp it first ('langalign index stamp')")
        embedder = _encoder_embedder(stamp["encoder"])
    with _collection(args.store) as col:
        results = col.search(queries, embedder, top_k=args.top_k, force=args.force)
    for q, hits in zip(queries, results, strict=True):
        if args.json:
            print(json.dumps({"query": q, "hits": [h._asdict() for h in hits]}, ensure_ascii=False))
            continue
        print(q)
        for rank, h in enumerate(hits, 1):
            text = " ".join((h.text or "").split())[:160]
            print(f"  {rank:>2}. {h.score:.4f}  [{h.id}]  {text}")
    sys.stdout.flush()
    return 0
