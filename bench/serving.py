"""Serving benchmark: cross-lingual retrieval retention and service overhead, in one run.

    python bench/serving.py --out results            # full (about 10 min on 2 busy CPU cores)
    python bench/serving.py --out /tmp/serving --quick     # everything small (about 3 min)

(a) Retention. An English Tatoeba index is built with ``minilm`` (an English-only encoder). Korean,
Japanese and Chinese queries (1,000 per language) reach it through an English-only bridge,
``LangAlign("minilm", "use-multilingual")`` fitted on English sentences alone (SIB-200 English train,
SNLI dev, SST-2 train; never Tatoeba: any pool sentence that also occurs in Tatoeba is dropped), and
through the peer, aecp's ``RidgeMapping`` fitted on the same English pairs. The reference is
re-embedding the corpus (what the bridge avoids) with use-multilingual or with e5-small, whichever is
better. Top-1 accuracy with cosine and with CSLS (the 1,000 queries of a language as the reference set),
and retention like for like: top-1 with cosine / the better re-embedding's top-1 with cosine, and CSLS by
CSLS. ``minilm alone`` (no map) is the floor.

(b) Service. ``langalign serve`` in its own process answers ``POST /v1/embeddings`` with the model
``ko->en:bridge`` (use-multilingual, then the Rev-LangAlign map), one Korean sentence per request, at
concurrency 1, 8 and 32 (``--requests`` per level, 127.0.0.1, per-request timeout 60 s). The baseline
is a separate process holding the same models (no HTTP): ``bridge.to_source([text])`` one text per
call (``--inprocess-requests``), and one call on a round's texts (the batching ceiling); each level
alternates service and in-process rounds so both see the same load on a shared machine. Memory is the
resident set (VmRSS, peak VmHWM) of each process.

(c) Mechanics. The same levels against an encoder that sleeps (30 ms + 5 ms per text) instead of
computing, in-process: what the HTTP layer and the micro-batcher cost when the encoder does not compete
with them for the CPU, and how full the batches get.

Needs the serve and bench extras: ``pip install 'langalign[serve,bench]'`` (aecp, httpx). Timings are
wall-clock on this machine; nothing here is asserted in tests.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("LANGALIGN_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
LANGS = ("ko", "ja", "zh")


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _proc_status(pid: int | str = "self") -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = round(int(v.split()[0]) / 1024, 1)  # MB
    return out


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


# ---------------------------------------------------------------- (a) retention

def english_pool(n: int, banned: set[str], seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """English training sentences only: SIB-200 en train, then SNLI dev and SST-2 train, minus Tatoeba."""
    from langalign.data import find_reference_data, load_sentiment, load_sib200

    root = find_reference_data()
    sib = list(dict.fromkeys(load_sib200("en", "train").texts))
    snli: list[str] = []
    for name in ("s1.dev", "s2.dev"):
        snli += [t.strip() for t in (root / "nli" / "snli_esnli" / name).read_text(encoding="utf-8").splitlines()]
    snli = list(dict.fromkeys(t for t in snli if t))
    sst = list(dict.fromkeys(load_sentiment("en", "train").texts))

    def clean(xs: list[str]) -> list[str]:
        return [t for t in xs if t.strip().lower() not in banned]

    dropped = {"sib200": len(sib) - len(clean(sib)), "snli": len(snli) - len(clean(snli)),
               "sst2": len(sst) - len(clean(sst))}
    sib, snli, sst = clean(sib), clean(snli), clean(sst)
    rng = np.random.default_rng(seed)
    take_sib = sib[: min(len(sib), n // 3)]
    rest = n - len(take_sib)
    take_snli = [snli[i] for i in np.sort(rng.choice(len(snli), min(len(snli), rest // 2), replace=False))]
    take_sst = [sst[i] for i in np.sort(rng.choice(len(sst), min(len(sst), rest - len(take_snli)), replace=False))]
    pool = list(dict.fromkeys(take_sib + take_snli + take_sst))
    info = {"pairs": len(pool), "sib200_en_train": len(take_sib), "snli_dev": len(take_snli),
            "sst2_train": len(take_sst), "dropped_because_in_tatoeba": dropped}
    return pool, info


def _top1(index: Any, Q: np.ndarray, gold_texts: list[str], docs: list[str], csls: bool) -> float:
    _, rows = index.search_vectors(Q, 1, csls=csls)
    return float(np.mean([docs[int(r)] == g for r, g in zip(rows[:, 0], gold_texts, strict=True)]))


def retention(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from aecp.mapping.linear import RidgeMapping

    from langalign import LangAlign, load_encoder
    from langalign.data import load_tatoeba
    from langalign.evaluation import like_for_like_retention
    from langalign.index import SearchIndex

    _say("loading encoders minilm, use-multilingual")
    mini, use, e5 = load_encoder("minilm"), load_encoder("use-multilingual"), load_encoder("e5-small")
    tatoeba = {lang: load_tatoeba(lang) for lang in LANGS}
    for c in tatoeba.values():
        assert len(c) == 1000, len(c)
    banned = {t.strip().lower() for c in tatoeba.values() for t in c.source}
    pool, pool_info = english_pool(args.pool, banned, args.seed)
    _say(f"bridge pool: {pool_info}")
    t0 = time.perf_counter()
    Xm = mini.encode(pool)
    t_mini = time.perf_counter() - t0
    t0 = time.perf_counter()
    Xu = use.encode(pool)
    t_use = time.perf_counter() - t0
    _say(f"encoded the pool: minilm {t_mini:.0f}s, use-multilingual {t_use:.0f}s")

    t0 = time.perf_counter()
    bridge = LangAlign(mini, use, seed=args.seed).fit_embeddings(Xm, Xu)
    t_fit = time.perf_counter() - t0
    bridge.save(work / "bridge")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        ridge = RidgeMapping(alpha="auto", seed=args.seed).fit(Xu, Xm)  # new-model (USE) queries -> legacy (MiniLM)
        t_fit_aecp = time.perf_counter() - t0
    aecp_warnings = sorted({str(w.message).split(".")[0] for w in caught})
    out: dict[str, Any] = {
        "pool": pool_info, "encode_seconds": {"minilm": round(t_mini, 1), "use-multilingual": round(t_use, 1)},
        "fit_seconds": {"langalign": round(t_fit, 2), "aecp": round(t_fit_aecp, 2)},
        "langalign_mapper": {"name": bridge.mapper, "choice": getattr(bridge.reverse_, "choice_", None),
                             "held_out": bridge.scores_.get("reverse")},
        "aecp_validation": ridge.validation_report().to_dict(), "aecp_warnings": aecp_warnings,
        "floor_queries": args.floor, "langs": {},
    }
    for lang in LANGS:
        c = tatoeba[lang]
        docs, queries = list(c.source), list(c.target)
        _say(f"{lang}: encoding 1,000 English documents (minilm, use-multilingual) and 1,000 queries")
        Em, Eu, Qu = mini.encode(docs), use.encode(docs), use.encode(queries)
        idx_m = SearchIndex(mini).build_embeddings(Em, docs)
        idx_u = SearchIndex(use).build_embeddings(Eu, docs)
        rows: dict[str, dict[str, float]] = {}
        idx_e = SearchIndex(e5).build_embeddings(e5.encode(docs), docs)
        for name, idx, Q in (("re-embed corpus (use-multilingual)", idx_u, Qu),
                             ("re-embed corpus (e5-small)", idx_e, e5.encode(queries)),
                             ("langalign bridge (minilm index)", idx_m, bridge.to_source(Qu)),
                             ("aecp ridge (minilm index)", idx_m, np.asarray(ridge.transform(Qu), np.float32))):
            rows[name] = {"top1_cosine": _top1(idx, Q, docs, docs, False), "top1_csls": _top1(idx, Q, docs, docs, True)}
        if args.floor:
            Qm = mini.encode(queries[: args.floor])
            rows["minilm alone, no map"] = {"top1_cosine": _top1(idx_m, Qm, docs[: args.floor], docs, False)}
        # Like for like: each scoring method over the better re-embedding scored the same way.
        refs = {n: {k: rows[n][f"top1_{k}"] for k in ("cosine", "csls")} for n in rows if n.startswith("re-embed")}
        for r in rows.values():
            got = {k: r[f"top1_{k}"] for k in ("cosine", "csls") if f"top1_{k}" in r}
            for k, v in like_for_like_retention(got, refs).items():
                r[f"retention_{k}"], r[f"reference_{k}"] = v["retention"], v["reference"]
        out["langs"][lang] = rows
        _say(f"{lang}: " + "; ".join(f"{n}: {r['top1_cosine']:.3f}" for n, r in rows.items()))
    return out


# ---------------------------------------------------------------- (b) service

def _worker_inprocess(aligner: str) -> None:
    """A fresh process holding the same models as the service, answering commands on stdin (JSON lines out):
    ``seq N OFFSET`` (N texts, one ``bridge.to_source([text])`` call each), ``batch N OFFSET`` (one call on N
    texts), ``quit``."""
    from langalign import LangAlign, load_encoder
    from langalign.data import load_tatoeba

    t0 = time.perf_counter()
    # both encoders, as the service loads them (to_source itself reads with use-multilingual only)
    bridge = LangAlign.load(aligner, source_encoder=load_encoder("minilm"),
                            target_encoder=load_encoder("use-multilingual"))
    bridge.to_source(["warm up"])
    texts = load_tatoeba("ko").target
    for t in texts[:10]:
        bridge.to_source([t])
    print(json.dumps({"load_seconds": round(time.perf_counter() - t0, 1), "memory_mb": _proc_status()}), flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "quit":
            break
        n, off = int(rest[0]), int(rest[1]) if len(rest) > 1 else 0
        batch = [texts[(off + i) % len(texts)] for i in range(n)]
        if cmd == "seq":
            lat = []
            t0 = time.perf_counter()
            for t in batch:
                s = time.perf_counter()
                bridge.to_source([t])
                lat.append(time.perf_counter() - s)
            wall = time.perf_counter() - t0
            out = {"texts": len(batch), "seconds": wall, "latencies": lat}
        else:
            t0 = time.perf_counter()
            bridge.to_source(batch)
            out = {"texts": len(batch), "seconds": time.perf_counter() - t0}
        print(json.dumps({**out, "memory_mb": _proc_status()}), flush=True)


async def _level(url: str, texts: list[str], conc: int, deadline: float) -> dict[str, Any]:
    import httpx

    sem = asyncio.Semaphore(conc)
    lat: list[float] = []
    codes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def one(t: str) -> None:
            async with sem:
                if time.monotonic() > deadline:
                    codes["skipped (deadline)"] = codes.get("skipped (deadline)", 0) + 1
                    return
                s = time.perf_counter()
                try:
                    r = await client.post("/v1/embeddings", json={"model": "ko->en:bridge", "input": t})
                    key = str(r.status_code)
                    if r.status_code == 200 and len(r.json()["data"][0]["embedding"]) != 384:
                        key = "200 but wrong shape"
                except httpx.HTTPError as e:
                    key = type(e).__name__
                lat.append(time.perf_counter() - s)
                codes[key] = codes.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        wall = time.perf_counter() - t0
    return {"requests": len(texts), "ok": codes.get("200", 0), "codes": codes, "seconds": wall, "latencies": lat}


def service(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each level runs in ``--rounds`` rounds; a round is a slice of service requests, then in-process calls
    on the same texts, so both see the same load on a shared machine (the two never run at the same time).
    Ratios are medians of the per-round ratios; throughputs and percentiles pool all rounds."""
    import httpx

    from langalign.data import load_tatoeba

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    n, n_seq = args.requests, args.inprocess_requests
    _say("starting the in-process baseline (a fresh process with the same models)")
    worker = subprocess.Popen([sys.executable, __file__, "--worker-inprocess", str(work / "bridge")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert worker.stdin is not None and worker.stdout is not None

    def ask(cmd: str) -> dict[str, Any]:
        if cmd:
            worker.stdin.write(cmd + "\n")
            worker.stdin.flush()
        line = worker.stdout.readline()
        if not line:
            raise RuntimeError("the in-process worker exited")
        return json.loads(line)

    log = work / "serve.log"
    cmd = [sys.executable, "-m", "langalign.cli", "serve", "--aligner", f"bridge={work / 'bridge'}", "--port", "0",
           "--no-access-log", "--log-level", "warning"]
    out: dict[str, Any] = {"command": "langalign serve --aligner bridge=DIR --port 0", "levels": []}
    proc = None
    try:
        out["in_process_ready"] = ask("")
        _say("starting: " + " ".join(cmd[1:]))
        t0 = time.perf_counter()
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
        url = None
        while time.perf_counter() - t0 < 300:
            text = log.read_text()
            m = re.search(r"serving on (http://\S+)", text)
            url = m.group(1) if m else None
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {text[-2000:]}")
            if url:
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        else:
            raise RuntimeError("the server did not become ready in 300 s")
        out["ready_seconds"] = round(time.perf_counter() - t0, 1)
        out["memory_mb_ready"] = _proc_status(proc.pid)
        texts = load_tatoeba("ko").target
        asyncio.run(_level(url, texts[:10], 1, time.monotonic() + 60))  # warm-up, not measured
        rounds = max(1, args.rounds)
        for conc in args.levels:
            svc_lat, seq_lat, codes = [], [], {}
            svc_s = seq_s = one_s = 0.0
            ok = seq_n = one_n = 0
            ratio_seq, ratio_one, ratio_p50 = [], [], []
            deadline = time.monotonic() + args.level_timeout
            for k in range(rounds):
                m_svc, m_seq = n // rounds, max(1, n_seq // rounds)
                off = k * m_svc
                batch = [texts[(off + i) % len(texts)] for i in range(m_svc)]
                sv = asyncio.run(_level(url, batch, conc, deadline))
                sq, on = ask(f"seq {m_seq} {off}"), ask(f"batch {m_svc} {off}")
                for c_, v in sv["codes"].items():
                    codes[c_] = codes.get(c_, 0) + v
                svc_lat += sv["latencies"]
                seq_lat += sq["latencies"]
                svc_s, seq_s, one_s = svc_s + sv["seconds"], seq_s + sq["seconds"], one_s + on["seconds"]
                ok, seq_n, one_n = ok + sv["ok"], seq_n + sq["texts"], one_n + on["texts"]
                if sv["ok"]:
                    tp = sv["ok"] / sv["seconds"]
                    ratio_seq.append(tp / (sq["texts"] / sq["seconds"]))
                    ratio_one.append(tp / (on["texts"] / on["seconds"]))
                    ratio_p50.append(_pct(sv["latencies"], 50) / _pct(sq["latencies"], 50))
            r: dict[str, Any] = {
                "concurrency": conc, "requests": rounds * (n // rounds), "ok": ok, "codes": codes, "rounds": rounds,
                "throughput_per_s": ok / svc_s, "p50_ms": 1000 * _pct(svc_lat, 50), "p99_ms": 1000 * _pct(svc_lat, 99),
                "in_process_sequential": {"texts": seq_n, "throughput_per_s": seq_n / seq_s,
                                          "p50_ms": 1000 * _pct(seq_lat, 50), "p99_ms": 1000 * _pct(seq_lat, 99)},
                "in_process_one_batch": {"texts": one_n, "throughput_per_s": one_n / one_s},
                "throughput_vs_in_process_sequential": float(np.median(ratio_seq)) if ratio_seq else float("nan"),
                "throughput_vs_in_process_one_batch": float(np.median(ratio_one)) if ratio_one else float("nan"),
                "p50_vs_in_process_sequential": float(np.median(ratio_p50)) if ratio_p50 else float("nan"),
                "per_round_throughput_vs_in_process_sequential": ratio_seq,
            }
            seq, one = r["in_process_sequential"], r["in_process_one_batch"]
            out["levels"].append(r)
            _say(f"concurrency {conc}: {r['throughput_per_s']:.1f} req/s, p50 {r['p50_ms']:.0f} ms, "
                 f"p99 {r['p99_ms']:.0f} ms, codes {r['codes']}; in-process {seq['throughput_per_s']:.1f}/s "
                 f"one per call (p50 {seq['p50_ms']:.0f} ms), {one['throughput_per_s']:.1f}/s in one batch")
        out["memory_mb_after"] = _proc_status(proc.pid)
        out["in_process_memory_mb"] = ask("batch 1 0")["memory_mb"]
    finally:
        if worker.poll() is None:
            try:
                worker.stdin.write("quit\n")
                worker.stdin.flush()
                worker.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                worker.kill()
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                out["exit_code"] = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out["exit_code"] = proc.wait(10)
    return out


def mechanics(args: argparse.Namespace) -> dict[str, Any]:
    """The HTTP + batching path alone: the same levels against an encoder that sleeps instead of computing
    (30 ms + 5 ms per text, releasing the CPU), so the encoder does not compete with the server and the load
    generator for the cores. Ideal throughput at concurrency c: c / (30 + 5c) ms, if every batch held c texts."""
    import threading

    import httpx

    from langalign import FunctionEncoder
    from langalign.serving import ServeConfig, build_server

    def fn(texts: list[str]) -> np.ndarray:
        time.sleep(0.030 + 0.005 * len(texts))
        return np.ones((len(texts), 384), np.float32)

    enc = FunctionEncoder(fn, "sleeper", 384)
    server, sock, reg = build_server(ServeConfig(port=0, encoders=[enc]), log_level="warning", access_log=False)
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    t0 = time.perf_counter()
    while (reg.state != "ready" or not server.started) and time.perf_counter() - t0 < 60:
        time.sleep(0.05)
    out = []
    try:
        for conc in args.levels:
            b = reg.batcher(enc)
            n0, t0_ = b.batches, b.texts

            async def run(c: int = conc) -> dict[str, Any]:
                sem = asyncio.Semaphore(c)
                async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=c), timeout=60) as cl:
                    lat: list[float] = []

                    async def one(i: int) -> None:
                        async with sem:
                            s = time.perf_counter()
                            r = await cl.post("/v1/embeddings", json={"model": "sleeper", "input": f"text {i}"})
                            r.raise_for_status()
                            lat.append(time.perf_counter() - s)

                    t = time.perf_counter()
                    await asyncio.gather(*(one(i) for i in range(args.requests)))
                    return {"throughput_per_s": args.requests / (time.perf_counter() - t),
                            "p50_ms": 1000 * _pct(lat, 50)}

            r = asyncio.run(run())
            r.update(concurrency=conc, mean_batch=(b.texts - t0_) / max(1, b.batches - n0),
                     ideal_per_s=conc / (0.030 + 0.005 * conc))
            out.append(r)
            _say(f"mechanics, concurrency {conc}: {r['throughput_per_s']:.1f} req/s (ideal {r['ideal_per_s']:.0f}), "
                 f"mean batch {r['mean_batch']:.1f}, p50 {r['p50_ms']:.0f} ms")
    finally:
        server.should_exit = True
        th.join(20)
    return {"levels": out}


# ---------------------------------------------------------------- report

def markdown(res: dict[str, Any]) -> str:
    lines = ["# Serving benchmark", "", f"Run {res['created']} with `{res['command']}` "
             f"({res['seconds']:.0f} s; {res['machine']}).", ""]
    r = res.get("retention")
    if r:
        p = r["pool"]
        lines += ["## Retrieval retention on Tatoeba (1,000 pairs per language, x -> en)", "",
                  f"English index built with `minilm`. Bridge: `LangAlign('minilm', 'use-multilingual')` fitted on "
                  f"{p['pairs']:,} English sentences only (SIB-200 en train {p['sib200_en_train']}, SNLI dev "
                  f"{p['snli_dev']}, SST-2 train {p['sst2_train']}; dropped for also being in Tatoeba: "
                  f"{p['dropped_because_in_tatoeba']}). aecp `RidgeMapping(alpha='auto')` fitted on the same pairs. "
                  f"Encoding the pool: {r['encode_seconds']}; fitting: {r['fit_seconds']} s.", "",
                  "| lang | method | top-1 cosine | retention | top-1 CSLS | retention (CSLS) |",
                  "|---|---|---|---|---|---|"]
        for lang, rows in r["langs"].items():
            for name, v in rows.items():
                csls = (f"{v['top1_csls']:.3f} | {v['retention_csls']:.1%}" if "top1_csls" in v else "- | -")
                lines.append(f"| {lang} | {name} | {v['top1_cosine']:.3f} | {v['retention_cosine']:.1%} | {csls} |")
        means = {}
        for rows in r["langs"].values():
            for name, v in rows.items():
                means.setdefault(name, []).append(v["retention_cosine"])
        lines += ["", "Retention is like for like: cosine over the better re-embedding (use-multilingual or e5-small) "
                  "scored with cosine, CSLS over the better one scored with CSLS.", "",
                  "Mean retention (cosine): " + "; ".join(f"{k} {np.mean(v):.1%}" for k, v in means.items()), ""]
        if r["aecp_warnings"]:
            lines += [f"aecp warned: {'; '.join(r['aecp_warnings'])}.", ""]
        if r.get("floor_queries"):
            lines += [f"`minilm alone` uses the first {r['floor_queries']} queries per language.", ""]
    s = res.get("service")
    if s:
        ip = s["in_process_ready"]
        lines += ["## Service overhead (`POST /v1/embeddings`, model `ko->en:bridge`, one Korean sentence per "
                  "request)", "",
                  f"Server ready {s['ready_seconds']} s after start (in-process: models loaded in "
                  f"{ip['load_seconds']} s). Each level ran in rounds, each round a slice of requests and then "
                  "the in-process baseline on the same texts (`bridge.to_source([text])` one text per call, and "
                  "one call on the round's texts: the batching ceiling), so both saw the same machine load; the "
                  "ratios are medians of the per-round ratios.", "",
                  "| concurrency | requests ok | service req/s | p50 ms | p99 ms | in-process 1/call: texts/s, "
                  "p50 ms, p99 ms | in-process one batch: texts/s | service / in-process 1/call | "
                  "service / one batch |", "|---|---|---|---|---|---|---|---|---|"]
        for lv in s["levels"]:
            q, b = lv["in_process_sequential"], lv["in_process_one_batch"]
            lines.append(f"| {lv['concurrency']} | {lv['ok']}/{lv['requests']} | {lv['throughput_per_s']:.1f} | "
                         f"{lv['p50_ms']:.0f} | {lv['p99_ms']:.0f} | {q['throughput_per_s']:.1f}, {q['p50_ms']:.0f}, "
                         f"{q['p99_ms']:.0f} | {b['throughput_per_s']:.1f} | "
                         f"{lv['throughput_vs_in_process_sequential']:.2f}x | "
                         f"{lv['throughput_vs_in_process_one_batch']:.2f}x |")
        lines += ["", f"Memory (MB): server ready {s['memory_mb_ready']}, after the load {s['memory_mb_after']}; "
                  f"in-process baseline {s['in_process_memory_mb']}. Server exit code after SIGINT: "
                  f"{s.get('exit_code')}.", ""]
    m = res.get("mechanics")
    if m:
        lines += ["## The HTTP and batching path alone (an encoder that sleeps 30 ms + 5 ms per text)", "",
                  "| concurrency | req/s | ideal req/s (every batch full) | mean batch | p50 ms |",
                  "|---|---|---|---|---|"]
        for lv in m["levels"]:
            lines.append(f"| {lv['concurrency']} | {lv['throughput_per_s']:.1f} | {lv['ideal_per_s']:.0f} | "
                         f"{lv['mean_batch']:.1f} | {lv['p50_ms']:.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--quick", action="store_true", help="small pool and few requests (about 3 min)")
    ap.add_argument("--pool", type=int, default=None, help="English bridge sentences (default 2000; quick 300)")
    ap.add_argument("--floor", type=int, default=None, help="queries per language for 'minilm alone' (default 100)")
    ap.add_argument("--requests", type=int, default=None, help="requests per concurrency level (default 300)")
    ap.add_argument("--inprocess-requests", type=int, default=None,
                    help="one-per-call in-process texts per level (default 100)")
    ap.add_argument("--rounds", type=int, default=4, help="rounds per level, alternating service and in-process")
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--level-timeout", type=float, default=240.0, help="seconds per level before it stops sending")
    ap.add_argument("--only", default="retention,service,mechanics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker-inprocess", metavar="ALIGNER", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.pool = args.pool or (300 if args.quick else 2000)
    args.floor = args.floor if args.floor is not None else (50 if args.quick else 100)
    args.requests = args.requests or (40 if args.quick else 300)
    args.inprocess_requests = args.inprocess_requests or (20 if args.quick else 100)
    if args.worker_inprocess:
        _worker_inprocess(args.worker_inprocess)
        return 0
    args.levels = [int(x) for x in args.levels.split(",")]
    only = set(args.only.split(","))
    if "service" in only and "retention" not in only:
        raise SystemExit("the service section uses the bridge fitted by the retention section; run both")
    t_start = time.perf_counter()
    argv = " ".join(a for a in sys.argv[1:])
    res: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/serving.py {argv}".strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
                   f"load average {os.getloadavg()[0]:.1f} at start",
    }
    work = Path(tempfile.mkdtemp(prefix="langalign-serving-bench-"))
    try:
        if "retention" in only:
            res["retention"] = retention(args, work)
        if "service" in only:
            res["service"] = service(args, work)
        if "mechanics" in only:
            res["mechanics"] = mechanics(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["seconds"] = time.perf_counter() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "serving.md").write_text(markdown(res), encoding="utf-8")
    _say(f"wrote {args.out / 'serving.md'} and serving.json in {res['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
