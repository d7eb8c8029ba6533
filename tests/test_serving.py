"""`langalign serve` over real HTTP: a uvicorn server on a free 127.0.0.1 port, the OpenAI client, each
endpoint, bad inputs, a bounded load test, micro-batching, readiness; one real-model test via the CLI."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _scale_helpers import CountingEncoder, paired_encoder  # noqa: E402

from langalign import CrossLingualClassifier, LangAlign, encoders  # noqa: E402
from langalign.cli import main  # noqa: E402
from langalign.index import SearchIndex  # noqa: E402
from langalign.serving import AlignerSpec, Limits, Registry, ServeConfig, build_server  # noqa: E402
from langalign.serving.batcher import MicroBatcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = [f"sentence number {i}" for i in range(300)]
LABELS = ["even" if i % 2 == 0 else "odd" for i in range(300)]


class ThreadServer:
    """The real uvicorn server on a socket bound to 127.0.0.1:0, in a background thread."""

    def __init__(self, config: ServeConfig, registry: Registry | None = None):
        self.server, self.sock, self.registry = build_server(config, log_level="warning", access_log=False,
                                                             registry=registry)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, ready: bool = True) -> ThreadServer:
        self.thread.start()
        for _ in range(1200):  # bounded: 60 s at most, then fail with the server's state
            if self.server.started and (not ready or self.registry.state != "loading"):
                break
            time.sleep(0.05)
        assert self.server.started, "the server did not start"
        if ready:
            assert self.registry.state == "ready", self.registry.error
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("artefacts")
    x, y = CountingEncoder("toy", 16), paired_encoder("toy-y", 16)
    align = LangAlign(x, y, held_out=0).fit(TEXTS, TEXTS)
    align.save(d / "bridge")
    clf = CrossLingualClassifier(align, mode="reverse").fit(TEXTS, LABELS)
    clf.save(d / "clf")
    pairs = [(TEXTS[i], TEXTS[(i * 7) % 300]) for i in range(300)]
    nli = CrossLingualClassifier(align, mode="reverse").fit(pairs, ["same" if i == 0 else "diff" for i in range(300)])
    nli.save(d / "nli")
    idx = SearchIndex(x).build(TEXTS, ids=[f"doc-{i}" for i in range(300)])
    idx.save(d / "docs")
    return {"dir": d, "x": x, "y": y, "align": align, "clf": CrossLingualClassifier.load(d / "clf", x, y),
            "nli": CrossLingualClassifier.load(d / "nli", x, y), "index": SearchIndex.load(d / "docs", x)}


def _config(models, **kw) -> ServeConfig:
    d = models["dir"]
    base = dict(port=0, encoders=[models["x"], models["y"]], aligners={"br": AlignerSpec(d / "bridge")},
                classifiers={"topic": d / "clf", "nli": d / "nli"}, indexes={"docs": d / "docs"}, api_key=KEY,
                limits=Limits(max_items=64, max_chars=500, max_body_bytes=32_000))
    base.update(kw)
    return ServeConfig(**base)


@pytest.fixture(scope="module")
def svc(models):
    s = ThreadServer(_config(models)).start()
    yield s
    s.stop()


def post(svc, path, body=None, content=None, headers=AUTH):
    if content is not None:  # raw bytes: say they are JSON, as every client does
        headers = {"Content-Type": "application/json", **headers}
    return httpx.post(svc.url + path, json=body, content=content, headers=headers, timeout=30)


def vec(item) -> np.ndarray:
    e = item["embedding"]
    return np.frombuffer(base64.b64decode(e), dtype="<f4") if isinstance(e, str) else np.asarray(e, np.float32)


# ---------------------------------------------------------------- endpoints

def test_health_and_models(svc):
    r = httpx.get(svc.url + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = httpx.get(svc.url + "/v1/models", headers=AUTH)
    ids = {m["id"]: m for m in r.json()["data"]}
    assert {"toy", "toy-y", "br:to-source", "br:to-target", "ko->en:br", "ja->en:br", "zh->en:br", "en->ko:br",
            "topic", "nli", "docs"} <= set(ids)
    assert ids["ko->en:br"]["langalign"] == {**ids["ko->en:br"]["langalign"], "space": "toy", "reads": "toy-y"}
    assert httpx.get(svc.url + "/v1/models/ko->en:br", headers=AUTH).json()["id"] == "ko->en:br"


def test_openai_client_round_trip(svc, models):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=svc.url + "/v1", api_key=KEY, max_retries=0)
    texts = ["안녕하세요", "sentence number 3", "今日は"]
    out = client.embeddings.create(model="ko->en:br", input=texts)  # the client asks for base64
    got = np.array([d.embedding for d in out.data], dtype=np.float32)
    np.testing.assert_array_equal(got, models["align"].to_source(texts))
    assert [d.index for d in out.data] == [0, 1, 2] and out.model == "ko->en:br" and out.usage.total_tokens > 0
    flt = client.embeddings.create(model="toy", input="one text", encoding_format="float")
    np.testing.assert_array_equal(np.array(flt.data[0].embedding, np.float32), models["x"].encode(["one text"])[0])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=svc.url + "/v1", api_key="wrong-key-wrong-key", max_retries=0).embeddings.create(
            model="toy", input="x")


def test_embeddings_float_and_base64_agree(svc, models):
    texts = ["a", "b c", "sentence number 9"]
    a = post(svc, "/v1/embeddings", {"model": "en->ko:br", "input": texts}).json()
    b = post(svc, "/v1/embeddings", {"model": "en->ko:br", "input": texts, "encoding_format": "base64"}).json()
    want = models["align"].to_target(texts)
    for out in (a, b):
        np.testing.assert_array_equal(np.stack([vec(d) for d in out["data"]]), want)
    assert a["object"] == "list" and a["data"][0]["object"] == "embedding"


def test_classify_matches_in_process(svc, models):
    texts = ["sentence number 4", "sentence number 7", "다른 문장"]
    out = post(svc, "/v1/classify", {"model": "topic", "input": texts}).json()
    clf = models["clf"]
    assert [d["label"] for d in out["data"]] == list(clf.predict(texts))
    probs = np.array([[d["probabilities"][c] for c in ("even", "odd")] for d in out["data"]])
    np.testing.assert_allclose(probs, clf.predict_proba(texts), rtol=0, atol=1e-12)
    pairs = [["sentence number 1", "sentence number 7"], ["x", "y"]]
    out = post(svc, "/v1/classify", {"model": "nli", "input": pairs}).json()
    assert [d["label"] for d in out["data"]] == list(models["nli"].predict([tuple(p) for p in pairs]))


def test_search_matches_in_process(svc, models):
    idx, align = models["index"], models["align"]
    qs = ["sentence number 12", "sentence number 40"]
    out = post(svc, "/v1/search", {"index": "docs", "query": qs, "model": "ko->en:br", "top_k": 3}).json()
    want = idx.search(qs, 3, aligner=align)
    assert [[h["id"] for h in r["hits"]] for r in out["data"]] == [[h.id for h in row] for row in want]
    np.testing.assert_allclose([[h["score"] for h in r["hits"]] for r in out["data"]],
                               [[h.score for h in row] for row in want], rtol=0, atol=1e-6)
    # default model: the index's own encoder; CSLS with >= 10 queries in the call
    many = TEXTS[100:112]
    out = post(svc, "/v1/search", {"index": "docs", "query": many, "top_k": 2, "csls": True}).json()
    want = idx.search(many, 2, csls=True)
    assert [[h["id"] for h in r["hits"]] for r in out["data"]] == [[h.id for h in row] for row in want]


def test_search_from_another_space_is_refused(svc):
    r = post(svc, "/v1/search", {"index": "docs", "query": "q", "model": "toy-y"})
    assert r.status_code == 400 and "toy-y" in r.json()["error"]["message"]


BIG = json.dumps({"model": "toy", "input": ["x" * 400] * 100}).encode()
BAD = [
    ("empty list", "/v1/embeddings", {"model": "toy", "input": []}, None, AUTH, 400, "empty list"),
    ("number input", "/v1/embeddings", {"model": "toy", "input": 5}, None, AUTH, 400, "got a number"),
    ("object in list", "/v1/embeddings", {"model": "toy", "input": ["a", {"b": 1}]}, None, AUTH, 400,
     "input[1] is an object"),
    ("token ids", "/v1/embeddings", {"model": "toy", "input": [[1, 2, 3]]}, None, AUTH, 400, "token ids"),
    ("no input", "/v1/embeddings", {"model": "toy"}, None, AUTH, 400, "missing field 'input'"),
    ("model not a string", "/v1/embeddings", {"model": 3, "input": "x"}, None, AUTH, 400, "'model' must be"),
    ("unknown model", "/v1/embeddings", {"model": "gpt-4", "input": "x"}, None, AUTH, 404, "does not exist"),
    ("path as model", "/v1/embeddings", {"model": "/etc/passwd", "input": "x"}, None, AUTH, 404, "does not exist"),
    ("bad encoding", "/v1/embeddings", {"model": "toy", "input": "x", "encoding_format": "hex"}, None, AUTH, 400,
     "encoding_format"),
    ("wrong dimensions", "/v1/embeddings", {"model": "toy", "input": "x", "dimensions": 8}, None, AUTH, 400,
     "16-d"),
    ("too many items", "/v1/embeddings", {"model": "toy", "input": ["a"] * 65}, None, AUTH, 400, "limit is 64"),
    ("text too long", "/v1/embeddings", {"model": "toy", "input": ["a" * 501]}, None, AUTH, 400, "501 characters"),
    ("oversized body", "/v1/embeddings", None, BIG, AUTH, 413, "limit"),
    ("invalid utf-8", "/v1/embeddings", None, b'{"model": "toy", "input": "\xff\xfe"}', AUTH, 400, "UTF-8"),
    ("invalid json", "/v1/embeddings", None, b'{"model": "toy", "input": ', AUTH, 400, "not valid JSON"),
    ("empty body", "/v1/embeddings", None, b"", AUTH, 400, "empty"),
    ("array body", "/v1/embeddings", None, b"[1, 2]", AUTH, 400, "JSON object"),
    ("lone surrogate", "/v1/embeddings", None, b'{"model": "toy", "input": "a\\ud800"}', AUTH, 400, "surrogate"),
    ("deep nesting", "/v1/embeddings", None, b"[" * 10_000 + b"]" * 10_000, AUTH, 400, "nested"),
    ("missing API key", "/v1/embeddings", {"model": "toy", "input": "x"}, None, {}, 401, "missing API key"),
    ("wrong API key", "/v1/embeddings", {"model": "toy", "input": "x"}, None,
     {"Authorization": "Bearer " + KEY[:-1] + "X"}, 401, "invalid API key"),
    ("basic auth", "/v1/embeddings", {"model": "toy", "input": "x"}, None, {"Authorization": "Basic " + KEY}, 401,
     "invalid API key"),
    ("unknown classifier", "/v1/classify", {"model": "nope", "input": "x"}, None, AUTH, 404, "no classifier"),
    ("pairs expected", "/v1/classify", {"model": "nli", "input": ["just one text"]}, None, AUTH, 400, "pair"),
    ("unknown index", "/v1/search", {"index": "../docs", "query": "x"}, None, AUTH, 404, "no index"),
    ("top_k too big", "/v1/search", {"index": "docs", "query": "x", "top_k": 1000}, None, AUTH, 400, "top_k"),
    ("top_k not int", "/v1/search", {"index": "docs", "query": "x", "top_k": "5"}, None, AUTH, 400, "top_k"),
    ("csls with one query", "/v1/search", {"index": "docs", "query": "x", "csls": True}, None, AUTH, 400, "CSLS"),
    ("no such endpoint", "/v1/chat/completions", {"model": "toy"}, None, AUTH, 404, "no such endpoint"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_request_gets_a_4xx_naming_the_problem_and_the_service_stays_up(svc, models, case):
    _, path, body, content, headers, status, fragment = case
    r = post(svc, path, body, content, headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert fragment in err["message"] and err["type"]
    if status == 401:
        assert KEY not in r.text and r.headers.get("www-authenticate") == "Bearer"
    ok = post(svc, "/v1/embeddings", {"model": "toy", "input": "still here"})
    assert ok.status_code == 200
    np.testing.assert_array_equal(vec(ok.json()["data"][0]), models["x"].encode(["still here"])[0])


def test_wrong_method_is_405_json(svc):
    r = httpx.get(svc.url + "/v1/embeddings", headers=AUTH)
    assert r.status_code == 405 and "not allowed" in r.json()["error"]["message"]


def test_models_endpoint_needs_the_key_but_health_does_not(svc):
    assert httpx.get(svc.url + "/v1/models").status_code == 401
    assert httpx.get(svc.url + "/health").status_code == 200


# ---------------------------------------------------------------- load

def test_load_2000_requests_at_32_concurrent(models):
    """Zero 5xx, every answer identical to the in-process result, and requests really share encoder calls."""
    s = ThreadServer(_config(models, api_key=None, limits=Limits())).start()
    rng = random.Random(0)
    jobs = []
    for i in range(2000):
        texts = [f"load text {i} {j}" for j in range(rng.randint(1, 3))]
        kind = rng.choices(["toy", "ko->en:br", "en->ko:br", "classify", "search"], [4, 4, 2, 1, 1])[0]
        jobs.append((kind, texts))

    async def run() -> list[tuple[int, dict]]:
        sem = asyncio.Semaphore(32)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=s.url, limits=limits, timeout=60) as client:
            async def one(kind: str, texts: list[str]) -> tuple[int, dict]:
                async with sem:
                    if kind == "classify":
                        r = await client.post("/v1/classify", json={"model": "topic", "input": texts})
                    elif kind == "search":
                        r = await client.post("/v1/search", json={"index": "docs", "query": texts,
                                                                  "model": "ko->en:br", "top_k": 2})
                    else:
                        r = await client.post("/v1/embeddings", json={"model": kind, "input": texts})
                    return r.status_code, r.json()

            return await asyncio.gather(*(one(k, t) for k, t in jobs))

    try:
        results = asyncio.run(run())
        batches = s.registry.batcher(models["x"]).batches + s.registry.batcher(models["y"]).batches
    finally:
        s.stop()
    assert [st for st, _ in results if st != 200] == []
    align, clf, idx, x = models["align"], models["clf"], models["index"], models["x"]
    for (kind, texts), (_, body) in zip(jobs, results, strict=True):
        if kind == "classify":
            assert [d["label"] for d in body["data"]] == list(clf.predict(texts))
        elif kind == "search":
            want = idx.search(texts, 2, aligner=align)
            assert [[h["id"] for h in r["hits"]] for r in body["data"]] == [[h.id for h in row] for row in want]
        else:
            want = {"toy": x.encode, "ko->en:br": align.to_source, "en->ko:br": align.to_target}[kind](texts)
            # Equal up to float32 rounding: requests batched together go through the matrix
            # products as other batches than in-process calls, which can change the summation order.
            np.testing.assert_allclose(np.stack([vec(d) for d in body["data"]]), want, rtol=1e-5, atol=1e-5)
    assert batches < len(jobs)  # concurrent requests were encoded together


# ---------------------------------------------------------------- batching, readiness

def test_batcher_encodes_concurrent_requests_in_one_call_and_splits_results():
    calls = []

    def fn(texts):
        calls.append(list(texts))
        return np.array([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)

    async def go():
        b = MicroBatcher(fn, max_texts=100, max_wait_ms=200)
        outs = await asyncio.gather(*(b.submit([f"{'x' * i}", "y"]) for i in range(10)))
        b.close()
        return outs

    outs = asyncio.run(go())
    assert len(calls) == 1 and len(calls[0]) == 20
    assert [o[:, 0].tolist() for o in outs] == [[float(i), 1.0] for i in range(10)]


def test_batcher_respects_max_texts_and_isolates_a_failing_request():
    calls = []

    def fn(texts):
        calls.append(len(texts))
        if "boom" in texts:
            raise ValueError("cannot encode boom")
        return np.zeros((len(texts), 2), np.float32)

    async def go():
        b = MicroBatcher(fn, max_texts=4, max_wait_ms=50)
        res = await asyncio.gather(b.submit(["a", "b", "c"]), b.submit(["boom"]), b.submit(["d", "e"]),
                                   b.submit(["f"] * 9), return_exceptions=True)
        b.close()
        return res

    res = asyncio.run(go())
    assert isinstance(res[1], ValueError) and "boom" in str(res[1])
    assert [r.shape for i, r in enumerate(res) if i != 1] == [(3, 2), (2, 2), (9, 2)]
    # batches of at most 4 (retries of a failed batch go request by request); a request larger than a
    # batch is split over several, sharing them with the others
    assert all(n <= 4 for n in calls)


def test_health_is_503_until_every_model_is_loaded(models):
    gate = threading.Event()

    class Slow(Registry):
        def load(self):
            gate.wait(30)
            return super().load()

    cfg = _config(models)
    s = ThreadServer(cfg, registry=Slow(cfg)).start(ready=False)
    try:
        r = httpx.get(s.url + "/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        r = post(s, "/v1/embeddings", {"model": "toy", "input": "x"})
        assert r.status_code == 503 and "loading" in r.json()["error"]["message"]
        gate.set()
        for _ in range(600):
            if s.registry.state != "loading":
                break
            time.sleep(0.05)
        assert httpx.get(s.url + "/health").status_code == 200
    finally:
        gate.set()
        s.stop()


def test_a_fingerprint_mismatch_fails_loading_and_stops_the_service(models):
    impostor = CountingEncoder("toy", 16, salt="a retrained model under the same name")
    cfg = _config(models, encoders=[impostor, models["y"]], classifiers={}, indexes={})
    s = ThreadServer(cfg)
    s.thread.start()
    s.thread.join(60)  # stops by itself once loading fails
    assert not s.thread.is_alive()
    assert s.registry.state == "error" and "probe sentences differ" in s.registry.error


# ---------------------------------------------------------------- config and CLI

def test_config_file_paths_are_relative_to_the_file(models, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LANGALIGN_KEY", KEY)
    cfg_file = models["dir"] / "serve.json"
    cfg_file.write_text(json.dumps({"aligners": {"br": {"path": "bridge", "target_langs": ["ko"]}},
                                    "indexes": {"docs": "docs"}, "api_key_env": "TEST_LANGALIGN_KEY",
                                    "limits": {"max_items": 8}}))
    cfg = ServeConfig.from_file(cfg_file).check()
    assert cfg.aligners["br"].path == models["dir"] / "bridge" and cfg.limits.max_items == 8
    assert cfg.api_key == KEY and KEY not in repr(cfg)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"aligners": {"br": "bridge"}, "port": 1, "typo": 1}))
    with pytest.raises(Exception, match="unknown key"):
        ServeConfig.from_file(bad)


@pytest.fixture
def toy_names(monkeypatch, models):
    monkeypatch.setitem(encoders._cache, "toy", models["x"])
    monkeypatch.setitem(encoders._cache, "toy-y", models["y"])


def test_cli_serve_check_lists_models(toy_names, models, capsys):
    d = models["dir"]
    assert main(["serve", "--aligner", f"br={d / 'bridge'}", "--index", f"docs={d / 'docs'}",
                 "--classifier", f"topic={d / 'clf'}", "--target-langs", "ko,ja", "--check"]) == 0
    ids = {m["id"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert {"ko->en:br", "ja->en:br", "docs", "topic", "toy", "toy-y"} <= ids and "zh->en:br" not in ids


@pytest.mark.parametrize("argv, fragment", [
    (["serve", "--aligner", "br=/no/such/folder"], "is not a folder"),
    (["serve", "--aligner", "no-equals-sign"], "NAME=PATH"),
    (["serve", "--encoder", "toy", "--api-key-env", "SURELY_UNSET_LANGALIGN_VAR"], "not set"),
    (["serve", "--aligner", "bad:name=."], "must be 1-64 letters"),
    (["serve"], "nothing to serve"),
])
def test_cli_serve_config_errors_are_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("langalign: error:") and fragment in err


# ---------------------------------------------------------------- real models, real CLI process

@pytest.mark.integration
def test_real_models_through_the_cli_process(tmp_path):
    openai = pytest.importorskip("openai")
    from langalign.data import load_sib200_parallel

    train = load_sib200_parallel("en", "ko", "train")
    dev = load_sib200_parallel("en", "ko", "dev")
    bridge = LangAlign("minilm", "use-multilingual").fit(train.source[:200], train.source[:200])
    bridge.save(tmp_path / "bridge")
    docs = dev.source[:60]
    SearchIndex("minilm").build(docs).save(tmp_path / "docs")
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TEST_SERVE_KEY": KEY}
    cmd = [sys.executable, "-m", "langalign.cli", "serve", "--aligner", f"bridge={tmp_path / 'bridge'}",
           "--index", f"docs={tmp_path / 'docs'}", "--port", "0", "--api-key-env", "TEST_SERVE_KEY",
           "--no-access-log"]
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        url = None
        for _ in range(2400):  # bounded: 120 s for the models to load
            text = log.read_text()
            if url is None and "serving on " in text:
                url = text.split("serving on ")[1].split()[0]
            if url and httpx.get(url + "/health").status_code == 200:
                break
            assert proc.poll() is None, text
            time.sleep(0.05)
        assert url and httpx.get(url + "/health").status_code == 200, log.read_text()
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        ko = dev.target[:5]
        out = client.embeddings.create(model="ko->en:bridge", input=ko)
        got = np.array([d.embedding for d in out.data], dtype=np.float32)
        np.testing.assert_allclose(got, bridge.to_source(ko), atol=1e-5)
        r = httpx.post(url + "/v1/search", headers=AUTH, json={"index": "docs", "query": ko, "model": "ko->en:bridge",
                                                                "top_k": 3}).json()
        want = SearchIndex.load(tmp_path / "docs").search(ko, 3, aligner=bridge)
        assert [r_["hits"][0]["id"] for r_ in r["data"]] == [row[0].id for row in want]
        assert KEY not in log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait(10)
    assert rc == 0, log.read_text()


@pytest.mark.integration
def test_tuned_minilm_bridge_and_classifier_served_over_http(tmp_path, monkeypatch):
    """Issue 14's pipeline end to end: tune MiniLM (task mode) -> English-only bridge tuned-minilm <->
    use-multilingual -> classifier -> a service whose config names the tuned folder -> Korean over HTTP."""
    from langalign.data import load_sib200
    from langalign.tuning import tune_encoder

    train = load_sib200("en", "train")
    small, dev = train.sample(42, seed=0), load_sib200("en", "dev").sample(21, seed=0)
    tuned = tmp_path / "tuned" / "topic"
    enc = tune_encoder("minilm", small.texts, small.labels, tuned, dev=(dev.texts, dev.labels), epochs=1,
                       max_seq_length=32, batch_size=8, lr=1e-4, device="cpu", seed=0)
    assert enc.name.startswith("tuned:minilm:")
    english = train.sample(600, seed=1).texts  # more pairs than the 512 dimensions: a determined map
    bridge = LangAlign(enc, "use-multilingual", held_out=0.0).fit(english, english)
    bridge.save(tmp_path / "bridge")
    clf = CrossLingualClassifier(bridge, mode="reverse").fit(small.texts, small.labels)
    clf.save(tmp_path / "topic")
    monkeypatch.setenv("TEST_SERVE_KEY", KEY)
    (tmp_path / "serve.json").write_text(json.dumps({
        "port": 0, "api_key_env": "TEST_SERVE_KEY", "encoders": ["tuned/topic", "use-multilingual"],
        "aligners": {"bridge": {"path": "bridge", "target_langs": ["ko"]}}, "classifiers": {"topic": "topic"}}))
    cfg = ServeConfig.from_file(tmp_path / "serve.json")
    s = ThreadServer(cfg).start()
    try:
        ko = load_sib200("ko", "test").sample(3, seed=0).texts
        r = post(s, "/v1/classify", {"model": "topic", "input": ko})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        labels = set(small.labels)
        assert all(d["label"] in labels for d in data)
        assert [d["label"] for d in data] == list(clf.predict(ko))
        probs = np.array([[d["probabilities"][str(c)] for c in clf._require_head().classes_] for d in data])
        np.testing.assert_allclose(probs, clf.predict_proba(ko), atol=1e-6)
        ids = {m["id"] for m in httpx.get(s.url + "/v1/models", headers=AUTH).json()["data"]}
        assert {enc.name, "use-multilingual", "ko->en:bridge", "topic"} <= ids
        assert s.registry.encoders[enc.name].fingerprint() == enc.fingerprint()  # the tuned folder itself
    finally:
        s.stop()


def test_oversized_chunked_body_without_content_length_is_413(svc):
    def chunks():
        for _ in range(40):
            yield b"x" * 1000

    r = httpx.post(svc.url + "/v1/embeddings", content=chunks(), headers={**AUTH, "Content-Type": "application/json"},
                   timeout=30)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    assert post(svc, "/v1/embeddings", {"model": "toy", "input": "x"}).status_code == 200


def test_accepted_connections_are_tcp_so_asyncio_sets_nodelay():
    """asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; with proto 0 each response
    waited ~40 ms for a delayed ACK. Checked on a connection accepted from the service's own listener."""
    import socket

    from langalign.serving.server import bind

    lis = bind("127.0.0.1", 0)
    lis.setblocking(True)
    cli = socket.create_connection(lis.getsockname()[:2])
    conn, _ = lis.accept()
    try:
        assert conn.proto == socket.IPPROTO_TCP
        asyncio.base_events._set_nodelay(conn)  # what the transport does for it
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        for s in (conn, cli, lis):
            s.close()


