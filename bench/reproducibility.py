"""What is reproducible bit for bit, and how much the rest varies (issue 21 item 16).

1. The English-only bridge (the residual MLP of ``fit_bridge``, minilm <- use-multilingual) fitted
   on the same pool embeddings twice with the same thread count, and with 1 and 2 torch threads:
   are the maps byte-identical?
2. The same fit on inputs perturbed by float rounding (each vector times (1 + e), |e| ~ 1e-6, about
   what another CPU's BLAS changes in an encoder's output): how much do the demo's numbers move?
   (SIB-200 accuracy of the English MiniLM head through the bridge, Tatoeba CSLS retention.)
3. Tuning MiniLM (a short task-mode run) with 1 and 2 torch threads: are the weights identical, and
   how far apart are the dev accuracies?

    python bench/reproducibility.py --out results                # writes reproducibility.{json,md}
    python bench/reproducibility.py --pool 2000 --no-tune          # quicker

Needs the english-pool corpus (``langalign data build english-pool``) and ../shared/data.
Embeddings go through the on-disk cache.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16]


def _fit(Y: np.ndarray, X: np.ndarray, threads: int) -> Any:
    """The bridge's reverse map (use-multilingual -> MiniLM), as fit_bridge fits it."""
    import torch

    from langalign.mappers import make_mapper

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        m = make_mapper("bridge").fit(Y, X)
        m.seconds_ = round(time.perf_counter() - t0, 1)
    finally:
        torch.set_num_threads(old)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=4000, help="English pool sentences for the bridge (default 4000)")
    ap.add_argument("--perturbed", type=int, default=3, help="refits on rounding-perturbed inputs (default 3)")
    ap.add_argument("--noise", type=float, default=1e-6, help="relative size of the perturbation (default 1e-6)")
    ap.add_argument("--no-tune", action="store_true", help="skip the MiniLM tuning runs")
    ap.add_argument("--out", type=Path, default=Path("results"))
    args = ap.parse_args()

    from langalign.benchmark import tasks as T
    from langalign.data import find_reference_data, load_english_pool, load_tatoeba
    from langalign.encoders import load_encoder
    from langalign.evaluation import retrieval_scores
    from langalign.heads import LogisticRegressionHead
    from langalign.scale.cache import CachedEncoder

    root = find_reference_data()
    codes = ["ko", "ja", "zh"]
    mini, use = CachedEncoder(load_encoder("minilm")), CachedEncoder(load_encoder("use-multilingual"))
    pool = load_english_pool(max_sentences=T.BRIDGE_POOL_CORPUS, seed=0)[: args.pool]
    X, Y = mini.encode(pool, show_progress=True), use.encode(pool, show_progress=True)
    sib = T.load_sib200_task(codes, root, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = LogisticRegressionHead().fit(mini.encode(sib.train_items, show_progress=True), sib.train_labels)
    sib_Y = {c: use.encode(sib.tests[c][0]) for c in codes}
    tat = {}
    for c in codes:
        pc = load_tatoeba(c, root / "tatoeba")
        en, xx = list(pc.source), list(pc.target)
        Qu = use.encode(xx, show_progress=True)
        ref = retrieval_scores(Qu, use.encode(en), query_texts=xx, candidate_texts=en,
                               both_directions=False, method="csls")["accuracy"]
        tat[c] = (Qu, mini.encode(en, show_progress=True), xx, en, ref)

    def scores(m: Any) -> dict[str, float]:
        out: dict[str, float] = {}
        for c in codes:
            pred = head.predict(m.transform(sib_Y[c]))
            out[f"sib200 {c}"] = float(np.mean(np.asarray(pred).astype(str) == np.asarray(sib.tests[c][1]).astype(str)))
            Qu, idx, xx, en, ref = tat[c]
            acc = retrieval_scores(m.transform(Qu), idx, query_texts=xx, candidate_texts=en, both_directions=False,
                                   method="csls")["accuracy"]
            out[f"tatoeba csls retention {c}"] = acc / ref
        return out

    probe = Y[:500]
    runs: list[dict[str, Any]] = []
    for label, threads, Yin, Xin in (("threads 2", 2, Y, X), ("threads 2, again", 2, Y, X), ("threads 1", 1, Y, X)):
        m = _fit(Yin, Xin, threads)
        runs.append({"run": label, "threads": threads, "map_sha256": _sha(m.transform(probe)),
                     "best_epoch": m.best_epoch_, "seconds": m.seconds_, "scores": scores(m)})
        print(runs[-1], flush=True)
    rng = np.random.default_rng(123)
    for k in range(args.perturbed):
        eX = (1 + args.noise * rng.standard_normal(X.shape)).astype(np.float32)
        eY = (1 + args.noise * rng.standard_normal(Y.shape)).astype(np.float32)
        Xp, Yp = (X * eX).astype(np.float32), (Y * eY).astype(np.float32)
        m = _fit(Yp, Xp, 2)
        change = float(max(np.abs(Xp - X).max(), np.abs(Yp - Y).max()))
        runs.append({"run": f"inputs perturbed by {args.noise:g} ({k + 1})", "threads": 2,
                     "map_sha256": _sha(m.transform(probe)), "best_epoch": m.best_epoch_, "seconds": m.seconds_,
                     "scores": scores(m), "input_max_abs_change": change})
        print(runs[-1], flush=True)
    base = runs[0]
    keys = list(base["scores"])
    spread = {k: max(r["scores"][k] for r in runs) - min(r["scores"][k] for r in runs) for k in keys}
    result: dict[str, Any] = {
        "pool": len(pool), "runs": runs,
        "bridge_same_threads_identical": runs[0]["map_sha256"] == runs[1]["map_sha256"],
        "bridge_1_vs_2_threads_identical": runs[0]["map_sha256"] == runs[2]["map_sha256"],
        "bridge_spread_over_runs": spread,
    }
    if not args.no_tune:
        result["tuning"] = _tuning_runs()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reproducibility.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "reproducibility.md").write_text(_markdown(result, keys))
    print(_markdown(result, keys))


