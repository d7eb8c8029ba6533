"""Never worse out of domain: aligners fitted on LibreOffice pairs, applied elsewhere (dev splits only).

For each target language, the default aligner (``LinearMapper``) and the shrunk
``procrustes`` are fitted on a seeded 4,000 LibreOffice-help train pairs (as in the
benchmark) and used in Rev-LangAlign mode with the default English head on the
dev data of ``bench/head_protocol.py`` (SIB-200 by 5-fold CV over train+dev,
sentiment, NLI, and LibreOffice dev as the in-domain control). Three ways:

* ``zero-shot``: no map;
* ``map``: the fitted map as is;
* ``adapt``: ``LangAlign.adapt(unlabelled target vectors)`` first, which measures the
  domain shift of the set's own (unlabelled) target texts and blends the map toward
  the identity; no label is used.

A further control: the default aligner fitted on 300 in-domain SIB-200 pairs (from
the training folds) must keep its map after ``adapt``. McNemar p-values compare
each row with the zero-shot predictions on the same items.

    python bench/domain_shift.py --out results        # writes domain_shift.md / .json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import head_protocol as hp  # noqa: E402

import langalign as la  # noqa: E402
from langalign.data import load_libreoffice_help  # noqa: E402
from langalign.evaluation import classification_report, mcnemar  # noqa: E402
from langalign.heads import LogisticRegressionHead, pair_features  # noqa: E402

LO_PAIRS = 4000  # the benchmark's LIBREOFFICE_PAIRS
MAPPERS = ("default", "procrustes")


def _split_pair(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = E.shape[1] // 4
    return E[:, :d], E[:, d:2 * d]


def _predict(head: Any, E: np.ndarray, pair: bool, transform) -> np.ndarray:
    if not pair:
        return head.predict(transform(E))
    U, V = _split_pair(E)
    return head.predict(pair_features(transform(U), transform(V)))


def _unlabelled(E: np.ndarray, pair: bool) -> np.ndarray:
    return np.vstack(_split_pair(E)) if pair else E


def run_task(task: hp.DevTask, lang: str, aligners: dict[str, la.LangAlign], sib_pairs: dict | None = None
             ) -> list[dict[str, Any]]:
    pair = task.name == "nli"
    gold: list[Any] = []
    preds: dict[str, list[np.ndarray]] = {}
    trust: dict[str, list[float]] = {}
    shift: dict[str, list[float]] = {}
    for k, f in enumerate(task.folds):
        head = LogisticRegressionHead().fit(f.X, f.y)
        E, y = f.evals[lang]
        gold += list(y)
        preds.setdefault("zero-shot", []).append(_predict(head, E, pair, lambda V: V))
        fold_aligners = dict(aligners)
        if sib_pairs is not None:
            fold_aligners["default [SIB-200 300 in-domain]"] = sib_pairs[k]
        for name, al in fold_aligners.items():
            al.adapted_ = {}
            preds.setdefault(f"{name} map", []).append(_predict(head, E, pair, al.to_source))
            al.adapt(_unlabelled(E, pair))
            rep = al.adapted_["reverse"]
            trust.setdefault(name, []).append(rep["trust"])
            shift.setdefault(name, []).append(rep["shift"])
            preds.setdefault(f"{name} adapt", []).append(_predict(head, E, pair, al.to_source))
            al.adapted_ = {}
    ref = np.concatenate(preds["zero-shot"])
    rows = []
    for method, p in preds.items():
        p = np.concatenate(p)
        rep = classification_report(gold, list(p))
        row = {"task": task.name, "lang": lang, "method": method, "metric": task.metric,
               "score": rep[task.metric], "accuracy": rep["accuracy"], "n": len(gold)}
        if method != "zero-shot":
            base = method.rsplit(" ", 1)[0]
            mc = mcnemar(gold, list(ref), list(p))
            row.update({"diff": rep[task.metric] - classification_report(gold, list(ref))[task.metric],
                        "mcnemar_p": mc["p_value"], "trust": float(np.mean(trust[base])) if method.endswith("adapt")
                        else 1.0, "shift": float(np.mean(shift[base]))})
        rows.append(row)
    return rows


def sib_in_domain_aligners(vec: hp.Vectors, seed: int) -> dict[str, list[la.LangAlign]]:
    """Per language and SIB-200 fold: the default aligner on the 300 pairs head_protocol uses in that fold."""
    V, _, fold_of = hp.sib200_data(vec, hp.find_reference_data(), seed)
    out: dict[str, list[la.LangAlign]] = {lang: [] for lang in hp.LANGS}
    for k in range(hp.SIB_FOLDS):
        pick = hp.sib200_pairs(fold_of, k, seed)
        for lang in hp.LANGS:
            out[lang].append(la.LangAlign("use-multilingual", "use-multilingual", held_out=0.0, seed=seed)
                             .fit_embeddings(V["en"][pick], V[lang][pick]))
    return out


def to_markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# Aligners out of domain: LibreOffice-fitted maps with and without `adapt` (dev splits only)", "",
             "Rev-LangAlign with the default head (use-multilingual on both sides). `map`: the aligner as fitted; "
             "`adapt`: after `LangAlign.adapt(unlabelled target texts of the set)` (no labels). Scores x100 "
             "(accuracy for sib200/sentiment, macro-F1 for nli/libreoffice); `diff` against zero-shot on the "
             "same items; `p`: McNemar vs zero-shot; `trust`: weight adapt gave the map (1 = all); `shift`: "
             "the measured domain shift.", "",
             "| task | lang | method | score | diff | p | trust | shift |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] == "zero-shot":
            lines.append(f"| {r['task']} | {r['lang']} | zero-shot | {100 * r['score']:.1f} |  |  |  |  |")
            continue
        lines.append(f"| {r['task']} | {r['lang']} | {r['method']} | {100 * r['score']:.1f} | {100 * r['diff']:+.1f} "
                     f"| {r['mcnemar_p']:.3f} | {r['trust']:.2f} | {r['shift']:.3f} |")
    worst = {}
    for r in rows:
        if r["method"].endswith(("map", "adapt")) and r["task"] != "libreoffice" and "SIB-200" not in r["method"]:
            key = r["method"].rsplit(" ", 1)[1]
            sig = r["diff"] < 0 and r["mcnemar_p"] < 0.05
            w = worst.setdefault(key, {"min_diff": 0.0, "max_diff": 0.0, "significant_losses": 0,
                                       "significant_gains": 0})
            w["min_diff"] = min(w["min_diff"], r["diff"])
            w["max_diff"] = max(w["max_diff"], r["diff"])
            w["significant_losses"] += int(sig)
            w["significant_gains"] += int(r["diff"] > 0 and r["mcnemar_p"] < 0.05)
    lines += ["", "Out of domain (SIB-200, sentiment, NLI with LibreOffice-fitted aligners):", ""]
    for key, w in worst.items():
        lines.append(f"- `{key}`: difference to zero-shot from {100 * w['min_diff']:+.1f} to "
                     f"{100 * w['max_diff']:+.1f} points; significantly below zero-shot (McNemar p < 0.05) in "
                     f"{w['significant_losses']} rows, significantly above in {w['significant_gains']}")
    lines += ["", f"LibreOffice pairs: a seeded {LO_PAIRS:,} train pairs per language. Thresholds: "
              f"`SHIFT_FULL_MAP={meta['full']}`, `SHIFT_NO_MAP={meta['none']}` (langalign.domain_shift).",
              "", f"Command: `{meta['command']}` ({meta['seconds']:.0f}s).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from langalign.domain_shift import SHIFT_FULL_MAP, SHIFT_NO_MAP

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    vec = hp.Vectors()
    root = hp.find_reference_data()
    tasks = [hp.sib200_task(vec, root, args.seed, reverse=False), hp.sentiment_task(vec, root, args.seed),
             hp.nli_task(vec, root, args.seed), hp.libreoffice_task(vec, None, args.seed, reverse=False)]
    sib_in = sib_in_domain_aligners(vec, args.seed)
    rows: list[dict[str, Any]] = []
    for lang in hp.LANGS:
        par = load_libreoffice_help(lang, "train").sample(LO_PAIRS, args.seed)
        Xp, Yp = vec(list(par.source)), vec(list(par.target))
        aligners = {f"{m} [LibreOffice]": la.LangAlign("use-multilingual", "use-multilingual", mapper=m, held_out=0.0,
                                                       seed=args.seed).fit_embeddings(Xp, Yp) for m in MAPPERS}
        log(f"[{lang}] aligners fitted ({time.perf_counter() - t0:.0f}s)")
        for task in tasks:
            if lang not in task.folds[0].evals:
                continue
            got = run_task(task, lang, aligners, sib_in[lang] if task.name == "sib200" else None)
            rows += got
            log("  " + task.name + ": " + ", ".join(f"{r['method']} {100 * r['score']:.1f}" for r in got))
    meta = {"seed": args.seed, "full": SHIFT_FULL_MAP, "none": SHIFT_NO_MAP, "seconds": time.perf_counter() - t0,
            "command": "python bench/domain_shift.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "domain_shift.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    (out / "domain_shift.md").write_text(to_markdown(rows, meta), encoding="utf-8")
    log(f"wrote {out / 'domain_shift.md'}")


if __name__ == "__main__":
    main()
