"""The paper's whole pipeline with e5-small: tune on English task data, then align (issue 23).

Steps, all on SIB-200 topics (English train 701 / dev 99 / test 204 per language, FLORES
sentences, so every split is also parallel):

1. **Tune** e5-small on the English training split (``langalign tune --base e5-small``: task
   mode, the default contrastive loss, token embeddings frozen, ``max_seq_length`` 128),
   early stopping on the English dev split. The tuned folder is kept (``--tuned``) and reused.
2. **Drift**: for the untuned and the tuned encoder, the cosine between English sentences and
   their translations (SIB-200 test, Tatoeba) next to the cosine of random non-translations
   (the gap is what retrieval sees), and Tatoeba top-1 (duplicate-aware, both directions).
3. **Systems** (a logistic-regression head, the library default, trained on English vectors):
   untuned zero-shot / native; tuned zero-shot / native; tuned + realign (pairs of the tuned
   encoder, reverse or forward, 100 / 300 / all 701 training pairs); tuned + self-bridge
   (``LangAlign(tuned, "e5-small").fit_bridge(english_pool)``: the untuned model's vectors of
   the target text mapped into the tuned space, fitted on English text alone).
   Mappers (``--mappers``) and directions are chosen per system on the dev split (mean over
   ko/ja/zh); the best pipeline is chosen on dev too. The test split is scored once, after
   every choice, with McNemar against the untuned zero-shot per language.

Vectors go through the project's embedding cache, so a rerun (e.g. with another mapper) only
re-encodes what is new.

    python bench/tuned_pipeline.py --out results           # writes tuned_pipeline.{md,json}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import langalign as la
from langalign.data import load_english_pool, load_sib200, load_tatoeba
from langalign.data.home import data_home, find_reference_data
from langalign.evaluation import mcnemar, retrieval_scores
from langalign.heads import LogisticRegressionHead
from langalign.mappers import make_mapper
from langalign.scale.cache import CachedEncoder

LANGS = ("ko", "ja", "zh")
SPLITS = ("train", "dev", "test")
PAIR_COUNTS = (100, 300, 701)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sib200(root: Path) -> dict[str, dict[str, tuple[list[str], list[str]]]]:
    """lang -> split -> (texts, labels), rows joined on index_id so row i is one sentence in every language."""
    out: dict[str, dict[str, tuple[list[str], list[str]]]] = {}
    order: dict[str, list[str]] = {}
    for lang in ("en", *LANGS):
        out[lang] = {}
        for split in SPLITS:
            ds = load_sib200(lang, split, root=root / "sib200")
            rows = {i: (t, y) for i, t, y in zip(ds.meta["index_id"], ds.texts, ds.labels, strict=True)}
            if lang == "en":
                order[split] = list(ds.meta["index_id"])
            ids = order[split]
            assert set(rows) == set(ids), f"SIB-200 {lang}/{split} does not share the English index_ids"
            out[lang][split] = ([rows[i][0] for i in ids], [rows[i][1] for i in ids])
    return out


def tune(args: argparse.Namespace, data: dict) -> tuple[Any, dict[str, Any]]:
    folder = Path(args.tuned)
    if (folder / "langalign_tuning.json").is_file():
        log(f"reusing the tuned encoder in {folder}")
        enc = la.load_encoder(str(folder))
        meta = json.loads((folder / "langalign_tuning.json").read_text(encoding="utf-8"))
        return enc, {"reused": True, "folder": str(folder), "metadata": meta}
    tx, ty = data["en"]["train"]
    dx, dy = data["en"]["dev"]
    t0 = time.perf_counter()
    log(f"tuning e5-small on {len(tx)} English sentences ({args.epochs} epochs) -> {folder}")
    enc = la.tune_encoder("e5-small", tx, ty, folder, dev=(dx, dy), epochs=args.epochs, loss=args.loss, lr=args.lr,
                          max_seq_length=args.max_seq_length, num_threads=args.threads, seed=args.seed,
                          show_progress=True)
    meta = json.loads((folder / "langalign_tuning.json").read_text(encoding="utf-8"))
    return enc, {"reused": False, "folder": str(folder), "seconds": round(time.perf_counter() - t0, 1),
                 "metadata": meta}


class Vectors:
    def __init__(self, enc: Any):
        self.enc = CachedEncoder(enc)
        self.seconds = 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        t0 = time.perf_counter()
        V = self.enc.encode(texts, show_progress=True)
        self.seconds += time.perf_counter() - t0
        return np.asarray(V, dtype=np.float32)


def unit(V: np.ndarray) -> np.ndarray:
    return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)


def drift(vec: Vectors, data: dict, root: Path, seed: int, n_tatoeba: int) -> dict[str, Any]:
    """Cosine of translations vs random non-translations; Tatoeba top-1 (duplicate-aware, both directions)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    en = unit(vec(data["en"]["test"][0]))
    for lang in LANGS:
        xx = unit(vec(data[lang]["test"][0]))
        perm = rng.permutation(len(en))
        out[f"sib200:{lang}"] = {"cos_translation": float((en * xx).sum(1).mean()),
                                 "cos_random": float((en * xx[perm]).sum(1).mean())}
    for lang in LANGS:
        pc = load_tatoeba(lang, root / "tatoeba")
        keep = np.sort(np.random.default_rng(seed).permutation(len(pc.source))[:n_tatoeba])
        src, tgt = [pc.source[i] for i in keep], [pc.target[i] for i in keep]
        E, X = unit(vec(src)), unit(vec(tgt))
        perm = rng.permutation(len(E))
        r = retrieval_scores(X, E, query_texts=tgt, candidate_texts=src)
        out[f"tatoeba:{lang}"] = {"cos_translation": float((E * X).sum(1).mean()),
                                  "cos_random": float((E * X[perm]).sum(1).mean()),
                                  "top1": float(r["accuracy"])}
    return out


