"""Neural mappers with a real training budget, on SIB-200 with 300 in-domain pairs.

The main benchmark gives the neural mappers a small budget (20 epochs, patience 3:
about 60 optimizer steps on 300 pairs). This script asks whether the paper's plain
FC / AE mappers do better when trained properly, and how langalign's residual forms
compare. Same data, head and seed as the benchmark's "in-domain 300" rows.

    python bench/neural_budget.py --out results
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import langalign as la
from langalign.scale.cache import CachedEncoder
from langalign.data import load_sib200, load_sib200_parallel
from langalign.transfer import CrossLingualClassifier

BUDGET = {"epochs": 300, "patience": 30, "batch_size": 32, "device": "cpu"}
MAPPERS = ["default", "mlp-paper", "autoencoder-paper", "mlp", "autoencoder"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    use = CachedEncoder(la.load_encoder("use-multilingual"))
    en = load_sib200("en", "train")
    X_en = use.encode(en.texts)
    rows: dict[str, dict[str, float]] = {}
    info: dict[str, dict] = {}
    for lang in ("ko", "ja", "zh"):
        te = load_sib200(lang, "test")
        Yt = use.encode(te.texts)
        par = load_sib200_parallel("en", lang, "train").sample(args.pairs, args.seed)
        Xp, Yp = use.encode(par.source), use.encode(par.target)
        zs = CrossLingualClassifier(use, mode="zero-shot").fit_embeddings(X_en, en.labels)
        acc = float(np.mean(zs.predict_embeddings(Yt) == np.array(te.labels)))
        rows.setdefault("zero-shot (no map)", {})[lang] = acc
        for mapper in MAPPERS:
            params = {} if mapper == "default" else {**BUDGET, "seed": args.seed}
            t0 = time.perf_counter()
            align = la.LangAlign(use, use, mapper=mapper, mapper_params=params, seed=args.seed).fit_embeddings(Xp, Yp)
            secs = time.perf_counter() - t0
            for mode, name in (("reverse", "Rev-LangAlign"), ("forward", "LangAlign")):
                clf = CrossLingualClassifier(align, mode=mode).fit_embeddings(X_en, en.labels)
                acc = float(np.mean(clf.predict_embeddings(Yt) == np.array(te.labels)))
                rows.setdefault(f"{name} {mapper}", {})[lang] = acc
            fwd = align.forward_
            info.setdefault(mapper, {})[lang] = {"fit_seconds": round(secs, 2),
                                                 "best_epoch": getattr(fwd, "best_epoch_", None),
                                                 "epochs_run": len(getattr(fwd, "history_", [])) - 1 or None}
            print(f"{lang} {mapper}: fitted in {secs:.1f}s", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": "python bench/neural_budget.py", "pairs": args.pairs, "seed": args.seed,
              "neural_params": BUDGET, "accuracy": rows, "fits": info,
              "date": time.strftime("%Y-%m-%d")}
    (out / "neural_budget.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"SIB-200 accuracy (%), use-multilingual both sides, {args.pairs} in-domain pairs, "
             f"neural mappers: {BUDGET} (`python bench/neural_budget.py`, {result['date']})", "",
             "| method | ko | ja | zh | mean |", "|---|---:|---:|---:|---:|"]
    for name, vals in rows.items():
        v = [vals[c] for c in ("ko", "ja", "zh")]
        lines.append(f"| {name} | " + " | ".join(f"{100 * x:.1f}" for x in v) + f" | {100 * np.mean(v):.1f} |")
    (out / "neural_budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
