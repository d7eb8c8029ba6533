"""Existing vector stores answering ko/ja/zh queries through the English-only bridge (issue 25, item 4).

    python bench/stores.py --out results                   # 1,000 Tatoeba pairs per language, 5k-sentence bridge
    python bench/stores.py --out /tmp/stores --quick       # 200 pairs, 1k-sentence ridge bridge (about 2 min)

For each language, the English side of Tatoeba (1,000 sentences) is embedded once by ``minilm``; the
Korean / Japanese / Chinese side (1,000 queries) goes through an English-only bridge
``LangAlign("minilm", "use-multilingual").fit_bridge(english_pool_sample)`` (``--pool-size`` sentences
of the English pool in the data home; if the pool is not built, English training texts from
../shared/data: SST-2 train, SNLI dev, STS-B train, SIB-200 train). Those *same* vectors are written
into a Chroma, a LanceDB and a Qdrant collection in a temporary folder through langalign's adapters
(``VectorCollection.add_texts``, stamped) and into langalign's own ``SearchIndex``; then each store
answers the queries through its adapter (``VectorCollection.search``, stamp checked) and we count
queries whose top-1 id, and whose top-10 ids in order, equal ``SearchIndex``'s. Exactness configured:

- Chroma: HNSW (its only index) with ``ef_search`` = number of documents, ``ef_construction`` 200, cosine
  space; a second collection with Chroma's default HNSW settings (``ef_search`` 100) shows the
  approximation at defaults;
- LanceDB: no ANN index, cosine distance, ``bypass_vector_index`` (a flat scan);
- Qdrant: local mode, which is a brute-force scan; cosine distance;
- SearchIndex: exact inner product on unit vectors (FAISS ``IndexFlatIP`` when installed, else numpy).

Overhead: the adapter's search (check + unit-normalise + the store call + building hits) against the
store's own client called directly with the same query vectors, median of ``--repeats`` rounds over
all queries of one language; and the LangChain / LlamaIndex classes' ``embed_query`` against
``aligner.to_source([text])`` (what they wrap), one query per call, with the real (uncached) encoders
(medians per call, the three taking turns on every query), and what the classes add on their own
(the same classes around a lookup of precomputed vectors).
Document and query vectors of the store part go through langalign's embedding cache
(``CachedEncoder``), so a rerun skips the encoding. Timings are wall-clock on a
shared 2-core machine; nothing here is asserted in tests.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("LANGALIGN_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
LANGS = ("ko", "ja", "zh")
KINDS = ("chroma", "chroma-default-hnsw", "lancedb", "qdrant")
PACKAGES = ("langalign", "chromadb", "lancedb", "pylance", "qdrant-client", "langchain-core", "llama-index-core",
            "numpy", "torch", "faiss-cpu")


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def english_texts(n: int) -> tuple[list[str], str]:
    """``n`` English training sentences: the English pool if built, else shared training texts."""
    from langalign.data import load_english_pool

    try:
        return load_english_pool(max_sentences=n, seed=0), "english-pool"
    except Exception as e:  # pool not built: fall back to the shared data's English training texts
        _say(f"English pool unavailable ({type(e).__name__}: {e}); using shared English training texts")
    data = ROOT.parent / "shared" / "data"
    texts: list[str] = []
    for line in (data / "sentiment" / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        texts.append(line.split("\t")[0])
    for name in ("s1.dev", "s2.dev"):
        texts += (data / "nli" / "snli_esnli" / name).read_text(encoding="utf-8").splitlines()
    seen, out = set(), []
    rng = np.random.default_rng(0)
    for i in rng.permutation(len(texts)):
        t = " ".join(texts[i].split())
        if len(t.split()) >= 4 and t.lower() not in seen:
            seen.add(t.lower())
            out.append(t)
        if len(out) == n:
            break
    return out, "shared training texts (SST-2 train, SNLI dev)"


class Precomputed:
    """Build a langalign embedder that returns vectors computed once, so every engine sees the same vectors."""

    @staticmethod
    def make(space: dict, docs: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> Any:
        from langalign.integrations.embedder import QueryDocEmbedder

        class _Emb(QueryDocEmbedder):
            normalize = True

            @property
            def space(self) -> dict:
                return space

            def _documents(self, texts: list[str]) -> np.ndarray:
                return np.stack([docs[t] for t in texts])

            def _queries(self, texts: list[str]) -> np.ndarray:
                return np.stack([queries[t] for t in texts])

        return _Emb()


def _interleaved(fns: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the functions taking turns within every round (rotating who goes
    first), so load from other jobs on a shared machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def _per_call(fns: dict[str, Any], texts: list[str], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns on every text."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for i, x in enumerate(texts):
            j = (i + r) % len(names)
            for name in names[j:] + names[:j]:
                t0 = time.perf_counter()
                fns[name](x)
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def direct_call(col: Any, Q: np.ndarray, k: int) -> Any:
    """The store's own client, called the way a user would with query vectors in hand."""
    from langalign.integrations.embedder import unit_rows

    Qn = unit_rows(Q)
    if col.kind == "chroma":
        c = col._collection()
        return lambda: c.query(query_embeddings=Qn, n_results=k, include=["distances", "documents"])
    if col.kind == "lancedb":
        t = col._table()
        return lambda: [t.search(q).distance_type("cosine").bypass_vector_index().select(["id", "text", "_distance"])
                        .limit(k)
                        .to_arrow() for q in Qn]
    from qdrant_client import models

    client = col._qdrant()
    reqs = [models.QueryRequest(query=q.tolist(), limit=k, with_payload=True) for q in Qn]
    return lambda: client.query_batch_points(col.name, requests=reqs)