def _tuning_runs() -> list[dict[str, Any]]:
    """MiniLM, task mode, SIB-200 (96 training examples, 1 epoch, 32 tokens) with 1, 2 and 2 threads."""
    from langalign.data import find_reference_data
    from langalign.data.benchmarks import load_sib200
    from langalign.tuning import EncoderTuner

    root = find_reference_data()
    train = load_sib200("en", "train", root / "sib200").sample(96, seed=0)
    dev = load_sib200("en", "dev", root / "sib200").sample(64, seed=0)
    out = []
    for threads in (2, 2, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = EncoderTuner("minilm", epochs=1, batch_size=16, max_seq_length=32, seed=0, device="cpu",
                             num_threads=threads).fit(train.texts, train.labels, dev=(dev.texts, dev.labels),
                                                      show_progress=False)
        sd = t.model_.state_dict()
        h = hashlib.sha256(b"".join(sd[k].detach().numpy().tobytes() for k in sorted(sd))).hexdigest()[:16]
        out.append({"threads": threads, "weights_sha256": h, "dev_accuracy": t.dev_scores_["best"],
                    "seconds": t.seconds_})
        print(out[-1], flush=True)
    return out


def _markdown(r: dict[str, Any], keys: list[str]) -> str:
    lines = ["# Reproducibility", "",
             f"`python bench/reproducibility.py` (bridge on {r['pool']:,} pool sentences).", "",
             "| run | threads | map sha256 (500 mapped rows) | best epoch | s | " + " | ".join(keys) + " |",
             "|" + "---|" * (5 + len(keys))]
    for run in r["runs"]:
        lines.append(f"| {run['run']} | {run['threads']} | `{run['map_sha256']}` | {run['best_epoch']} | "
                     f"{run['seconds']} | " + " | ".join(f"{run['scores'][k]:.4f}" for k in keys) + " |")
    lines.append("| **spread (max - min)** | | | | | " + " | ".join(f"{r['bridge_spread_over_runs'][k]:.4f}"
                                                              for k in keys) + " |")
    lines += ["", f"- same seed, same threads: identical map: {r['bridge_same_threads_identical']}",
              f"- same seed, 1 vs 2 threads: identical map: {r['bridge_1_vs_2_threads_identical']}"]
    if "tuning" in r:
        lines += ["", "| tuning MiniLM, threads | weights sha256 | dev accuracy | s |", "|---|---|---|---|"]
        lines += [f"| {t['threads']} | `{t['weights_sha256']}` | {t['dev_accuracy']:.4f} | {t['seconds']} |"
                  for t in r["tuning"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
