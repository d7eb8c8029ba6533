"""Overload benchmark: ``langalign serve`` at concurrency 64, with and without a small in-flight bound.

    python bench/overload.py --out results                 # 6-10 min on 2 busy CPU cores
    python bench/overload.py --out /tmp/overload --quick   # about 1.5 min

A Rev-LangAlign aligner (``use-multilingual`` on both sides, the linear default) is fitted on 500
Korean-English Tatoeba pairs and served as ``ko->en:align`` by ``langalign serve`` in its own process
(127.0.0.1, a free port). The other 500 Korean sentences are the queries, ``--texts-per-request`` 8 per
request (with one short sentence per request the HTTP layers of a Python client and server on 2 shared
cores are the bottleneck, not the encoder: the load generator could not keep 64 requests in the server).
64 clients in this process send requests back to back (``encoding_format`` base64, the openai client's
default) for ``--seconds`` (or until ``--max-requests`` are sent), then stop; each request has a 60 s
timeout. Each configuration has its own server, started first; the configurations then take turns for
``--rounds`` rounds, so that the shared machine's changing load falls on all of them:

- ``no bound``: ``--max-in-flight 1024``: the 64 clients never meet it, every request is queued (the
  default bound, 64, is the same at this concurrency);
- ``bound 16, Retry-After`` and ``bound 8, Retry-After``: a refused client waits the ``Retry-After`` it
  was given (as the ``openai`` client does) before its next request;
- ``bound 8, at once``: a refused client sends its next request at once (a client that ignores
  Retry-After: the worst flood 64 clients can make).

Reported per configuration: requests sent and their answers, latency (p50 / p99) of the admitted
requests (200) on the client's clock (those sent after a run's first 2 s, while 64 connections open),
per round and as the median over rounds, with the same-round ratio to the unbounded p50 (the machine's
load changed several-fold between rounds seconds apart in trial runs), the server's own mean latency of
them (``/metrics``), 200s per second, the encoder's batches (mean size, share of the run it was busy,
texts per second of encoding), what ``GET /metrics`` showed of the queue while the load ran (sampled
every 0.5 s), whether every 200 carries the vectors of a direct ``align.to_source([text])`` per text in
this process (to 1e-5; a batch's composition changes the last bits), and whether the server's own
counters equal what the clients saw (no admitted request lost). Timings are wall-clock on this machine,
shared with other jobs; nothing here is asserted in tests (``tests/test_serving_overload.py`` asserts
the counts and the vectors).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
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
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("LANGALIGN_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MODEL = "ko->en:align"
CONCURRENCY = 64
WARMUP_S = 2.0  # requests sent in a run's first seconds (64 connections opening at once) are not timed
RUNS = (("no bound", 1024, "none"), ("bound 16, Retry-After", 16, "retry-after"),
        ("bound 8, Retry-After", 8, "retry-after"), ("bound 8, at once", 8, "at once"))


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(xs), q)) if xs else None


def _metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """``GET /metrics`` as ``(sample name, labels) -> value`` (the exposition is one sample per line)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not m:
            raise ValueError(f"unexpected /metrics line: {line[:200]}")
        labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def _start_server(aligner: Path, bound: int, log: Path, work: Path,
                  env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import httpx

    cmd = [sys.executable, "-m", "langalign.cli", "serve", "--aligner", f"align={aligner}", "--target-langs", "ko",
           "--port", "0", "--max-in-flight", str(bound), "--no-access-log", "--log-level", "warning"]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=work)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 300:
        text = log.read_text()
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {text[-2000:]}")
        m = re.search(r"serving on (http://\S+)", text)
        if m:
            try:
                if httpx.get(m.group(1) + "/health", timeout=5).status_code == 200:
                    return proc, m.group(1)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not become ready in 300 s")


def _stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def body(texts: list[str]) -> dict[str, Any]:
    # base64, as the openai client asks by default: cheaper to write and read than 512 JSON floats
    return {"model": MODEL, "input": texts, "encoding_format": "base64"}


def request_texts(k: int, texts: list[str], per_request: int) -> list[int]:
    """The query indices of request ``k``: ``per_request`` consecutive sentences (wrapping around)."""
    return [(k * per_request + j) % len(texts) for j in range(per_request)]


