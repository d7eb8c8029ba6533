"""Issue 25 items 3-4: the service under a load it cannot keep up with.

64 concurrent clients against a server admitting 4 requests at a time (127.0.0.1, a free port,
bounded in requests and in time). What is asserted is what the bound promises, never a time:
every request gets 200 or 429 with Retry-After, every 200 carries the right vectors, every
admitted request is answered (none lost, none encoded twice, none refused and encoded anyway),
no encoder call ever holds more requests than the bound, and ``/metrics`` counts exactly what the
clients saw. Latency with and without the bound is measured in ``bench/overload.py``.
"""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
prom_parser = pytest.importorskip("prometheus_client.parser")

from _scale_helpers import text_vectors  # noqa: E402
from _serving_helpers import PacedEncoder, ThreadServer  # noqa: E402

from langalign.encoders import PROBE_SENTENCES  # noqa: E402
from langalign.serving import BatchSettings, Limits, ServeConfig  # noqa: E402

CONCURRENCY = 64


async def _load(url: str, model: str, texts: list[str], concurrency: int, pause_after_429: float) -> list[dict]:
    """Each of ``concurrency`` clients sends the next text until all are sent; a refused client pauses briefly
    (honouring Retry-After would make the test seconds longer without testing more)."""
    todo = iter(enumerate(texts))
    out: list[dict] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def worker() -> None:
            for i, text in todo:
                try:
                    r = await client.post("/v1/embeddings", json={"model": model, "input": [text]})
                except httpx.HTTPError as e:  # counted, and fails the test below
                    out.append({"i": i, "status": type(e).__name__})
                    continue
                row: dict[str, Any] = {"i": i, "status": r.status_code, "retry_after": r.headers.get("retry-after")}
                if r.status_code == 200:
                    row["vector"] = np.array(r.json()["data"][0]["embedding"], np.float32)
                else:
                    row["code"] = r.json()["error"]["code"]
                out.append(row)
                if r.status_code == 429:
                    await asyncio.sleep(pause_after_429)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 600)  # stops by itself
    return out


def run_load(url: str, model: str, texts: list[str], concurrency: int = CONCURRENCY,
             pause_after_429: float = 0.02) -> list[dict]:
    return asyncio.run(_load(url, model, texts, concurrency, pause_after_429))


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in prom_parser.text_string_to_metric_families(text) for s in fam.samples}


def check_outcomes(outcomes: list[dict], texts: list[str]) -> tuple[list[dict], list[dict]]:
    """Every request answered 200 or 429 (+ Retry-After in 1..60), exactly once; returns (200s, 429s)."""
    assert sorted(o["i"] for o in outcomes) == list(range(len(texts)))
    assert {o["status"] for o in outcomes} <= {200, 429}, Counter(o["status"] for o in outcomes)
    ok = [o for o in outcomes if o["status"] == 200]
    refused = [o for o in outcomes if o["status"] == 429]
    assert ok and refused, (len(ok), len(refused))  # the bound was met, and work still got through
    for o in refused:
        assert 1 <= int(o["retry_after"]) <= 60 and o["code"] in ("in_flight", "queued_texts", "queued_chars")
    return ok, refused


def check_metrics(url: str, model: str, ok: list[dict], refused: list[dict]) -> None:
    """The server's own counts equal what the clients saw, and its queue is empty again."""
    m = scrape(url)
    requests = {dict(k)["status"]: v for (n, k), v in m.items()
                if n == "langalign_requests_total" and dict(k)["route"] == "/v1/embeddings"}
    assert requests == {"200": len(ok), "429": len(refused)}
    rejected = sum(v for (n, _), v in m.items() if n == "langalign_rejected_total")
    assert rejected == len(refused)
    lat = frozenset({"route": "/v1/embeddings", "model": model}.items())
    assert m[("langalign_request_duration_seconds_count", lat)] == len(ok)
    for gauge in ("langalign_in_flight_requests", "langalign_queued_texts", "langalign_queued_chars"):
        assert m[(gauge, frozenset())] == 0, gauge


def test_at_concurrency_64_a_small_in_flight_bound_answers_429_and_loses_no_admitted_request():
    enc = PacedEncoder()
    bound = 4
    cfg = ServeConfig(port=0, encoders=[enc], limits=Limits(max_in_flight=bound),
                      batch=BatchSettings(max_texts=64, max_wait_ms=5))
    s = ThreadServer(cfg).start()
    try:
        enc.per_call, enc.per_text = 0.02, 0.002  # an encoder far slower than 64 clients
        texts = [f"load {i}" for i in range(512)]
        ok, refused = check_outcomes(run_load(s.url, "paced", texts), texts)
        # every 200 carries its own text's vector
        got = np.stack([o["vector"] for o in ok])
        np.testing.assert_array_equal(got, text_vectors([texts[o["i"]] for o in ok], 8))
        # admitted = encoded = answered: each 200's text encoded exactly once, no refused text encoded at all
        calls = [c for c in enc.calls if c != list(PROBE_SENTENCES)]
        encoded = Counter(t for c in calls for t in c)
        assert encoded == Counter(texts[o["i"]] for o in ok)
        # the queue is bounded: an encoder call never holds more requests than may be in flight
        assert max(len(c) for c in calls) <= bound
        check_metrics(s.url, "paced", ok, refused)
    finally:
        s.stop()


@pytest.mark.integration
def test_the_real_encoder_under_overload_answers_every_admitted_request_with_its_vectors():
    """The same with the bundled multilingual encoder on Korean Tatoeba sentences: each 200 equals a direct
    ``encode([text])`` up to float rounding (a batch's composition changes the last bits: measured 2e-7)."""
    from langalign import load_encoder
    from langalign.data import load_tatoeba

    enc = load_encoder("use-multilingual")
    cfg = ServeConfig(port=0, encoders=[enc], limits=Limits(max_in_flight=8))
    s = ThreadServer(cfg).start()
    try:
        texts = [f"{t} ({i})" for i, t in enumerate(load_tatoeba("ko").target[:256])]  # distinct texts
        ok, refused = check_outcomes(run_load(s.url, "use-multilingual", texts, pause_after_429=0.05), texts)
        got = np.stack([o["vector"] for o in ok])
        direct = np.stack([enc.encode([texts[o["i"]]], show_progress=False)[0] for o in ok])
        np.testing.assert_allclose(got, direct, rtol=0, atol=1e-5)
        check_metrics(s.url, "use-multilingual", ok, refused)
    finally:
        s.stop()