def test_batcher_does_not_wait_for_company_when_no_other_request_is_in_flight():
    """A lone request skips the batch wait (it would only add latency); with others in flight it waits."""
    def fn(texts):
        return np.zeros((len(texts), 1), np.float32)

    async def go(in_flight: int) -> int:
        b = MicroBatcher(fn, max_texts=64, max_wait_ms=20, in_flight=lambda: in_flight)
        await b.submit(["x"])
        b.close()
        return b.waits

    assert asyncio.run(go(1)) == 0  # alone: encoded at once
    assert asyncio.run(go(5)) == 1  # four others in flight: it waited for them (they never came)

    async def after_a_shared_batch() -> int:
        b = MicroBatcher(fn, max_texts=64, max_wait_ms=20, in_flight=lambda: 2)
        await asyncio.gather(b.submit(["a"]), b.submit(["b"]))  # both queued: no wait, one shared batch
        assert (b.batches, b.waits) == (1, 0)
        b.in_flight = lambda: 1
        await b.submit(["c"])  # under load the others may still be on the wire: wait for them
        b.close()
        return b.waits

    assert asyncio.run(after_a_shared_batch()) == 1


def test_cli_serve_stops_with_one_error_line_when_loading_fails(models, monkeypatch, capsys):
    """The real uvicorn server in the CLI process: an artefact whose encoder fingerprint does not match the
    served encoder fails loading; the service stops by itself and the command exits 2 with one error line."""
    monkeypatch.setitem(encoders._cache, "toy", CountingEncoder("toy", 16, salt="retrained"))
    monkeypatch.setitem(encoders._cache, "toy-y", models["y"])
    d = models["dir"]
    assert main(["serve", "--aligner", f"br={d / 'bridge'}", "--port", "0", "--log-level", "critical",
                 "--no-access-log"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("langalign: error: the service could not load its models")
    assert "probe sentences differ" in err[-1]


@pytest.mark.parametrize("cmd", [["serve"], ["index", "build"], ["index", "add"], ["index", "delete"],
                                 ["index", "info"], ["search"]])
def test_new_commands_have_help_with_examples(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0 and "examples:" in capsys.readouterr().out