async def _load(url: str, texts: list[str], seconds: float, max_requests: int, on_429: str,
                per_request: int) -> dict[str, Any]:
    import httpx

    sent = 0
    steady_from = time.monotonic() + WARMUP_S
    stop_at = time.monotonic() + seconds
    rows: list[dict[str, Any]] = []
    queue: list[tuple[float, float, float]] = []  # (in flight, queued texts, scrape ms) while the load runs
    limits = httpx.Limits(max_connections=CONCURRENCY + 1, max_keepalive_connections=CONCURRENCY + 1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < stop_at and sent < max_requests:
                k = request_texts(sent, texts, per_request)
                sent += 1
                steady = time.monotonic() >= steady_from
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/embeddings", json=body([texts[i] for i in k]))
                except httpx.HTTPError as e:
                    rows.append({"k": k, "status": type(e).__name__, "seconds": time.perf_counter() - t0,
                                 "steady": steady})
                    continue
                row = {"k": k, "status": r.status_code, "seconds": time.perf_counter() - t0, "steady": steady}
                if r.status_code == 200:
                    row["vectors"] = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4")
                                               for d in r.json()["data"]])
                elif r.status_code == 429:
                    row["retry_after"] = int(r.headers["retry-after"])
                rows.append(row)
                if r.status_code == 429 and on_429 == "retry-after":
                    await asyncio.sleep(min(row["retry_after"], max(0.0, stop_at - time.monotonic())))

        async def sampler() -> None:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                r = await client.get("/metrics")
                ms = 1000 * (time.perf_counter() - t0)
                m = _metrics(r.text)
                queue.append((m[("langalign_in_flight_requests", frozenset())],
                               m[("langalign_queued_texts", frozenset())], ms))
                await asyncio.sleep(0.5)

        t0 = time.perf_counter()
        await asyncio.gather(sampler(), *(worker() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - t0
        final = _metrics((await client.get("/metrics")).text)
    return {"rows": rows, "queue": queue, "seconds": wall, "metrics": final}


def _round(url: str, on_429: str, args: argparse.Namespace, texts: list[str], direct: np.ndarray) -> dict[str, Any]:
    """One run against a configuration's server: the load, and what the server counted of it."""
    import httpx

    load_avg = os.getloadavg()[0]
    for t in texts[:10]:  # warm-up, not measured (and not counted below: subtracted from the metrics)
        httpx.post(url + "/v1/embeddings", json=body([t]), timeout=60).raise_for_status()
    before = _metrics(httpx.get(url + "/metrics", timeout=30).text)
    res = asyncio.run(_load(url, texts, args.seconds, args.max_requests, on_429, args.texts_per_request))
    m = res["metrics"]

    def count(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return m.get(key, 0.0) - before.get(key, 0.0)

    rows = res["rows"]
    for r in rows:
        if r["status"] == 200:
            r["diff"] = float(np.abs(r.pop("vectors") - direct[r["k"]]).max())
    ok, refused = sum(r["status"] == 200 for r in rows), sum(r["status"] == 429 for r in rows)
    server = {"200": count("langalign_requests_total", route="/v1/embeddings", model=MODEL, status="200"),
              "429": sum(count("langalign_requests_total", route="/v1/embeddings", model=mod, status="429")
                         for mod in ("", MODEL)),
              "rejected": {r: count("langalign_rejected_total", reason=r)
                           for r in ("in_flight", "queued_texts", "queued_chars")},
              "deadline_exceeded": count("langalign_deadline_exceeded_total"),
              "client_disconnects": count("langalign_client_disconnects_total")}
    enc = {"encoder": "use-multilingual"}
    return {"load_average_at_start": round(load_avg, 1), "seconds": round(res["seconds"], 1), "rows": rows,
            "queue": res["queue"], "server_counts": server,
            "server_counts_equal_client_counts": server["200"] == ok and server["429"] == refused
            == sum(server["rejected"].values()),
            "batches": count("langalign_batch_size_texts_count", **enc),
            # the server's own clock for its 200s (arrival to last byte; no client or connection queueing)
            "server_ok_count": count("langalign_request_duration_seconds_count", route="/v1/embeddings", model=MODEL),
            "server_ok_seconds": count("langalign_request_duration_seconds_sum", route="/v1/embeddings", model=MODEL),
            "batch_texts": count("langalign_batch_size_texts_sum", **enc),
            "encoder_seconds": count("langalign_batch_duration_seconds_sum", **enc)}


def _p50s(rounds: list[dict[str, Any]]) -> list[float | None]:
    """Each round's client p50 (ms) of the admitted requests sent after the warm-up."""
    return [1000 * float(np.percentile(x, 50)) if x else None for x in
            ([r["seconds"] for r in rd["rows"] if r["status"] == 200 and r["steady"]] for rd in rounds)]


def _summary(name: str, bound: int, on_429: str, rounds: list[dict[str, Any]],
             baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """A configuration over its rounds: counts summed; latency per round (the machine's load changes between
    rounds far more than between the configurations of one round) and pooled; ``baseline``: the no-bound
    configuration's rounds, for same-round ratios."""
    rows = [r for rd in rounds for r in rd["rows"]]
    queue = [q for rd in rounds for q in rd["queue"]]
    seconds = sum(rd["seconds"] for rd in rounds)
    codes = Counter(str(r["status"]) for r in rows)
    ok = [r for r in rows if r["status"] == 200]
    lat_ok = [r["seconds"] for r in ok if r["steady"]]
    lat_429 = [r["seconds"] for r in rows if r["status"] == 429 and r["steady"]]
    diffs = np.asarray([r["diff"] for r in ok])
    batches = sum(rd["batches"] for rd in rounds)
    in_flight = [q[0] for q in queue]
    out = {
        "run": name, "max_in_flight": bound, "on_429": on_429, "rounds": len(rounds),
        "load_average_at_start": [rd["load_average_at_start"] for rd in rounds],
        "seconds": round(seconds, 1), "sent": len(rows), "codes": dict(codes),
        "ok_per_s_per_round": [sum(r["status"] == 200 for r in rd["rows"]) / rd["seconds"] for rd in rounds],
        "codes_per_round": [dict(Counter(str(r["status"]) for r in rd["rows"])) for rd in rounds],
        "ok_per_s": len(ok) / seconds,
        "ok_latency_ms": {"p50": 1000 * np.percentile(lat_ok, 50), "p99": 1000 * np.percentile(lat_ok, 99),
                          "max": 1000 * max(lat_ok)} if lat_ok else None,
        "ok_p50_ms_per_round": _p50s(rounds),
        "ok_p99_ms_per_round": [1000 * float(np.percentile(x, 99)) if x else None for x in
                                ([r["seconds"] for r in rd["rows"] if r["status"] == 200 and r["steady"]]
                                 for rd in rounds)],
        "server_ok_mean_ms_per_round": [1000 * rd["server_ok_seconds"] / rd["server_ok_count"]
                                        if rd["server_ok_count"] else None for rd in rounds],
        "ok_p50_vs_no_bound_same_round": [a / b if a and b else None
                                          for a, b in zip(_p50s(rounds), _p50s(baseline), strict=True)],
        "server_ok_mean_ms": 1000 * sum(rd["server_ok_seconds"] for rd in rounds)
        / max(1.0, sum(rd["server_ok_count"] for rd in rounds)),
        "429_latency_ms_p50": 1000 * np.percentile(lat_429, 50) if lat_429 else None,
        "retry_after_s": dict(sorted(Counter(r["retry_after"] for r in rows if "retry_after" in r).items())),
        "ok_equal_to_direct_within_1e-5": int((diffs <= 1e-5).sum()), "ok_bit_identical_to_direct":
            int((diffs == 0).sum()), "max_abs_diff": float(diffs.max()) if len(diffs) else None,
        "server_counts": [rd["server_counts"] for rd in rounds],
        "server_counts_equal_client_counts": all(rd["server_counts_equal_client_counts"] for rd in rounds),
        "mean_batch_texts": sum(rd["batch_texts"] for rd in rounds) / batches if batches else None,
        # how busy the encoder was, and how fast while busy: where the time went
        "encoder_busy_fraction": sum(rd["encoder_seconds"] for rd in rounds) / seconds,
        "encoder_texts_per_busy_s": sum(rd["batch_texts"] for rd in rounds)
        / max(1e-9, sum(rd["encoder_seconds"] for rd in rounds)),
        "metrics_samples": len(queue),
        "in_flight_seen": {"max": max(in_flight, default=None),
                           "mean": float(np.mean(in_flight)) if in_flight else None},
        "queued_texts_seen_max": max((q[1] for q in queue), default=None),
        "metrics_scrape_ms_p50": _pct([q[2] for q in queue], 50),
    }
    _say(f"{name}: {dict(codes)} in {out['seconds']} s; 200s p50 {_fmt(out, 'p50')} ms, p99 {_fmt(out, 'p99')} ms; "
         f"in flight seen max {out['in_flight_seen']['max']}; 200s equal to direct "
         f"{out['ok_equal_to_direct_within_1e-5']}/{len(ok)}; server counts = client counts: "
         f"{out['server_counts_equal_client_counts']}")
    return out


def _fmt(run: dict[str, Any], q: str) -> str:
    lat = run.get("ok_latency_ms")
    return f"{lat[q]:.0f}" if lat and lat.get(q) is not None else "-"


def _median(xs: list[float | None]) -> float | None:
    got = [x for x in xs if x is not None]
    return float(np.median(got)) if got else None


def _ms(xs: list[float | None], spread: bool = True) -> str | None:
    """Median over rounds, with the range when ``spread``."""
    got = [x for x in xs if x is not None]
    if not got:
        return None
    mid = f"{np.median(got):,.0f}"
    return f"{mid} ({min(got):,.0f}-{max(got):,.0f})" if spread and len(got) > 1 else mid


def table(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per configuration, with the column names the docs show; latencies are medians over the
    rounds (each round's configurations ran one after the other, under about the same machine load)."""
    rows = []
    for r in runs:
        ok = r["codes"].get("200", 0)
        ratio = _median(r["ok_p50_vs_no_bound_same_round"])
        rows.append({
            "run": r["run"], "requests sent": r["sent"], "200": ok, "429": r["codes"].get("429", 0),
            "other": r["sent"] - ok - r["codes"].get("429", 0),
            "200s per s": round(_median(r["ok_per_s_per_round"]) or 0.0, 1),
            "p50 ms (range over rounds)": _ms(r["ok_p50_ms_per_round"]),
            "p99 ms": _ms(r["ok_p99_ms_per_round"], spread=False),
            "server mean ms": _ms(r["server_ok_mean_ms_per_round"], spread=False),
            "p50 / no bound's, same round": f"{ratio:.2f}" if ratio is not None else None,
            "mean batch (texts)": round(r["mean_batch_texts"], 1) if r["mean_batch_texts"] else None,
            "encoder busy": f"{100 * r['encoder_busy_fraction']:.0f}%",
            "texts per encoder-second": round(r["encoder_texts_per_busy_s"]),
            "in flight (max)": int(r["in_flight_seen"]["max"]) if r["in_flight_seen"]["max"] is not None else None,
            "queued texts (max)": int(r["queued_texts_seen_max"]) if r["queued_texts_seen_max"] is not None
            else None,
            "200s equal to direct": f"{r['ok_equal_to_direct_within_1e-5']}/{ok}",
            "server counts = client counts": "yes" if r["server_counts_equal_client_counts"] else "NO",
        })
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Overload benchmark", "", f"Run {res['created']} with `{res['command']}` ({res['seconds']:.0f} s; "
             f"{res['machine']}).", "", res["setup"]["description"], ""]
    rows = res["table"]
    cols = list(rows[0])
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r[c] is None else f"{r[c]:,}" if isinstance(r[c], int) else str(r[c])
                                for c in cols) + " |" for r in rows]
    lines += ["", "Per configuration: Retry-After values given (seconds: count), median latency of a 429, the largest "
              "difference of a 200's vector to the direct call, `/metrics` scrape time while loaded.",
              "", "| run | Retry-After | 429 p50 ms | max abs diff | bit-identical 200s | /metrics p50 ms |",
              "|---|---|---|---|---|---|"]
    for r in res["runs"]:
        ra = ", ".join(f"{k} s: {v}" for k, v in r["retry_after_s"].items()) or "-"
        p429 = f"{r['429_latency_ms_p50']:.0f}" if r["429_latency_ms_p50"] is not None else "-"
        md = f"{r['max_abs_diff']:.1e}" if r["max_abs_diff"] is not None else "-"
        sc = f"{r['metrics_scrape_ms_p50']:.0f}" if r["metrics_scrape_ms_p50"] is not None else "-"
        lines.append(f"| {r['run']} | {ra} | {p429} | {md} | {r['ok_bit_identical_to_direct']} | {sc} |")
    lines += ["", "Per round (the configurations of a round ran one after the other): 200s per second, client p50 ms "
              "of the 200s, the server's mean ms, the load average when the run started.", "",
              "| round | " + " | ".join(r["run"] for r in res["runs"]) + " |", "|---|" + "---|" * len(res["runs"])]
    for k in range(res["runs"][0]["rounds"]):
        cells = []
        for r in res["runs"]:
            p50, mean = r["ok_p50_ms_per_round"][k], r["server_ok_mean_ms_per_round"][k]
            cells.append(f"{r['ok_per_s_per_round'][k]:.1f}/s, {p50:,.0f} / {mean:,.0f} ms, load "
                         f"{r['load_average_at_start'][k]}" if p50 is not None and mean is not None else "-")
        lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--quick", action="store_true", help="two rounds of 6 s runs")
    ap.add_argument("--seconds", type=float, default=None, help="load time per run (default 10; quick 6)")
    ap.add_argument("--max-requests", type=int, default=20000, help="requests sent per run at most")
    ap.add_argument("--texts-per-request", type=int, default=8,
                    help="sentences per request (default 8: the encoder, not HTTP, is the bottleneck)")
    ap.add_argument("--rounds", type=int, default=None, help="runs of each configuration, taking turns (default 6; "
                    "quick 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.seconds = args.seconds or (6.0 if args.quick else 10.0)
    args.rounds = args.rounds or (2 if args.quick else 6)
    from langalign import LangAlign, load_encoder
    from langalign.data import load_tatoeba

    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/overload.py {' '.join(sys.argv[1:])}".strip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
                   f"load average {os.getloadavg()[0]:.1f} at start",
    }
    work = Path(tempfile.mkdtemp(prefix="langalign-overload-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        tatoeba = load_tatoeba("ko")
        english, korean = list(tatoeba.source), list(tatoeba.target)
        _say("fitting the aligner on 500 Tatoeba pairs (use-multilingual on both sides)")
        use = load_encoder("use-multilingual")
        align = LangAlign(use, use, seed=args.seed).fit(english[:500], korean[:500], show_progress=False)
        align.save(work / "align")
        queries = korean[500:]
        _say(f"direct vectors of the {len(queries)} queries, one to_source([text]) call each")
        direct = np.stack([align.to_source([t])[0] for t in queries]).astype(np.float32)
        res["setup"] = {
            "model": MODEL, "queries": len(queries), "concurrency": CONCURRENCY, "seconds_per_run": args.seconds,
            "max_requests_per_run": args.max_requests,
            "description": f"`langalign serve --aligner align=DIR --max-in-flight N` in its own process; model "
                           f"`{MODEL}` (use-multilingual, then a linear Rev-LangAlign map fitted on 500 Tatoeba "
                           f"pairs); {CONCURRENCY} clients send {args.texts_per_request} of {len(queries)} Korean "
                           f"Tatoeba sentences per request (`encoding_format` base64, as the openai client sends), "
                           f"back to back, for {args.seconds:g} s per run (at most {args.max_requests:,} "
                           "requests). Latency is the client's, of the admitted (200) requests sent after a run's "
                           f"first {WARMUP_S:g} s (p50, p99), and the server's own mean (`/metrics` request_duration "
                           "sum over count: arrival to last byte); 'in flight seen' is the largest "
                           "`langalign_in_flight_requests` of `/metrics` scraped every 0.5 s during the load; '200s "
                           "equal to direct': requests whose every vector is within 1e-5 of `align.to_source([text])` "
                           "in the bench process; 'server counts = client counts': the server's `/metrics` request "
                           "and 429 counts equal the answers the clients received.",
        }
        # one server per configuration, all started first; the configurations then take turns, round after
        # round, so the shared machine's changing load falls on all of them
        servers: dict[str, tuple[subprocess.Popen, str]] = {}
        done: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in RUNS}
        try:
            for i, (name, bound, _) in enumerate(RUNS):
                _say(f"starting the server for {name}")
                servers[name] = _start_server(work / "align", bound, work / f"serve-{i}.log", work, env)
            for k in range(args.rounds):
                for name, _, on_429 in RUNS:
                    _say(f"round {k + 1}/{args.rounds}: {name}")
                    done[name].append(_round(servers[name][1], on_429, args, queries, direct))
        finally:
            res["server_exit_codes"] = {name: _stop_server(proc) for name, (proc, _) in servers.items()}
        base = done[RUNS[0][0]]
        res["runs"] = [_summary(name, bound, on_429, done[name], base) for name, bound, on_429 in RUNS]
        res["table"] = table(res["runs"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["seconds"] = time.perf_counter() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overload.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "overload.md").write_text(markdown(res), encoding="utf-8")
    _say(f"wrote {args.out / 'overload.md'} and overload.json in {res['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