def compare(ref_ids: list[list[str]], ref_scores: list[list[float]], got: list[list[Any]], k: int) -> dict:
    top1 = sum(1 for r, g in zip(ref_ids, got, strict=True) if g and g[0].id == r[0])
    topk = sum(1 for r, g in zip(ref_ids, got, strict=True) if [h.id for h in g[:k]] == r[:k])
    gaps = []  # where lists differ: the score gap between the two documents swapped in SearchIndex's ranking
    for r, s, g in zip(ref_ids, ref_scores, got, strict=True):
        gi = [h.id for h in g[:k]]
        if gi != r[:k]:
            first = next(j for j in range(min(len(gi), k)) if gi[j] != r[j])
            other = r.index(gi[first]) if gi[first] in r else None
            gaps.append(abs(s[first] - s[other]) if other is not None else None)
    known = [x for x in gaps if x is not None]
    return {"top1_equal": top1, f"top{k}_equal": topk, "queries": len(ref_ids),
            "differing_lists": len(gaps), "max_score_gap_where_differing": max(known) if known else None,
            "differing_outside_reference_top_k": sum(1 for x in gaps if x is None)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import langalign as la
    from langalign.data import load_tatoeba
    from langalign.index import SearchIndex
    from langalign.integrations import open_collection
    from langalign.integrations.langchain import LangAlignEmbeddings
    from langalign.integrations.llamaindex import LangAlignEmbedding
    from langalign.scale.cache import CachedEncoder

    warnings.simplefilter("ignore", DeprecationWarning)
    t_all = time.perf_counter()
    src, tgt = CachedEncoder(la.load_encoder("minilm")), CachedEncoder(la.load_encoder("use-multilingual"))
    english, pool_source = english_texts(args.pool_size)
    t0 = time.perf_counter()
    if args.bridge is not None and (args.bridge / "config.json").is_file():
        _say(f"bridge: loading {args.bridge} (fitted by an earlier run)")
        bridge = la.LangAlign.load(args.bridge, source_encoder=src, target_encoder=tgt)
        fit_s = None
    else:
        _say(f"bridge: fit_bridge on {len(english)} sentences from {pool_source}, mapper={args.mapper}")
        bridge = la.LangAlign(src, tgt, mapper=args.mapper).fit_bridge(english)
        fit_s = round(time.perf_counter() - t0, 1)
        if args.bridge is not None:
            bridge.save(args.bridge)
    trained = bridge.training_.get("bridge", {})
    space = {k: v for k, v in src.identity().items() if k in ("name", "dim", "fingerprint")}
    k = args.k
    res: dict[str, Any] = {"bridge": {"pool_source": pool_source, "sentences": trained.get("english"),
                                      "map": trained.get("mapper"), "fit_seconds": fit_s,
                                      "loaded_from": str(args.bridge) if fit_s is None else None},
                           "documents_per_language": args.pairs, "k": k, "languages": {}, "overhead": {}}
    work = Path(tempfile.mkdtemp(prefix="langalign-stores-"))
    try:
        for lang in args.langs:
            corpus = load_tatoeba(lang)
            docs, queries = corpus.source[: args.pairs], corpus.target[: args.pairs]
            ids = [f"{lang}-{i}" for i in range(len(docs))]
            _say(f"{lang}: embedding {len(docs)} English documents and {len(queries)} queries")
            D = src.encode(docs, show_progress=False)
            Q = bridge.to_source(queries)
            emb = Precomputed.make(space, dict(zip(docs, D, strict=True)), dict(zip(queries, Q, strict=True)))
            idx = SearchIndex(src).build_embeddings(D, docs, ids)
            ref = idx.search(Q, top_k=k)
            ref_ids = [[h.id for h in row] for row in ref]
            ref_scores = [[h.score for h in row] for row in ref]
            gold = sum(1 for i, row in enumerate(ref_ids) if row[0] == ids[i]) / len(ids)
            per: dict[str, Any] = {"searchindex_backend": idx.info()["backend"],
                                   "searchindex_top1_accuracy": round(gold, 4), "stores": {}}
            for kind in KINDS:
                store = "chroma" if kind.startswith("chroma") else kind
                kw: dict[str, Any] = {}
                if kind == "chroma":
                    kw["hnsw"] = {"ef_search": max(len(docs), 100), "ef_construction": 200}
                col = open_collection(f"{store}:{work / kind / lang}/tatoeba", **kw)
                t0 = time.perf_counter()
                col.add_texts(docs, emb, ids=ids)
                write_s = time.perf_counter() - t0
                hits = col.search(queries, emb, top_k=k)
                row = compare(ref_ids, ref_scores, hits, k)
                row["top1_accuracy"] = round(sum(1 for i, h in enumerate(hits) if h[0].id == ids[i]) / len(ids), 4)
                row["write_seconds"] = round(write_s, 2)
                t = _interleaved({
                    "direct": direct_call(col, Q, k),
                    "adapter": lambda col=col, queries=queries, emb=emb: col.search(queries, emb, top_k=k),
                    "searchindex": lambda idx=idx, Q=Q: idx.search_vectors(Q, k)}, args.repeats)
                row["query_ms_per_query"] = {name: round(1000 * v / len(Q), 4) for name, v in t.items()}
                row["adapter_over_direct"] = round(t["adapter"] / t["direct"], 3)
                per["stores"][kind] = row
                col.close()
                _say(f"{lang} {kind}: top-1 equal {row['top1_equal']}/{len(Q)}, top-{k} equal {row[f'top{k}_equal']}, "
                     f"adapter {row['adapter_over_direct']}x direct")
            res["languages"][lang] = per
        # the framework classes vs the call they wrap, one query per call
        lang = args.langs[0]
        texts = load_tatoeba(lang).target[: args.overhead_queries]
        # uncached encoders here: the classes wrap what a user runs, a real encoder call per query
        saved = work / "bridge"
        bridge.save(saved)
        plain = la.LangAlign.load(saved, source_encoder=src.encoder, target_encoder=tgt.encoder)
        lc, li = LangAlignEmbeddings(plain), LangAlignEmbedding(plain)
        bridge = plain
        for t in texts[:5]:  # warm both paths
            bridge.to_source([t]), lc.embed_query(t), li.get_query_embedding(t)
        t = _per_call({"plain": lambda x: bridge.to_source([x]), "langchain": lc.embed_query,
                       "llamaindex": li.get_query_embedding}, texts, args.repeats)
        t_plain, t_lc, t_li = t["plain"], t["langchain"], t["llamaindex"]
        # what the classes add, alone: the same classes around an embedder whose "encoder" is a lookup
        vecs = dict(zip(texts, bridge.to_source(texts), strict=True))
        pre = Precomputed.make(space, {}, vecs)
        lc0, li0 = LangAlignEmbeddings(pre), LangAlignEmbedding(pre)
        w = _per_call({"lookup": lambda x: pre._queries([x]), "langchain": lc0.embed_query,
                       "llamaindex": li0.get_query_embedding}, texts, args.repeats)
        res["overhead"] = {"language": lang, "queries": len(texts),
                           "ms_per_query": {"aligner.to_source": round(1000 * t_plain, 3),
                                            "LangChain embed_query": round(1000 * t_lc, 3),
                                            "LlamaIndex get_query_embedding": round(1000 * t_li, 3)},
                           "langchain_over_direct": round(t_lc / t_plain, 3),
                           "llamaindex_over_direct": round(t_li / t_plain, 3),
                           "added_us_per_query": {"LangChain": round(1e6 * (w["langchain"] - w["lookup"]), 1),
                                                  "LlamaIndex": round(1e6 * (w["llamaindex"] - w["lookup"]), 1)}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["seconds"] = round(time.perf_counter() - t_all, 1)
    return res


def markdown(res: dict[str, Any]) -> str:
    k = res["k"]
    b = res["bridge"]
    fitted = f"fitted in {b['fit_seconds']} s" if b["fit_seconds"] else f"loaded from {b['loaded_from']}"
    out = [f"# Existing vector stores through the English-only bridge ({res['date']})", "",
           f"`{res['command']}` (commit `{res['commit']}`, {res['seconds']} s on {res['machine']}, shared with "
           f"other jobs). Bridge: `fit_bridge` on {b['sentences']} sentences of the {b['pool_source']}, map "
           f"`{b['map']}` ({fitted}). "
           f"{res['documents_per_language']} Tatoeba English documents per language, as many queries. Equal = the "
           f"same ids in the same order as langalign's `SearchIndex` on the same vectors (backend "
           f"{next(iter(res['languages'].values()))['searchindex_backend']}); where a list differs, the largest gap "
           "between the cosines (by SearchIndex) of two documents swapped, or a document outside SearchIndex's "
           "top-k (an approximate search's miss). Times: median of interleaved rounds, "
           "all queries of a language per round.", "",
           f"| language | store | top-1 equal | top-{k} equal (ids and order) | largest gap where differing | "
           "top-1 accuracy (SearchIndex) | ms/query direct | ms/query adapter | adapter / direct | "
           "ms/query SearchIndex | write s |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lang, per in res["languages"].items():
        for kind, r in per["stores"].items():
            ms = r["query_ms_per_query"]
            gap = r["max_score_gap_where_differing"]
            outside = r["differing_outside_reference_top_k"]
            shown = "-" if not r["differing_lists"] else ", ".join(
                ([f"swap {gap:.1e}"] if gap is not None else [])
                + ([f"{outside} with a document outside SearchIndex's top-{k}"] if outside else []))
            out.append(f"| {lang} | {kind} | {r['top1_equal']}/{r['queries']} | {r[f'top{k}_equal']}/{r['queries']} | "
                       f"{shown} | "
                       f"{r['top1_accuracy']:.3f} ({per['searchindex_top1_accuracy']:.3f}) | {ms['direct']:.3f} | "
                       f"{ms['adapter']:.3f} | {r['adapter_over_direct']:.2f}x | {ms['searchindex']:.3f} | "
                       f"{r['write_seconds']:.1f} |")
    o = res["overhead"]
    out += ["", f"Framework classes, one {o['language']} query per call ({o['queries']} queries, ms/query): "
            + ", ".join(f"{name} {v:.2f}" for name, v in o["ms_per_query"].items())
            + f" (LangChain {o['langchain_over_direct']:.2f}x, LlamaIndex {o['llamaindex_over_direct']:.2f}x; medians "
            "per call, the three taking turns on every query). What the classes add alone, around a lookup instead "
            "of the encoders: " + ", ".join(f"{name} {v:.0f} µs" for name, v in o["added_us_per_query"].items())
            + " per query.", "",
            "Versions: " + ", ".join(f"{p} {v}" for p, v in res["versions"].items()), ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for stores.md and stores.json")
    ap.add_argument("--quick", action="store_true", help="200 pairs, a 1,000-sentence ridge bridge")
    ap.add_argument("--langs", default=",".join(LANGS))
    ap.add_argument("--pairs", type=int, default=1000, help="Tatoeba pairs per language (documents and queries)")
    ap.add_argument("--pool-size", type=int, default=5000, help="English sentences the bridge is fitted on")
    ap.add_argument("--mapper", default="default", help="fit_bridge's mapper (default: its residual MLP)")
    ap.add_argument("--bridge", type=Path, help="a saved bridge to load, or where to save the one fitted")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5, help="timing rounds (median)")
    ap.add_argument("--overhead-queries", type=int, default=200)
    args = ap.parse_args()
    args.langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if args.quick:
        args.pairs, args.pool_size, args.mapper, args.repeats = 200, 1000, "ridge", 3
        args.overhead_queries = 50
    res = run(args)
    res["command"] = "python bench/stores.py " + " ".join(sys.argv[1:])
    res["date"] = dt.date.today().isoformat()
    res["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    try:
        res["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        res["commit"] = "unknown"
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    res["versions"] = versions
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stores.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "stores.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