def choose_on_dev(candidates: dict[str, dict[str, Any]], score: Any
                  ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, str], str]:
    """``(dev, chosen, best)``: every variant's dev row (``score(predictor)``, with a ``"mean"``), the variant with
    the best dev mean per system, and the best ``tuned + ...`` pipeline among the chosen ones."""
    dev = {system: {v: score(pred) for v, pred in variants.items()} for system, variants in candidates.items()}
    chosen = {system: max(rows, key=lambda v, rows=rows: rows[v]["mean"]) for system, rows in dev.items()}
    pipelines = [s for s in candidates if s.startswith("tuned +")]
    return dev, chosen, max(pipelines, key=lambda s: dev[s][chosen[s]]["mean"])


def head() -> LogisticRegressionHead:
    return LogisticRegressionHead()


def acc(pred: np.ndarray, y: list[str]) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--tuned", default=str(data_home() / "bench" / "tuned-e5-small-sib200"),
                    help="the tuned encoder's folder (tuned here when it does not exist yet)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--loss", default="softmax", help="tuning loss (softmax: a quarter of contrastive's cost)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--tatoeba", type=int, default=300, help="seeded Tatoeba pairs per language (of 1,000)")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool", type=int, default=1500, help="English-pool sentences for the self-bridge")
    ap.add_argument("--mappers", default="linear,ridge,mlp,contrastive", help="mappers compared on dev per system")
    ap.add_argument("--bridge-mappers", default="bridge,ridge,contrastive")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dev-only", action="store_true",
                    help="stop after the dev choices (OUT/tuned_pipeline_dev.json): compare tuning settings on dev "
                         "before the test split is read")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: rewrite OUT/tuned_pipeline.md from its JSON")
    args = ap.parse_args(argv)
    if args.render:
        stored = json.loads((Path(args.out) / "tuned_pipeline.json").read_text(encoding="utf-8"))
        (Path(args.out) / "tuned_pipeline.md").write_text(to_markdown(stored), encoding="utf-8")
        return
    t_start = time.perf_counter()
    root = find_reference_data()
    data = sib200(root)
    tuned_enc, tuning = tune(args, data)
    U, T = Vectors(la.load_encoder("e5-small")), Vectors(tuned_enc)

    log("drift: untuned / tuned")
    drift_rows = {"untuned": drift(U, data, root, args.seed, args.tatoeba),
                  "tuned": drift(T, data, root, args.seed, args.tatoeba)}

    # vectors: system -> lang -> split
    V = {name: {lang: {s: vec(data[lang][s][0]) for s in SPLITS} for lang in ("en", *LANGS)}
         for name, vec in (("untuned", U), ("tuned", T))}
    y = {s: data["en"][s][1] for s in SPLITS}  # the same labels in every language
    pool = load_english_pool(max_sentences=args.pool, seed=args.seed)
    log(f"English pool: {len(pool)} sentences")
    P_u, P_t = U(pool), T(pool)

    def mappers(names: str) -> list[str]:
        out = []
        for m in names.split(","):
            try:
                make_mapper(m)
            except ValueError:
                log(f"mapper {m!r} is not available here; skipped")
                continue
            out.append(m)
        return out

    maps, bridge_maps = mappers(args.mappers), mappers(args.bridge_mappers)
    H = {"untuned": head().fit(V["untuned"]["en"]["train"], y["train"]),
         "tuned": head().fit(V["tuned"]["en"]["train"], y["train"])}
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(y["train"]))
    pair_rows = {n: np.sort(order[:n]) for n in PAIR_COUNTS}

    # Each candidate: name -> lang -> callable(split) -> predictions. Fitted once, scored on dev and test.
    def zero_shot(enc: str) -> dict[str, Any]:
        return {lang: (lambda s, lang=lang: H[enc].predict(V[enc][lang][s])) for lang in LANGS}

    def native(enc: str) -> dict[str, Any]:
        out = {}
        for lang in LANGS:
            h = head().fit(V[enc][lang]["train"], y["train"])
            out[lang] = lambda s, h=h, lang=lang: h.predict(V[enc][lang][s])
        return out

    # Retrieval on dev (99 sentences per language): target-language queries against the English side, in the
    # space the system compares them in; top-1, both directions, mean over ko/ja/zh. Keyed like `candidates`.
    retrieval: dict[str, dict[str, float]] = {}

    def top1(Q: dict[str, np.ndarray], C: dict[str, np.ndarray]) -> float:
        return float(np.mean([retrieval_scores(Q[lang], C[lang])["accuracy"] for lang in LANGS]))

    def realign(enc: str, n: int, mapper: str, direction: str, system: str) -> dict[str, Any]:
        out = {}
        rows = pair_rows[n]
        E = V[enc]["en"]["train"]
        Q, C = {}, {}
        for lang in LANGS:
            X = V[enc][lang]["train"]
            if direction == "reverse":
                m = make_mapper(mapper).fit(X[rows], E[rows])
                out[lang] = lambda s, m=m, lang=lang: H[enc].predict(m.transform(V[enc][lang][s]))
                Q[lang], C[lang] = m.transform(V[enc][lang]["dev"]), V[enc]["en"]["dev"]
            else:
                m = make_mapper(mapper).fit(E[rows], X[rows])
                h = head().fit(m.transform(E), y["train"])
                out[lang] = lambda s, h=h, lang=lang: h.predict(V[enc][lang][s])
                Q[lang], C[lang] = V[enc][lang]["dev"], m.transform(V[enc]["en"]["dev"])
        retrieval.setdefault(system, {})[f"{mapper} {direction}"] = top1(Q, C)
        return out

    def self_bridge(mapper: str) -> dict[str, Any]:
        m = make_mapper(mapper).fit(P_u, P_t)  # untuned -> tuned, fitted on English text alone
        retrieval.setdefault("tuned + self-bridge", {})[mapper] = top1(
            {lang: m.transform(V["untuned"][lang]["dev"]) for lang in LANGS},
            {lang: V["tuned"]["en"]["dev"] for lang in LANGS})
        return {lang: (lambda s, lang=lang: H["tuned"].predict(m.transform(V["untuned"][lang][s]))) for lang in LANGS}

    for enc in ("untuned", "tuned"):
        retrieval[f"{enc} zero-shot"] = {"-": top1({lang: V[enc][lang]["dev"] for lang in LANGS},
                                                   {lang: V[enc]["en"]["dev"] for lang in LANGS})}

    candidates: dict[str, dict[str, dict[str, Any]]] = {}  # system -> variant -> predictors
    candidates["untuned zero-shot"] = {"-": zero_shot("untuned")}
    candidates["untuned native"] = {"-": native("untuned")}
    candidates["tuned zero-shot"] = {"-": zero_shot("tuned")}
    candidates["tuned native"] = {"-": native("tuned")}
    for n in PAIR_COUNTS:
        label = "all 701" if n == 701 else str(n)
        log(f"realign, {label} pairs")
        for enc in ("untuned", "tuned"):
            system = f"{enc} + realign ({label} pairs)"
            candidates[system] = {f"{m} {d}": realign(enc, n, m, d, system) for m in maps
                                  for d in ("reverse", "forward")}
    log("self-bridge")
    candidates["tuned + self-bridge"] = {m: self_bridge(m) for m in bridge_maps}

    # -- dev: every variant; choose per system, then the best tuned pipeline ---------------
    def dev_row(pred: dict[str, Any]) -> dict[str, float]:
        row = {lang: acc(pred[lang]("dev"), y["dev"]) for lang in LANGS}
        return {**row, "mean": float(np.mean([row[lang] for lang in LANGS]))}

    dev, chosen, best_pipeline = choose_on_dev(candidates, dev_row)
    log(f"chosen on dev: {best_pipeline} ({chosen[best_pipeline]})")
    if args.dev_only:  # compare tuning settings on dev before any test sentence is scored
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        english_dev = {enc: acc(H[enc].predict(V[enc]["en"]["dev"]), y["dev"]) for enc in ("untuned", "tuned")}
        payload = {"command": "python bench/tuned_pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                   "seconds": round(time.perf_counter() - t_start, 1), "tuning": tuning, "english_dev": english_dev,
                   "dev": dev, "chosen": chosen, "best_pipeline": best_pipeline,
                   "best_dev_mean": dev[best_pipeline][chosen[best_pipeline]]["mean"]}
        (out / "tuned_pipeline_dev.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        log(f"dev only: best pipeline {best_pipeline} ({chosen[best_pipeline]}) dev mean "
            f"{100 * payload['best_dev_mean']:.1f}; wrote {out / 'tuned_pipeline_dev.json'}")
        return

    # -- test, read once ---------------------------------------------------------------
    test: dict[str, dict[str, Any]] = {}
    ref = {lang: candidates["untuned zero-shot"]["-"][lang]("test") for lang in LANGS}
    for system, variants in candidates.items():
        pred = variants[chosen[system]]
        row: dict[str, Any] = {"variant": chosen[system]}
        for lang in LANGS:
            p = pred[lang]("test")
            row[lang] = acc(p, y["test"])
            mc = mcnemar(y["test"], list(p), list(ref[lang]))
            row[f"{lang}_p"] = mc["p_value"]
        row["mean"] = float(np.mean([row[lang] for lang in LANGS]))
        test[system] = row
    english = {enc: {s: acc(H[enc].predict(V[enc]["en"][s]), y[s]) for s in ("dev", "test")}
               for enc in ("untuned", "tuned")}

    meta = {"command": "python bench/tuned_pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": round(time.perf_counter() - t_start, 1), "encode_seconds": round(U.seconds + T.seconds, 1),
            "seed": args.seed, "pool": len(pool), "tatoeba_pairs": args.tatoeba, "mappers": maps,
            "bridge_mappers": bridge_maps,
            "best_pipeline": best_pipeline, "best_variant": chosen[best_pipeline],
            "threads": args.threads, "cpus": os.cpu_count(), "load_at_end": os.getloadavg()[0]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "tuning": tuning, "drift": drift_rows, "english": english, "dev": dev,
               "dev_retrieval": retrieval, "chosen": chosen, "test": test}
    (out / "tuned_pipeline.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    (out / "tuned_pipeline.md").write_text(to_markdown(payload), encoding="utf-8")
    log(f"wrote {out / 'tuned_pipeline.md'} and .json")


def to_markdown(p: dict[str, Any]) -> str:
    meta, tuning = p["meta"], p["tuning"]
    tm = tuning.get("metadata", {})
    ds = tm.get("dev_scores", {})
    shown = ("loss", "epochs", "max_seq_length", "freeze_embeddings", "lr", "batch_size")
    params = json.dumps({k: (tm.get("parameters") or {}).get(k) for k in shown})
    lines = ["# Tune e5-small on English, then align (SIB-200)", "",
             f"`{meta['command']}` ({meta['seconds']:.0f}s, of which encoding {meta['encode_seconds']:.0f}s; "
             f"{meta['cpus']} CPUs shared, load {meta['load_at_end']:.1f} at the end).", "",
             "Tuning: e5-small, task mode on SIB-200 English train (701), English dev for early stopping; "
             f"parameters {params}; "
             f"dev {ds.get('metric', '?')} before {ds.get('before', float('nan')):.4f}, best "
             f"{ds.get('best', float('nan')):.4f} (epoch {ds.get('best_epoch', '?')}).", "",
             "## Drift: English vs translation", "",
             "Mean cosine of each English sentence with its translation (`transl.`) and with a random other "
             "sentence's translation (`random`); `gap` = transl. - random. SIB-200: the 204 test sentences; "
             f"Tatoeba: a seeded {meta['tatoeba_pairs']} of the 1,000 pairs per language, top-1 among those, "
             "target -> English and back, mean, duplicate-aware.", "",
             "| set | untuned transl. | untuned random | untuned gap | tuned transl. | tuned random | tuned gap "
             "| untuned top-1 | tuned top-1 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    du, dt = p["drift"]["untuned"], p["drift"]["tuned"]
    for key in du:
        a, b = du[key], dt[key]
        t1 = (f"{100 * a['top1']:.1f} | {100 * b['top1']:.1f}" if "top1" in a else " | ")
        lines.append(f"| {key} | {a['cos_translation']:.3f} | {a['cos_random']:.3f} | "
                     f"{a['cos_translation'] - a['cos_random']:.3f} | {b['cos_translation']:.3f} | "
                     f"{b['cos_random']:.3f} | {b['cos_translation'] - b['cos_random']:.3f} | {t1} |")
    e = p["english"]
    lines += ["", "## Accuracy (test, read once after the dev choices)", "",
              f"English test accuracy of the English head: untuned {100 * e['untuned']['test']:.1f}, tuned "
              f"{100 * e['tuned']['test']:.1f} (dev {100 * e['untuned']['dev']:.1f} / {100 * e['tuned']['dev']:.1f}).",
              "", f"Best tuned pipeline on dev: **{meta['best_pipeline']}** ({meta['best_variant']}). "
              "`p` = McNemar against the untuned zero-shot on the same test sentences.", "",
              "| system | variant (dev choice) | dev mean | ko | ja | zh | mean ko/ja/zh | p ko / ja / zh |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for system, row in p["test"].items():
        d = p["dev"][system][row["variant"]]["mean"]
        name = f"**{system}**" if system == meta["best_pipeline"] else system
        ps = " / ".join(f"{row[f'{lang}_p']:.3f}" for lang in LANGS)
        lines.append(f"| {name} | {row['variant']} | {100 * d:.1f} | " +
                     " | ".join(f"{100 * row[lang]:.1f}" for lang in LANGS) + f" | {100 * row['mean']:.1f} | {ps} |")
    lines += ["", "## Dev, every variant (x100)", "",
              "Classification accuracy per language and its mean; `retrieval`: dev top-1 (99 sentences per "
              "language, target -> English and back, mean over ko/ja/zh) in the space the system compares in "
              "(reverse: mapped target vs English; forward: target vs mapped English).", "",
              "| system | variant | ko | ja | zh | mean | retrieval |", "|---|---|---:|---:|---:|---:|---:|"]
    for system, variants in p["dev"].items():
        for v, row in variants.items():
            mark = " (chosen)" if p["chosen"][system] == v else ""
            r = p.get("dev_retrieval", {}).get(system, {}).get(v)
            lines.append(f"| {system} | {v}{mark} | " + " | ".join(f"{100 * row[k]:.1f}" for k in (*LANGS, "mean"))
                         + f" | {'' if r is None else f'{100 * r:.1f}'} |")
    lines += ["", "Head: `LogisticRegressionHead()` (the library default) on English vectors; realign maps "
              "fitted on seeded subsets of the SIB-200 training pairs (tuned encoder on both sides); the "
              "self-bridge fitted on English-pool sentences only (untuned e5-small -> tuned). Dev = SIB-200 dev "
              "(99 sentences per language), test = SIB-200 test (204).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
