"""Issue 25 item 3: ``GET /metrics`` in Prometheus' text format, with exact counts.

Real uvicorn servers on 127.0.0.1 free ports. The exposition is read with ``prometheus_client``'s own
parser (an independent check of the format), and every count is compared with the requests the test
made: nothing sampled, nothing approximate. No wall-clock time is asserted.
"""
from __future__ import annotations

import threading

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
from langalign.serving.admission import Histogram  # noqa: E402
from langalign.serving.config import DataError  # noqa: E402
from langalign.serving.metrics import CONTENT_TYPE, _Writer  # noqa: E402

KEY = "k" * 24
AUTH = {"Authorization": f"Bearer {KEY}"}


def serve(*encoders: PacedEncoder, key: str | None = KEY, metrics: str = "auth", **limits) -> ThreadServer:
    batch = BatchSettings(max_texts=limits.pop("batch_texts", 4), max_wait_ms=0)
    cfg = ServeConfig(port=0, encoders=list(encoders), limits=Limits(**limits), batch=batch, metrics=metrics)
    cfg.api_key = key
    return ThreadServer(cfg).start()


def embed(url: str, model: str, texts: object, headers: dict | None = None, timeout: float = 120) -> httpx.Response:
    return httpx.post(url + "/v1/embeddings", json={"model": model, "input": texts},
                      headers=AUTH if headers is None else headers, timeout=timeout)


