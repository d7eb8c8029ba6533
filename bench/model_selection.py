"""Model selection for transfer without target labels (dev splits only).

Candidates: the English logistic-regression head (L2-normalised, C in 0.3/1/3/10)
used zero-shot, through a reverse (Rev-LangAlign) or a forward (LangAlign) default
aligner. Three ways to choose among them for a target language:

* ``English dev``: the best score on the English dev set (what a user without
  target data looks at today);
* ``agreement``: Cohen's kappa between the predictions on the English and on the
  target side of *unlabelled* parallel pairs (``CrossLingualClassifier.agreement``);
* ``50 labelled``: the best score on 50 labelled target dev items (5 seeded draws;
  every selection is then scored on the remaining items).

Each is reported as the regret against the best candidate in hindsight on the same
target dev items. Data as in ``bench/head_protocol.py``; aligners and parallel pairs:

* SIB-200 (5-fold CV over train+dev): aligner on 300 pairs from the training folds;
  parallel pairs = the held-out fold's English and target sentences (unlabelled).
* LibreOffice modules: aligner on 2,000 train pairs; parallel pairs = the dev pairs.
* sentiment, NLI: aligner on 4,000 LibreOffice train pairs (no in-domain pairs exist);
  parallel pairs: LibreOffice dev pairs for sentiment (out of domain), the row-aligned
  XNLI dev sets for NLI ko/zh; NLI ja has none (agreement not available).

    python bench/model_selection.py --out results   # writes model_selection.md / .json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import head_protocol as hp  # noqa: E402

from langalign.data import load_libreoffice_help, load_nli, load_sentiment  # noqa: E402
from langalign.evaluation import classification_report, cohen_kappa  # noqa: E402
from langalign.heads import LogisticRegressionHead, pair_features  # noqa: E402
from langalign.mappers import make_mapper  # noqa: E402

CS = (0.3, 1.0, 3.0, 10.0)
DEFAULT_C = 3.0  # LogisticRegressionHead's default
MODES = ("zero-shot", "reverse", "forward")
N_LABELLED = 50
DRAWS = 5


@dataclass
class Split:
    """One training set; target/English dev items; maps; unlabelled parallel pairs (None: none)."""

    X: Any                      # English training vectors (pair tasks: (U, V))
    y: list[Any]
    E: Any                      # target-language dev vectors
    y_e: list[Any]
    E_en: Any                   # English dev vectors
    y_en: list[Any]
    fwd: Any
    rev: Any
    par: tuple[Any, Any] | None = None


@dataclass
class Task:
    name: str
    metric: str
    pair: bool
    splits: dict[str, list[Split]] = field(default_factory=dict)  # lang -> folds


def _feats(V: Any, pair: bool, fn: Callable[[np.ndarray], np.ndarray] = lambda A: A) -> np.ndarray:
    return pair_features(fn(V[0]), fn(V[1])) if pair else fn(V)


def _take(V: Any, idx, pair: bool) -> Any:
    return (V[0][idx], V[1][idx]) if pair else V[idx]


def build(vec: hp.Vectors, seed: int) -> list[Task]:
    root = hp.find_reference_data()
    tasks = []
    # SIB-200
    V, labels, fold_of = hp.sib200_data(vec, root, seed)
    t = Task("sib200", "accuracy", False)
    for lang in hp.LANGS:
        t.splits[lang] = []
        for k in range(hp.SIB_FOLDS):
            tr, te = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
            pick = hp.sib200_pairs(fold_of, k, seed)
            Xp, Yp = V["en"][pick], V[lang][pick]
            y_te = [labels[i] for i in te]
            t.splits[lang].append(Split(V["en"][tr], [labels[i] for i in tr], V[lang][te], y_te, V["en"][te], y_te,
                                        make_mapper("default").fit(Xp, Yp), make_mapper("default").fit(Yp, Xp),
                                        (V["en"][te], V[lang][te])))
    tasks.append(t)
    # LibreOffice-fitted maps (sentiment, NLI) and LibreOffice dev pairs
    lo_maps, lo_dev = {}, {}
    for lang in hp.LANGS:
        par = hp.load_split(load_libreoffice_help, lang, "train").sample(4000, seed)
        Xp, Yp = vec(list(par.source)), vec(list(par.target))
        lo_maps[lang] = (make_mapper("default").fit(Xp, Yp), make_mapper("default").fit(Yp, Xp))
        dev = hp.load_split(load_libreoffice_help, lang, "dev").sample(hp.LO_DEV, seed)
        lo_dev[lang] = dev
    # sentiment
    tr = hp.load_split(load_sentiment, "en", "train", root=root).sample(hp.SST2_TRAIN, seed)
    en = hp.load_split(load_sentiment, "en", "dev", root=root).sample(hp.SST2_DEV, seed)
    t = Task("sentiment", "accuracy", False)
    Xs, Es = vec(list(tr.texts)), vec(list(en.texts))
    for lang in ("ja", "zh"):
        ds = hp.load_split(load_sentiment, lang, "dev", root=root)
        fwd, rev = lo_maps[lang]
        par = (vec(list(lo_dev[lang].source)), vec(list(lo_dev[lang].target)))
        t.splits[lang] = [Split(Xs, list(tr.labels), vec(list(ds.texts)), list(ds.labels), Es, list(en.labels),
                                fwd, rev, par)]
    tasks.append(t)
    # NLI
    a, b, y = hp.snli_dev(root)
    idx = hp.seeded(len(a), hp.SNLI_TRAIN, seed)
    Xn = vec.pairs([a[i] for i in idx], [b[i] for i in idx])
    en = hp.load_split(load_nli, "en", "dev", root=root).sample(hp.NLI_DEV, seed)
    En = vec.pairs(list(en.texts), list(en.text_pairs))
    t = Task("nli", "macro_f1", True)
    for lang in hp.LANGS:
        ds = hp.load_split(load_nli, lang, "dev", root=root).sample(hp.NLI_DEV, seed)
        Et = vec.pairs(list(ds.texts), list(ds.text_pairs))
        # XNLI dev en/ko/zh are row-aligned translations (same size, same seeded sample); JNLI is not
        aligned = lang != "ja" and list(ds.labels) == list(en.labels)
        fwd, rev = lo_maps[lang]
        t.splits[lang] = [Split(Xn, [y[i] for i in idx], Et, list(ds.labels), En, list(en.labels), fwd, rev,
                                (En, Et) if aligned else None)]
    tasks.append(t)
    # LibreOffice modules
    trl = hp.load_split(load_libreoffice_help, "ko", "train").sample(hp.LO_TRAIN, seed)
    Xl, yl = vec(list(trl.source)), list(trl.meta["label"])
    known = set(yl)
    en = hp.load_split(load_libreoffice_help, "ko", "dev").sample(hp.LO_DEV, seed)
    keep = [i for i, lab in enumerate(en.meta["label"]) if lab in known]
    El, yel = vec([en.source[i] for i in keep]), [en.meta["label"][i] for i in keep]
    t = Task("libreoffice", "macro_f1", False)
    for lang in hp.LANGS:
        dev = lo_dev[lang]
        keep = [i for i, lab in enumerate(dev.meta["label"]) if lab in known]
        par = hp.load_split(load_libreoffice_help, lang, "train").sample(hp.LO_PAIRS, seed)
        Xp, Yp = vec(list(par.source)), vec(list(par.target))
        Et = vec([dev.target[i] for i in keep])
        t.splits[lang] = [Split(Xl, yl, Et, [dev.meta["label"][i] for i in keep], El, yel,
                                make_mapper("default").fit(Xp, Yp), make_mapper("default").fit(Yp, Xp),
                                (vec([dev.source[i] for i in keep]), Et))]
    tasks.append(t)
    return tasks


_HEADS: dict[tuple, Any] = {}


def candidate_outputs(task: Task, s: Split, mode: str, C: float) -> dict[str, np.ndarray]:
    """Predictions of one candidate: target dev, English dev, and both sides of the parallel pairs."""
    pair = task.pair
    ident = lambda A: A  # noqa: E731
    train_fn = s.fwd.transform if mode == "forward" else ident
    input_fn = s.rev.transform if mode == "reverse" else ident
    key = (id(s.X), id(s.fwd) if mode == "forward" else None, C)
    if key not in _HEADS:  # zero-shot and reverse share a head; NLI/sentiment share it across languages
        _HEADS[key] = LogisticRegressionHead(C=C).fit(_feats(s.X, pair, train_fn), s.y)
    head = _HEADS[key]
    out = {"target": head.predict(_feats(s.E, pair, input_fn)),
           "english": head.predict(_feats(s.E_en, pair, train_fn))}
    if s.par is not None:
        out["par_en"] = head.predict(_feats(s.par[0], pair, train_fn))
        out["par_xx"] = head.predict(_feats(s.par[1], pair, input_fn))
    return out


def _score(metric: str, gold: list[Any], pred: np.ndarray, idx: np.ndarray | None = None) -> float:
    if idx is not None:
        gold, pred = [gold[i] for i in idx], pred[idx]
    return float(classification_report(list(gold), list(pred))[metric])


def evaluate(task: Task, lang: str, seed: int) -> dict[str, Any]:
    cands = [(m, C) for m in MODES for C in CS]
    names = [f"{m} C={C:g}" for m, C in cands]
    target, english, kappa = {}, {}, {}
    gold_t: list[Any] = []
    gold_e: list[Any] = []
    preds_t: dict[str, list[np.ndarray]] = {n: [] for n in names}
    preds_e: dict[str, list[np.ndarray]] = {n: [] for n in names}
    par: dict[str, tuple[list, list]] = {n: ([], []) for n in names}
    has_par = all(s.par is not None for s in task.splits[lang])
    for s in task.splits[lang]:
        gold_t += list(s.y_e)
        gold_e += list(s.y_en)
        for n, (m, C) in zip(names, cands, strict=True):
            o = candidate_outputs(task, s, m, C)
            preds_t[n].append(o["target"])
            preds_e[n].append(o["english"])
            if has_par:
                par[n][0].append(o["par_en"])
                par[n][1].append(o["par_xx"])
    P = {n: np.concatenate(preds_t[n]) for n in names}
    for n in names:
        target[n] = _score(task.metric, gold_t, P[n])
        english[n] = _score(task.metric, gold_e, np.concatenate(preds_e[n]))
        if has_par:
            kappa[n] = cohen_kappa(np.concatenate(par[n][0]), np.concatenate(par[n][1]))
    best = max(target.values())
    first = lambda d: max(d, key=d.get)  # noqa: E731  (ties: first candidate, zero-shot before maps)
    res: dict[str, Any] = {"task": task.name, "lang": lang, "metric": task.metric, "n": len(gold_t),
                           "best": first(target), "best_score": best, "scores": target, "english_dev": english,
                           "kappa": kappa}
    pick = first(english)
    res["english_dev_pick"], res["english_dev_regret"] = pick, best - target[pick]
    if has_par:
        pick = first(kappa)
        res["agreement_pick"], res["agreement_regret"] = pick, best - target[pick]
        # agreement choosing only the mode (which map, if any), with the default head
        pick = first({n: k for n, k in kappa.items() if n.endswith(f"C={DEFAULT_C:g}")})
        res["agreement_mode_pick"], res["agreement_mode_regret"] = pick, best - target[pick]
    regrets, picks = [], []
    rng = np.random.default_rng(seed)
    for _ in range(DRAWS):
        perm = rng.permutation(len(gold_t))
        lab, rest = perm[:N_LABELLED], perm[N_LABELLED:]
        on_lab = {n: _score(task.metric, gold_t, P[n], lab) for n in names}
        on_rest = {n: _score(task.metric, gold_t, P[n], rest) for n in names}
        p = first(on_lab)
        picks.append(p)
        regrets.append(max(on_rest.values()) - on_rest[p])
    res["labelled_picks"], res["labelled_regret"] = picks, float(np.mean(regrets))
    return res


def to_markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# Choosing a transfer configuration without target labels (dev splits only)", "",
             "Candidates: mode (zero-shot / reverse / forward, default aligner) x C (0.3, 1, 3, 10) of the "
             "L2-normalised logistic-regression head. Regret = points below the best candidate in hindsight on "
             "the same target dev items (x100; accuracy for sib200/sentiment, macro-F1 for nli/libreoffice). "
             f"`50 labelled`: mean regret over {DRAWS} seeded draws of {N_LABELLED} labelled target dev items, "
             "each scored on the remaining items.", "",
             "`agreement, C=3`: agreement choosing only the mode, with the default head.", "",
             "| task | lang | best in hindsight | best | default (reverse C=3) | English dev pick (regret) | "
             "agreement pick (regret) | agreement, C=3 (regret) | 50 labelled (regret) |",
             "|---|---|---|---|---|---|---|---|---|"]
    sums: dict[str, list[float]] = {"default": [], "english": [], "agreement": [], "agreement_C3": [],
                                    "labelled": []}
    for r in results:
        agree = (f"{r['agreement_pick']} ({100 * r['agreement_regret']:.1f}) | {r['agreement_mode_pick']} "
                 f"({100 * r['agreement_mode_regret']:.1f})" if "agreement_pick" in r
                 else "no parallel pairs | no parallel pairs")
        d = r["best_score"] - r["scores"]["reverse C=3"]
        lines.append(f"| {r['task']} | {r['lang']} | {r['best']} | {100 * r['best_score']:.1f} | {100 * d:.1f} | "
                     f"{r['english_dev_pick']} ({100 * r['english_dev_regret']:.1f}) | {agree} | "
                     f"{100 * r['labelled_regret']:.1f} |")
        sums["default"].append(d)
        sums["english"].append(r["english_dev_regret"])
        sums["labelled"].append(r["labelled_regret"])
        if "agreement_regret" in r:
            sums["agreement"].append(r["agreement_regret"])
            sums["agreement_C3"].append(r["agreement_mode_regret"])
    lines += ["", "Mean regret (points): " + ", ".join(
        f"{k} {100 * np.mean(v):.2f} over {len(v)} rows" for k, v in sums.items() if v), "",
        f"Command: `{meta['command']}` ({meta['seconds']:.0f}s).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    vec = hp.Vectors()
    tasks = build(vec, args.seed)
    print(f"data and maps ready ({time.perf_counter() - t0:.0f}s)", flush=True)
    results = []
    for task in tasks:
        for lang in task.splits:
            r = evaluate(task, lang, args.seed)
            results.append(r)
            print(f"{task.name} {lang}: best {r['best']} {100 * r['best_score']:.1f}; agreement "
                  f"{r.get('agreement_pick')}; labelled regret {100 * r['labelled_regret']:.1f}", flush=True)
    meta = {"seed": args.seed, "seconds": time.perf_counter() - t0,
            "command": "python bench/model_selection.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_selection.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1),
                                              encoding="utf-8")
    (out / "model_selection.md").write_text(to_markdown(results, meta), encoding="utf-8")


if __name__ == "__main__":
    main()