def scrape(url: str, headers: dict | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``GET /metrics``: ``(sample name, labels) -> value``."""
    r = httpx.get(url + "/metrics", headers=AUTH if headers is None else headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in prom_parser.text_string_to_metric_families(r.text) for s in fam.samples}


def series(samples: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def labels(**kw: str) -> frozenset:
    return frozenset(kw.items())


def wait_for(cond, what: str, limit: float = 60.0) -> None:
    import time

    end = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.02)


# ---------------------------------------------------------------- exact counts after known requests

def test_metrics_count_exactly_the_requests_made_including_429s():
    paced, other = PacedEncoder("paced"), PacedEncoder("other")
    s = serve(paced, other, max_in_flight=2, max_queued_texts=6)
    try:
        # answered at once: 3 + 2 embeddings, and one of each error a client can make
        for i in range(3):
            assert embed(s.url, "paced", [f"quick {i}"]).status_code == 200
        for i in range(2):
            assert embed(s.url, "other", [f"other {i}", f"other {i}b"]).status_code == 200
        assert embed(s.url, "nope", ["x"]).status_code == 404                 # unknown model: no model label
        assert embed(s.url, "paced", []).status_code == 400                   # the model is known, the input not
        assert embed(s.url, "paced", ["x"], headers={}).status_code == 401    # no key
        assert embed(s.url, "paced", ["x"], headers={**AUTH, "Host": "evil.example"}).status_code == 400
        assert httpx.get(s.url + "/v1/models", headers=AUTH).status_code == 200
        assert httpx.get(s.url + "/v1/models/paced", headers=AUTH).status_code == 200
        assert httpx.get(s.url + "/health").status_code == 200
        assert httpx.get(s.url + "/no/such/route", headers=AUTH).status_code == 404

        # two 429s: queued texts, then requests in flight
        paced.per_call = 0.4
        held: dict[str, httpx.Response] = {}
        five = [f"held a{i}" for i in range(5)]
        a = threading.Thread(target=lambda: held.setdefault("a", embed(s.url, "paced", five)))
        a.start()
        wait_for(lambda: s.stats.queued_texts == 5, "the 5-text request admitted")
        refused = embed(s.url, "paced", ["too", "many"])                      # 5 + 2 > 6 queued texts
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "queued_texts"
        c = threading.Thread(target=lambda: held.setdefault("c", embed(s.url, "paced", ["held c"])))
        c.start()
        wait_for(lambda: s.stats.in_flight == 2, "two requests in flight")
        busy = embed(s.url, "paced", ["third"])                               # refused before its body is read
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "in_flight"
        assert int(busy.headers["retry-after"]) >= 1
        a.join(60)
        c.join(60)
        assert held["a"].status_code == 200 and held["c"].status_code == 200

        m = scrape(s.url)
        E, P, O, M = "/v1/embeddings", "paced", "other", "/v1/models"
        expected = {labels(route=E, model=P, status="200"): 5,   # 3 quick, held a, held c
                    labels(route=E, model=O, status="200"): 2,
                    labels(route=E, model="", status="404"): 1,
                    labels(route=E, model=P, status="400"): 1,
                    labels(route=E, model="", status="401"): 1,
                    labels(route=E, model="", status="400"): 1,  # Host refused before anything else
                    labels(route=E, model=P, status="429"): 1,   # queued_texts: the model was read
                    labels(route=E, model="", status="429"): 1,  # in_flight: refused before the body
                    labels(route=M, model="", status="200"): 1,
                    labels(route="/v1/models/{id}", model="", status="200"): 1,
                    labels(route="/health", model="", status="200"): 1,
                    labels(route="other", model="", status="404"): 1}
        assert series(m, "langalign_requests_total") == expected  # the scrape itself is counted after it
        assert series(m, "langalign_rejected_total") == {labels(reason="in_flight"): 1,
                                                         labels(reason="queued_texts"): 1,
                                                         labels(reason="queued_chars"): 0}
        # latency: one observation per 2xx answer, in cumulative buckets ending at +Inf
        for (route, model), n in (((E, P), 5), ((E, O), 2), ((M, ""), 1), (("/health", ""), 1)):
            lab = labels(route=route, model=model)
            assert m[("langalign_request_duration_seconds_count", lab)] == n
            buckets = sorted(((float(dict(k)["le"]), v) for k, v in
                              series(m, "langalign_request_duration_seconds_bucket").items()
                              if k - {("le", dict(k)["le"])} == lab))
            counts = [v for _, v in buckets]
            assert buckets[-1] == (float("inf"), n) and counts == sorted(counts)
        assert not any(dict(k)["route"] == E and dict(k)["model"] == "" for k in
                       series(m, "langalign_request_duration_seconds_count"))  # errors are not timed

        # batches: the histograms agree with what each encoder was asked to encode (probe sentences aside)
        for enc, texts in ((paced, 3 + 5 + 1), (other, 4)):
            calls = [c for c in enc.calls if c != list(PROBE_SENTENCES)]
            lab = labels(encoder=enc.name)
            assert m[("langalign_batch_size_texts_count", lab)] == len(calls)
            assert m[("langalign_batch_size_texts_sum", lab)] == texts == sum(len(c) for c in calls)
            assert m[("langalign_batch_duration_seconds_count", lab)] == len(calls)
            assert m[("langalign_encoded_chars_total", lab)] == sum(len(t) for c in calls for t in c)
            assert max(len(c) for c in calls) <= 4  # batch.max_texts
        # queue depth is back to zero, limits as configured, the models with their fingerprints
        assert m[("langalign_in_flight_requests", frozenset())] == 0
        assert m[("langalign_queued_texts", frozenset())] == 0 and m[("langalign_queued_chars", frozenset())] == 0
        assert m[("langalign_limit", labels(limit="max_in_flight"))] == 2
        assert m[("langalign_limit", labels(limit="max_queued_texts"))] == 6
        assert series(m, "langalign_model_info") == {labels(model=e.name, kind="encoder", encoder=e.name,
                                                            fingerprint=e.fingerprint()): 1 for e in (paced, other)}
        assert m[("langalign_loaded_artefacts", labels(kind="encoder"))] == 2
        assert m[("langalign_ready", frozenset())] == 1
        assert m[("langalign_deadline_exceeded_total", frozenset())] == 0

        # the scrape is counted once it is answered, like every request; one without the key is refused
        assert httpx.get(s.url + "/metrics").status_code == 401
        again = series(scrape(s.url), "langalign_requests_total")
        assert again[labels(route="/metrics", model="", status="200")] == 1
        assert again[labels(route="/metrics", model="", status="401")] == 1
        assert {k: v for k, v in again.items() if dict(k)["route"] != "/metrics"} == expected
    finally:
        s.stop()


def test_deadlines_and_disconnects_are_counted():
    enc = PacedEncoder()
    s = serve(enc, key=None, request_timeout_s=0.6, batch_texts=2)
    try:
        enc.per_call = 0.4
        r = embed(s.url, "paced", [f"doomed {i}" for i in range(20)])  # 10 batches of 0.4 s; the deadline is 0.6 s
        assert r.status_code == 503 and r.json()["error"]["code"] == "deadline_exceeded"
        wait_for(lambda: s.stats.in_flight == 0, "the request settled")
        m = scrape(s.url, headers={})  # no key configured: /metrics needs none
        assert m[("langalign_deadline_exceeded_total", frozenset())] == 1
        assert m[("langalign_client_disconnects_total", frozenset())] == 0
        assert series(m, "langalign_requests_total") == {labels(route="/v1/embeddings", model="paced", status="503"): 1}
        assert series(m, "langalign_request_duration_seconds_count") == {}  # errors are not timed
    finally:
        s.stop()
    enc = PacedEncoder()
    s = serve(enc, key=None, batch_texts=2)
    try:
        enc.per_call = 0.3
        with pytest.raises(httpx.ReadTimeout):
            embed(s.url, "paced", [f"abandoned {i}" for i in range(40)], timeout=0.8)  # the client hangs up
        wait_for(lambda: s.stats.client_gone == 1 and s.stats.in_flight == 0, "the service noticed the client left")
        m = scrape(s.url, headers={})
        assert m[("langalign_client_disconnects_total", frozenset())] == 1
        assert m[("langalign_deadline_exceeded_total", frozenset())] == 0
        # 499 (nginx's "client closed request"): the answer nobody read
        assert series(m, "langalign_requests_total") == {labels(route="/v1/embeddings", model="paced", status="499"): 1}
    finally:
        s.stop()


# ---------------------------------------------------------------- who may read /metrics

@pytest.mark.parametrize("mode,key,no_key,with_key", [
    ("auth", KEY, 401, 200), ("auth", None, 200, 200), ("open", KEY, 200, 200), ("off", KEY, 404, 404)])
def test_metrics_access_follows_the_config(mode, key, no_key, with_key):
    s = serve(PacedEncoder(), key=key, metrics=mode)
    try:
        assert httpx.get(s.url + "/metrics", timeout=30).status_code == no_key
        assert httpx.get(s.url + "/metrics", headers=AUTH, timeout=30).status_code == with_key
        # the Host rule (DNS rebinding) holds whatever the key rule
        r = httpx.get(s.url + "/metrics", headers={**AUTH, "Host": "evil.example"}, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host"
    finally:
        s.stop()


def test_metrics_setting_is_checked():
    with pytest.raises(DataError, match="metrics must be one of"):
        ServeConfig(encoders=["minilm"], metrics="public").check()
    cfg = ServeConfig.from_dict({"encoders": ["minilm"], "metrics": "open"})
    assert cfg.metrics == "open"


def test_metrics_flag_reaches_the_config():
    from langalign.cli import build_parser
    from langalign.cli.serve_commands import _serve_config

    args = build_parser().parse_args(["serve", "--encoder", "minilm", "--metrics", "off"])
    assert _serve_config(args).metrics == "off"
    args = build_parser().parse_args(["serve", "--encoder", "minilm"])
    assert _serve_config(args).metrics == "auth"


# ---------------------------------------------------------------- the format

def test_exposition_escapes_label_values_and_keeps_histograms_cumulative():
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 7.0):  # a value on a bound belongs to that bucket (le: less or equal)
        h.observe(v)
    w = _Writer()
    odd = 'a "quoted" back\\slash\nnewline'
    w.family("x_seconds", "histogram", "help text")
    w.histogram("x_seconds", h, {"model": odd})
    w.family("y_total", "counter", "a counter")
    w.sample("y_total", 3, {"model": odd})
    (hist, counter) = prom_parser.text_string_to_metric_families(w.text())
    got = {(smp.name, smp.labels.get("le")): smp.value for smp in hist.samples}
    assert got == {("x_seconds_bucket", "1.0"): 2, ("x_seconds_bucket", "2.0"): 3, ("x_seconds_bucket", "+Inf"): 4,
                   ("x_seconds_sum", None): 10.0, ("x_seconds_count", None): 4}
    assert {smp.labels["model"] for smp in hist.samples} == {odd}
    assert counter.samples[0].labels["model"] == odd and counter.samples[0].value == 3


def test_metrics_answer_while_the_service_is_at_its_in_flight_bound():
    enc = PacedEncoder()
    s = serve(enc, key=None, max_in_flight=1)
    try:
        enc.per_call = 0.5
        t = threading.Thread(target=embed, args=(s.url, "paced", ["occupying the only slot"]))
        t.start()
        wait_for(lambda: s.stats.in_flight == 1, "the only slot taken")
        m = scrape(s.url, headers={})  # not refused: the scrape does not take a slot
        assert m[("langalign_in_flight_requests", frozenset())] == 1
        assert m[("langalign_queued_texts", frozenset())] == 1
        t.join(60)
        np.testing.assert_array_equal(  # and the held request was answered as usual
            np.array(embed(s.url, "paced", ["after"], headers={}).json()["data"][0]["embedding"], np.float32),
            text_vectors(["after"], 8)[0])
    finally:
        s.stop()
