"""The English-only bridge (minilm <- use-multilingual) chosen on dev splits: pool size x map x query correction.

The bridge is an aligner fitted on English text alone (``LangAlign("minilm",
"use-multilingual").fit(english, english)``); its reverse map takes use-multilingual
vectors of Korean, Japanese or Chinese text into MiniLM's space, where an English
MiniLM classifier or vector index reads them. This script compares, on dev data only:

* maps: ``ridge`` (the two-encoder default before this protocol), the residual
  ``mlp`` (ridge + a network trained on the residual; early stopping on held-out
  pairs) with MSE or cosine loss and a few sizes;
* query-side corrections at retrieval time: plain cosine, CSLS (hubness-aware,
  k=10), ``recentre`` (the mapped queries' mean replaced by the index's mean) and
  ``recentre+csls``; with ``--centre-inputs`` also each map with its inputs
  re-centred (the batch's use-multilingual mean replaced by the English pool's);
* pool sizes (1k .. all): seeded subsets of the English pool.

Dev sets (never a test split; Tatoeba is never read):

* retrieval: STS-B *dev* sentences, row-parallel en / ko (KorSTS) / ja, zh
  (stsb_multi_mt), deduplicated on the English text; SIB-200 train+dev (FLORES,
  800 parallel sentences). Queries: use-multilingual(xx) mapped into MiniLM; index:
  MiniLM(en). ``retention`` = bridged top-1 / top-1 of re-embedding both sides (the
  alternative a user would weigh), like for like: the reference is scored with the same
  method as the bridged row (cosine by cosine, CSLS by CSLS) and is the better of
  use-multilingual and e5-small.
* classification, English MiniLM head (the library default head) applied to bridged
  target text: SIB-200 5-fold CV over train+dev, sentiment (SST-2 train -> JRTE dev,
  ChnSentiCorp dev), NLI (SNLI dev -> KorNLI dev, JNLI valid, XNLI-zh dev).
  Reference: the same head on use-multilingual vectors, zero-shot.

    python bench/english_bridge.py --out results            # writes english_bridge.{md,json}
    python bench/english_bridge.py --rescore results/english_bridge.json --out results
        # recompute the retentions of a stored run like for like (references measured afresh)
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

import head_protocol as hp  # noqa: E402  (the dev loaders: train/dev splits only)

from langalign.data import load_sts  # noqa: E402
from langalign.data.home import find_reference_data  # noqa: E402
from langalign.evaluation import best_reference, classification_report, retrieval_scores  # noqa: E402
from langalign.heads import make_head, pair_features  # noqa: E402
from langalign.mappers import make_mapper  # noqa: E402

LANGS = hp.LANGS
SEED = 0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ pool
def load_pool(args: argparse.Namespace) -> tuple[list[str], str]:
    if args.pool_file:
        texts = [t.strip() for t in Path(args.pool_file).read_text(encoding="utf-8").split("\n") if t.strip()]
        desc = f"{args.pool_file}"
    else:
        from langalign.data import load_english_pool
        texts = load_english_pool()
        desc = "langalign data build english-pool"
    texts = list(dict.fromkeys(texts))
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], f"{desc}: {len(texts):,} sentences"


# ------------------------------------------------------------------ dev sets
def sts_dev_parallel(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """(english, xx) sentence lists from STS-B dev, row-parallel; one row per distinct English sentence."""
    en = load_sts("en", "dev", root=root)
    out = {}
    for lang in LANGS:
        xx = load_sts(lang, "dev", root=root)
        assert len(xx) == len(en), f"STS-B dev {lang} is not row-parallel with English"
        seen: dict[str, str] = {}
        for a, b in ((en.texts, xx.texts), (en.text_pairs, xx.text_pairs)):
            assert a is not None and b is not None
            for e, x in zip(a, b, strict=True):
                seen.setdefault(e, x)
        out[lang] = (list(seen), list(seen.values()))
    return out


def sib_train_dev(root: Path) -> tuple[list[str], dict[str, dict[str, tuple[str, str]]]]:
    """SIB-200 train+dev joined on ``index_id``: sorted ids and, per language, id -> (text, label)."""
    from langalign.data import load_sib200
    sets = {lang: [hp.load_split(load_sib200, lang, sp, root=root / "sib200") for sp in hp.ALLOWED_SPLITS]
            for lang in ("en", *LANGS)}
    by = {lang: {i: (t, lab) for ds in parts for i, t, lab in zip(ds.meta["index_id"], ds.texts, ds.labels,
                                                                   strict=True)}
          for lang, parts in sets.items()}
    return sorted(by["en"]), by


def sib_folds(n: int) -> np.ndarray:
    """Each row's fold of the SIB-200 cross-validation (seeded)."""
    fold = np.empty(n, dtype=int)
    fold[np.random.default_rng(SEED).permutation(n)] = np.arange(n) % hp.SIB_FOLDS
    return fold


def sib_parallel(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    ids, by = sib_train_dev(root)
    return {lang: ([by["en"][i][0] for i in ids], [by[lang][i][0] for i in ids]) for lang in LANGS}


class InputCentred:
    """A fitted map whose inputs are first re-centred: each batch's mean replaced by the pool's.

    use-multilingual puts each language around its own mean; the bridge was fitted on
    English vectors only, so Korean input arrives shifted. Replacing the batch mean (an
    unlabelled sample of the target-language inputs) by the English pool's mean removes
    that offset before the map is applied.
    """

    def __init__(self, mapper: Any, pool_mean: np.ndarray):
        self.mapper, self.pool_mean = mapper, pool_mean

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.mapper.transform(X - X.mean(0) + self.pool_mean)


def _norm(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


REFERENCES = ("use-multilingual", "e5-small")


def _method(correction: str) -> str:
    """The scoring method a query correction ends in (``recentre`` is cosine, ``recentre+csls`` CSLS)."""
    return "csls" if correction.endswith("csls") else "cosine"


def reference_scores(en: list[str], xx: list[str], refs: dict[str, hp.Vectors]) -> dict[str, dict[str, float]]:
    """Top-1 of re-embedding both sides with each reference encoder, scored with cosine and with CSLS."""
    kw = {"query_texts": xx, "candidate_texts": en, "both_directions": False}
    return {name: {m: retrieval_scores(vec(xx), vec(en), method=m, **kw)["accuracy"] for m in ("cosine", "csls")}
            for name, vec in refs.items()}


def retained(acc: float, correction: str, ref: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Like for like: ``acc`` over the best reference scored with the same method as ``correction``."""
    name, top1 = best_reference(ref, _method(correction))
    return {"retention": acc / top1 if top1 else float("nan"), "reference": name, "reference_top1": top1}


def reference_rows(ref: dict[str, dict[str, float]], **fields: Any) -> list[dict[str, Any]]:
    return [{**fields, "map": f"re-embed ({name} both sides)", "correction": m, "top1": top1}
            for name, by in ref.items() for m, top1 in by.items()]


def retrieval_eval(name: str, par: dict[str, tuple[list[str], list[str]]], mini: hp.Vectors,
                   refs: dict[str, hp.Vectors], maps: dict[str, Any], corrections: list[str]) -> list[dict[str, Any]]:
    rows = []
    use = refs["use-multilingual"]
    for lang, (en, xx) in par.items():
        C = mini(en)
        Qu = use(xx)
        ref = reference_scores(en, xx, refs)
        rows += reference_rows(ref, set=name, lang=lang, n=len(en))
        for mname, m in maps.items():
            Q = m.transform(Qu)
            for corr in corrections:
                Qc = Q
                if corr.startswith("recentre"):
                    Qn = _norm(Q)
                    Qc = Qn - Qn.mean(0) + _norm(C).mean(0)
                acc = retrieval_scores(Qc, C, query_texts=xx, candidate_texts=en, method=_method(corr),
                                       both_directions=False)["accuracy"]
                rows.append({"set": name, "lang": lang, "map": mname, "correction": corr, "top1": acc,
                             **retained(acc, corr, ref), "n": len(en)})
    return rows


def rescore(path: Path, root: Path, refs: dict[str, hp.Vectors], dev_refs: list[str]) -> dict[str, Any]:
    """Recompute every retention of a stored run like for like (the bridged top-1s are kept as measured;
    only the references are measured here: both encoders, both scoring methods). Used once, to correct
    results that divided CSLS top-1s by a cosine reference, without refitting the maps."""
    from langalign.data import load_tatoeba

    res = json.loads(path.read_text(encoding="utf-8"))
    par = {"sts-dev": sts_dev_parallel(root), "sib200-train+dev": sib_parallel(root)}
    on_dev = {k: v for k, v in refs.items() if k in dev_refs}
    refs_by = {(s, lang): reference_scores(en, xx, on_dev) for s, p in par.items() for lang, (en, xx) in p.items()}
    rows = []
    for r in res["retrieval"]:
        if r["map"].startswith("re-embed"):
            continue
        rows.append({**r, **retained(r["top1"], r["correction"], refs_by[(r["set"], r["lang"])])})
    for (s, lang), ref in refs_by.items():
        rows += reference_rows(ref, set=s, lang=lang, pool=None)
    res["retrieval"] = rows
    if "test" in res:
        test_rows = []
        for lang in LANGS:
            pc = load_tatoeba(lang, root / "tatoeba")
            ref = reference_scores(list(pc.source), list(pc.target), refs)
            test_rows += reference_rows(ref, lang=lang)
            test_rows += [{**r, **retained(r["top1"], r["correction"], ref)} for r in res["test"]["retrieval"]
                          if r["lang"] == lang and not r["map"].startswith("re-embed")]
        res["test"]["retrieval"] = test_rows
    res["rescored"] = {"command": "python bench/english_bridge.py " + " ".join(sys.argv[1:]),
                       "what": "retentions recomputed like for like (cosine by cosine, CSLS by CSLS; reference = "
                               "the better of re-embedding with " + " and with ".join(refs) + " on the test "
                               "splits, with " + " and with ".join(on_dev) + " on the dev sets); bridged "
                               "top-1s as measured by the original command"}
    return res


def classification_eval(root: Path, mini: hp.Vectors, use: hp.Vectors, maps: dict[str, Any]
                        ) -> list[dict[str, Any]]:
    """English MiniLM head on bridged target text vs the use-multilingual head zero-shot."""
    rows: list[dict[str, Any]] = []

    def run(task: str, metric: str, Xm: np.ndarray, Xu: np.ndarray, y: list, evals: dict[str, tuple]) -> None:
        head_m = make_head("logreg").fit(Xm, y)
        head_u = make_head("logreg").fit(Xu, y)
        for col, (en_m, xx_u, yy, _pair) in evals.items():
            def score(pred: Any, yy: list = yy) -> float:
                return float(classification_report(list(yy), list(pred))[metric])
            if col == "en":
                rows.append({"task": task, "lang": col, "map": "minilm (English, own encoder)",
                             "score": score(head_m.predict(en_m)), "n": len(yy)})
                continue
            rows.append({"task": task, "lang": col, "map": "use-multilingual zero-shot",
                         "score": score(head_u.predict(xx_u(None))), "n": len(yy)})
            for mname, m in maps.items():
                rows.append({"task": task, "lang": col, "map": mname,
                             "score": score(head_m.predict(xx_u(m.transform))), "n": len(yy)})

    # SIB-200: 5-fold CV over train+dev (800 sentences, parallel)
    ids, by = sib_train_dev(root)
    labels = [by["en"][i][1] for i in ids]
    Vm = mini([by["en"][i][0] for i in ids])
    Vu = {lang: use([by[lang][i][0] for i in ids]) for lang in ("en", *LANGS)}
    fold = sib_folds(len(ids))
    sib_rows_before = len(rows)
    for k in range(hp.SIB_FOLDS):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        ev: dict[str, tuple] = {"en": (Vm[te], None, [labels[i] for i in te], False)}
        for lang in LANGS:
            V = Vu[lang][te]
            ev[lang] = (None, (lambda f, V=V: V if f is None else f(V)), [labels[i] for i in te], False)
        run("sib200", "accuracy", Vm[tr], Vu["en"][tr], [labels[i] for i in tr], ev)
    _pool_folds(rows, sib_rows_before)

    # sentiment: SST-2 train -> ja/zh dev
    from langalign.data import load_sentiment
    tr_s = hp.load_split(load_sentiment, "en", "train", root=root).sample(hp.SST2_TRAIN, SEED)
    ev = {}
    en_dev = hp.load_split(load_sentiment, "en", "dev", root=root).sample(hp.SST2_DEV, SEED)
    ev["en"] = (mini(list(en_dev.texts)), None, list(en_dev.labels), False)
    for lang in ("ja", "zh"):
        ds = hp.load_split(load_sentiment, lang, "dev", root=root)
        V = use(list(ds.texts))
        ev[lang] = (None, (lambda f, V=V: V if f is None else f(V)), list(ds.labels), False)
    run("sentiment", "accuracy", mini(list(tr_s.texts)), use(list(tr_s.texts)), list(tr_s.labels), ev)

    # NLI: SNLI dev -> KorNLI dev, JNLI valid, XNLI-zh dev
    from langalign.data import load_nli
    a, b, y = hp.snli_dev(root)
    idx = hp.seeded(len(a), hp.SNLI_TRAIN, SEED)
    A, B = [a[i] for i in idx], [b[i] for i in idx]
    ev = {}
    en_nli = hp.load_split(load_nli, "en", "dev", root=root).sample(hp.NLI_DEV, SEED)
    ev["en"] = (pair_features(mini(list(en_nli.texts)), mini(list(en_nli.text_pairs))), None,
                list(en_nli.labels), True)
    for lang in LANGS:
        ds = hp.load_split(load_nli, lang, "dev", root=root).sample(hp.NLI_DEV, SEED)
        U, W = use(list(ds.texts)), use(list(ds.text_pairs))
        ev[lang] = (None, (lambda f, U=U, W=W: pair_features(U, W) if f is None else pair_features(f(U), f(W))),
                    list(ds.labels), True)
    run("nli", "macro_f1", pair_features(mini(A), mini(B)), pair_features(use(A), use(B)), [y[i] for i in idx], ev)
    return rows


def _pool_folds(rows: list[dict[str, Any]], start: int) -> None:
    """Average the SIB-200 fold rows (same task, lang, map) into one row, weighted by fold size."""
    fold_rows = rows[start:]
    del rows[start:]
    acc: dict[tuple, list] = {}
    for r in fold_rows:
        acc.setdefault((r["task"], r["lang"], r["map"]), []).append(r)
    for (task, lang, m), rs in acc.items():
        n = sum(r["n"] for r in rs)
        rows.append({"task": task, "lang": lang, "map": m, "score": sum(r["score"] * r["n"] for r in rs) / n, "n": n})


# ------------------------------------------------------------------ maps
MAPS: dict[str, tuple[str, dict[str, Any]]] = {
    "ridge": ("ridge", {}),
    "linear": ("linear", {}),
    "mlp-2x1024": ("mlp", {"hidden_dim": 1024, "n_layers": 2, "epochs": 40, "patience": 4, "batch_size": 256,
                           "device": "cpu"}),
    "mlp-3x2048": ("mlp", {"hidden_dim": 2048, "n_layers": 3, "epochs": 40, "patience": 4, "batch_size": 256,
                           "device": "cpu"}),
    "mlp-2x1024-cos": ("mlp", {"hidden_dim": 1024, "n_layers": 2, "epochs": 40, "patience": 4, "batch_size": 256,
                               "loss": "cosine", "device": "cpu"}),
}


def fit_maps(names: list[str], Xu: np.ndarray, Ym: np.ndarray) -> tuple[dict[str, Any], dict[str, float]]:
    maps, secs = {}, {}
    for name in names:
        kind, params = MAPS[name]
        t0 = time.perf_counter()
        maps[name] = make_mapper(kind, **({"seed": SEED, **params} if kind == "mlp" else params)).fit(Xu, Ym)
        secs[name] = time.perf_counter() - t0
        log(f"  fitted {name} on {len(Xu):,} pairs in {secs[name]:.0f}s")
    return maps, secs


def pairs_stage(root: Path, mini: hp.Vectors, use: hp.Vectors, Pu: np.ndarray, Pm: np.ndarray,
                shares: list[float], n_pairs: int) -> list[dict[str, Any]]:
    """Pool + in-domain pairs, weighted (LangAlign.fit_bridge): SIB-200 5-fold CV, pairs from the training folds.

    The ridge map's sufficient statistics of the pool are accumulated once; each
    (fold, language, share) adds its pairs ``k`` times, as ``fit_bridge`` does.
    Scored on the held-out fold (SIB-200, in the pairs' domain) and on STS-B dev
    retrieval (out of their domain: the pairs must not cost there).
    """
    import copy

    from langalign.mappers import LinearMapper, accumulate

    base = make_mapper("ridge")
    assert isinstance(base, LinearMapper)
    stats = accumulate([(Pu, Pm)], Pu.shape[1], Pm.shape[1], base._n_folds(len(Pu)))
    ids, by = sib_train_dev(root)
    labels = [by["en"][i][1] for i in ids]
    Vm = mini([by["en"][i][0] for i in ids])
    Vu = {lang: use([by[lang][i][0] for i in ids]) for lang in LANGS}
    fold = sib_folds(len(ids))
    sts = sts_dev_parallel(root)
    rows: list[dict[str, Any]] = []
    correct: dict[tuple, list[int]] = {}
    retr: dict[tuple, list[float]] = {}
    for k in range(hp.SIB_FOLDS):
        tr, te = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        pick = np.sort(np.random.default_rng(SEED + k).permutation(tr)[:n_pairs])
        head = make_head("logreg").fit(Vm[tr], [labels[i] for i in tr])
        for lang in LANGS:
            for share in shares:
                s = copy.deepcopy(stats)
                # the rule of bridge_pair_weight("auto"), for each candidate share
                w = 0 if share == 0 else max(1, int(round(share * len(Pu) / ((1 - share) * len(pick)))))
                if w:
                    s.update(np.repeat(Vu[lang][pick], w, axis=0), np.repeat(Vm[pick], w, axis=0))
                m = make_mapper("ridge").fit_stats(s)
                pred = head.predict(m.transform(Vu[lang][te]))
                correct.setdefault((lang, share), []).extend(
                    int(p == labels[i]) for p, i in zip(pred, te, strict=True))
                if k == 0:
                    en, xx = sts[lang]
                    acc = retrieval_scores(m.transform(use(xx)), mini(en), query_texts=xx, candidate_texts=en,
                                           method="csls", both_directions=False)["accuracy"]
                    retr[(lang, share)] = [acc, w]
    for (lang, share), c in correct.items():
        rows.append({"lang": lang, "share": share, "pair_weight_fold0": retr[(lang, share)][1],
                     "sib200_accuracy": float(np.mean(c)), "sts_dev_csls_top1": retr[(lang, share)][0]})
    return rows


def test_stage(root: Path, mini: hp.Vectors, use: hp.Vectors, maps: dict[str, Any]) -> dict[str, Any]:
    """Measured once, after the choice on dev: test splits (never used to choose anything above).

    Tatoeba retention (bridged ko/ja/zh queries into a MiniLM index of the English side
    vs re-embedding both sides with use-multilingual) and classification test sets with
    the English MiniLM head through the bridge vs the use-multilingual head zero-shot,
    heads trained on the dev protocol's English training sets.
    """
    from langalign.data import load_nli, load_sentiment, load_sib200, load_tatoeba
    from langalign.evaluation import mcnemar

    out: dict[str, Any] = {"retrieval": [], "classification": []}
    refs = {"use-multilingual": use, "e5-small": hp.Vectors("e5-small")}
    for lang in LANGS:
        pc = load_tatoeba(lang, root / "tatoeba")
        en, xx = list(pc.source), list(pc.target)
        kw = {"query_texts": xx, "candidate_texts": en, "both_directions": False}
        ref = reference_scores(en, xx, refs)
        out["retrieval"] += reference_rows(ref, lang=lang)
        for mname, m in maps.items():
            for corr in ("cosine", "csls"):
                acc = retrieval_scores(m.transform(use(xx)), mini(en), method=corr, **kw)["accuracy"]
                out["retrieval"].append({"lang": lang, "map": mname, "correction": corr, "top1": acc,
                                         **retained(acc, corr, ref)})

    def classify(task: str, metric: str, Xm: np.ndarray, Xu: np.ndarray, y: list, tests: dict[str, tuple]) -> None:
        hm, hu = make_head("logreg").fit(Xm, y), make_head("logreg").fit(Xu, y)
        for lang, (feats, yy) in tests.items():
            if lang == "en":
                pred = hm.predict(feats(None, mini))
                out["classification"].append({"task": task, "lang": "en", "map": "minilm (English, own encoder)",
                                              "score": classification_report(yy, list(pred))[metric]})
                continue
            zs = hu.predict(feats(None, use))
            out["classification"].append({"task": task, "lang": lang, "map": "use-multilingual zero-shot",
                                          "score": classification_report(yy, list(zs))[metric], "n": len(yy)})
            for mname, m in maps.items():
                pred = hm.predict(feats(m.transform, use))
                mc = mcnemar(yy, list(zs), list(pred))
                out["classification"].append({"task": task, "lang": lang, "map": mname, "n": len(yy),
                                              "score": classification_report(yy, list(pred))[metric],
                                              "mcnemar_p_vs_zero_shot": mc["p_value"]})

    def single(texts: list[str]) -> Any:
        return lambda f, vec: vec(texts) if f is None else f(vec(texts))

    def paired(a: list[str], b: list[str]) -> Any:
        return lambda f, vec: (pair_features(vec(a), vec(b)) if f is None else pair_features(f(vec(a)), f(vec(b))))

    tr = load_sib200("en", "train", root=root / "sib200")
    tests = {lang: (single(list(ds.texts)), list(ds.labels))
             for lang, ds in ((lang, load_sib200(lang, "test", root=root / "sib200")) for lang in ("en", *LANGS))}
    classify("sib200", "accuracy", mini(list(tr.texts)), use(list(tr.texts)), list(tr.labels), tests)
    st = hp.load_split(load_sentiment, "en", "train", root=root).sample(hp.SST2_TRAIN, SEED)
    tests = {}
    for lang in ("en", *LANGS):
        ds = load_sentiment(lang, "test", root=root)
        if lang == "ko":
            ds = ds.sample(2000, SEED)
        tests[lang] = (single(list(ds.texts)), list(ds.labels))
    classify("sentiment", "accuracy", mini(list(st.texts)), use(list(st.texts)), list(st.labels), tests)
    a, b, y = hp.snli_dev(root)
    idx = hp.seeded(len(a), hp.SNLI_TRAIN, SEED)
    A, B = [a[i] for i in idx], [b[i] for i in idx]
    tests = {}
    for lang in LANGS:
        ds = load_nli(lang, "test", root=root).sample(1500, SEED)
        tests[lang] = (paired(list(ds.texts), list(ds.text_pairs)), list(ds.labels))
    classify("nli", "macro_f1", pair_features(mini(A), mini(B)), pair_features(use(A), use(B)), [y[i] for i in idx],
             tests)
    return out


def render_test(t: dict[str, Any]) -> list[str]:
    lines = ["", "## Test splits, measured once after the choice (nothing above was chosen on them)", "",
             "Tatoeba top-1 (1,000 pairs per language; duplicate-aware), bridged ko/ja/zh queries into a MiniLM "
             "index of the English side; retention (in brackets) = / re-embedding both sides scored the same way, "
             "the better of use-multilingual and e5-small:", "",
             "| map | correction | ko | ja | zh | mean retention |", "|---|---|---:|---:|---:|---:|"]
    tab: dict[tuple, dict[str, dict]] = {}
    for r in t["retrieval"]:
        tab.setdefault((r["map"], r["correction"]), {})[r["lang"]] = r
    for (m, c), by in tab.items():
        cells = [f"{by[lang]['top1']:.3f}" + (f" ({by[lang]['retention']:.2f})" if "retention" in by[lang] else "")
                 for lang in LANGS]
        ret = [by[lang]["retention"] for lang in LANGS if "retention" in by[lang]]
        lines.append(f"| {m} | {c} | " + " | ".join(cells) + f" | {np.mean(ret):.3f} |" if ret else
                     f"| {m} | {c} | " + " | ".join(cells) + " | |")
    lines += ["", "Classification test sets (x100; NLI macro-F1; `*` McNemar p < 0.05 vs the zero-shot; sentiment "
              "ko = a seeded 2,000 of NSMC, NLI = a seeded 1,500 per test set):", "",
              "| task | map | en | ko | ja | zh | mean ko/ja/zh |", "|---|---|---:|---:|---:|---:|---:|"]
    ctab: dict[tuple, dict[str, dict]] = {}
    for r in t["classification"]:
        ctab.setdefault((r["task"], r["map"]), {})[r["lang"]] = r
    for (task, m), by in ctab.items():
        cells = []
        for lang in ("en", *LANGS):
            r = by.get(lang)
            star = "*" if r and r.get("mcnemar_p_vs_zero_shot", 1.0) < 0.05 else ""
            cells.append(f"{100 * r['score']:.1f}{star}" if r else "")
        xs = [by[lang]["score"] for lang in LANGS if lang in by]
        lines.append(f"| {task} | {m} | " + " | ".join(cells) + (f" | {100 * np.mean(xs):.1f} |" if xs else " | |"))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool-file", help="one English sentence per line (default: the built english-pool)")
    ap.add_argument("--sizes", default="1000,5000,20000,all", help="pool sizes (seeded prefixes of the shuffled pool)")
    ap.add_argument("--maps", default="ridge,mlp-2x1024", help=f"maps to compare: {', '.join(MAPS)}")
    ap.add_argument("--maps-at", default="all", help="pool size at which every map is compared (others: ridge only)")
    ap.add_argument("--corrections", default="cosine,csls,recentre")
    ap.add_argument("--centre-inputs", action="store_true",
                    help="also score each map with its inputs re-centred (batch mean -> pool mean)")
    ap.add_argument("--pair-shares", default="0,0.05,0.1,0.2,0.4",
                    help="pairs stage: share of the fit the in-domain pairs make up (0 = pool only); '' skips it")
    ap.add_argument("--n-pairs", type=int, default=300, help="pairs stage: in-domain SIB-200 pairs per fold")
    ap.add_argument("--test", action="store_true",
                    help="after the dev stages, measure the maps of the largest pool once on the test splits")
    ap.add_argument("--rescore", metavar="JSON", help="only recompute the retentions of a stored run like for like "
                                                      "(measures the references; keeps its bridged top-1s)")
    ap.add_argument("--dev-references", default="use-multilingual,e5-small",
                    help="--rescore: the re-embedding references measured on the dev sets (the test splits always "
                         "get both)")
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)
    root = find_reference_data()
    if args.rescore:
        results = rescore(Path(args.rescore), root, {"use-multilingual": hp.Vectors("use-multilingual"),
                                                     "e5-small": hp.Vectors("e5-small")},
                          args.dev_references.split(","))
        write_outputs(results, Path(args.out))
        return 0
    pool, pool_desc = load_pool(args)
    log(pool_desc)
    mini, use = hp.Vectors("minilm"), hp.Vectors("use-multilingual")
    refs = {"use-multilingual": use, "e5-small": hp.Vectors("e5-small")}
    sizes = [len(pool) if s == "all" else min(int(s), len(pool)) for s in args.sizes.split(",")]
    at = len(pool) if args.maps_at == "all" else min(int(args.maps_at), len(pool))
    if at not in sizes:
        sizes.append(at)
    sizes = sorted(set(sizes))
    t0 = time.perf_counter()
    Pm, Pu = mini(pool[:max(sizes)]), use(pool[:max(sizes)])
    enc_s = time.perf_counter() - t0
    log(f"pool encoded in {enc_s:.0f}s")
    par = {"sts-dev": sts_dev_parallel(root), "sib200-train+dev": sib_parallel(root)}
    corrections = args.corrections.split(",")
    results: dict[str, Any] = {"command": "python bench/english_bridge.py " + " ".join(argv or sys.argv[1:]),
                               "pool": pool_desc, "sizes": sizes, "retrieval": [], "classification": [],
                               "fit_seconds": {}}
    at_maps: dict[str, Any] = {}
    for n in sizes:
        names = args.maps.split(",") if n == at else ["ridge"]
        log(f"[pool {n:,}] maps {names}")
        maps, secs = fit_maps(names, Pu[:n], Pm[:n])
        results["fit_seconds"][str(n)] = secs
        if args.centre_inputs:
            mu = Pu[:n].mean(0)
            maps.update({f"{k}+centre": InputCentred(m, mu) for k, m in list(maps.items())})
        for set_name, p in par.items():
            for r in retrieval_eval(set_name, p, mini, refs, maps, corrections):
                results["retrieval"].append({**r, "pool": n})
                log(f"    {set_name} {r['lang']} {r['map']} {r['correction']}: retention {r['retention']:.3f}")
        if n == at:
            for r in classification_eval(root, mini, use, maps):
                results["classification"].append({**r, "pool": n})
            at_maps = maps
    if args.pair_shares:
        log(f"[pairs stage] pool {at:,} + {args.n_pairs} SIB-200 pairs, shares {args.pair_shares}")
        results["pairs"] = pairs_stage(root, mini, use, Pu[:at], Pm[:at],
                                       [float(x) for x in args.pair_shares.split(",")], args.n_pairs)
        results["pairs_setup"] = {"pool": at, "n_pairs": args.n_pairs, "map": "ridge"}
    if args.test:
        log("[test stage]")
        results["test"] = test_stage(root, mini, use, at_maps)
    write_outputs(results, Path(args.out))
    return 0


def write_outputs(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "english_bridge.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (out / "english_bridge.md").write_text(render(results), encoding="utf-8")
    plot(results, out / "english_bridge_pool.png")
    print(render(results))


def plot(res: dict[str, Any], path: Path) -> None:
    """Retrieval retention against pool size: ridge lines per dev set and correction; other maps as stars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    for set_name, style in (("sts-dev", "-"), ("sib200-train+dev", "--")):
        for corr, colour in (("cosine", "C0"), ("csls", "C1"), ("recentre", "C2")):
            for m in sorted({r["map"] for r in res["retrieval"] if "retention" in r}):
                by: dict[int, list[float]] = {}
                for r in res["retrieval"]:
                    if r["map"] == m and r["set"] == set_name and r["correction"] == corr:
                        by.setdefault(r["pool"], []).append(r["retention"])
                if not by:
                    continue
                xs = sorted(by)
                ys = [float(np.mean(by[n])) for n in xs]
                if m == "ridge":
                    ax.plot(xs, ys, style, color=colour, marker="o", label=f"ridge, {set_name}, {corr}")
                else:
                    ax.plot(xs, ys, linestyle="none", color=colour, marker="*", markersize=12,
                            markerfacecolor="none" if set_name != "sts-dev" else colour,
                            label=f"{m}, {set_name}, {corr}")
    ax.set_xscale("log")
    ax.set_xlabel("English pool sentences (bridge minilm <- use-multilingual)")
    ax.set_ylabel("retention (top-1 / best re-embedding, same scoring)", fontsize=8)
    ax.set_title("Dev retrieval through the English-only bridge", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(res: dict[str, Any]) -> str:
    lines = ["# English-only bridge on dev splits: pool size x map x query correction", "",
             f"Command: `{res.get('command', 'python bench/english_bridge.py')}` (seed {SEED}). "
             f"Pool: {res['pool']}.", ""]
    if res.get("rescored"):
        lines += [f"Retentions recomputed like for like with `{res['rescored']['command']}`: "
                  f"{res['rescored']['what']}.", ""]
    lines += ["## Retrieval retention (bridged top-1 / re-embedding top-1), mean over ko/ja/zh", "",
              "Like for like: each row divides by re-embedding both sides scored the same way (cosine and "
              "`recentre` by cosine, `csls` and `recentre+csls` by CSLS), the better of use-multilingual and "
              "e5-small per language. References (top-1, mean ko/ja/zh):", ""]
    refrows: dict[tuple, dict[str, list[float]]] = {}
    for r in res["retrieval"]:
        if r["map"].startswith("re-embed"):
            refrows.setdefault((r["map"], r["correction"]), {}).setdefault(r["set"], []).append(r["top1"])
    lines += ["| reference | scoring | sts-dev | sib200-train+dev |", "|---|---|---:|---:|"]
    for (m, c), by in refrows.items():
        lines.append(f"| {m} | {c} | " + " | ".join(f"{np.mean(by[s]):.3f}" if s in by else ""
                                                    for s in ("sts-dev", "sib200-train+dev")) + " |")
    lines += ["", "| pool | map | correction | sts-dev | sib200-train+dev |", "|---:|---|---|---:|---:|"]
    keys: dict[tuple, dict[str, list[float]]] = {}
    for r in res["retrieval"]:
        if "retention" not in r:
            continue
        keys.setdefault((r["pool"], r["map"], r["correction"]), {}).setdefault(r["set"], []).append(r["retention"])
    for (n, m, c), by in keys.items():
        cells = [f"{np.mean(by[s]):.3f}" if s in by else "" for s in ("sts-dev", "sib200-train+dev")]
        lines.append(f"| {n:,} | {m} | {c} | " + " | ".join(cells) + " |")
    lines += ["", "## Classification through the bridge (x100; NLI macro-F1), at the largest pool", "",
              "| task | map | en | ko | ja | zh | mean ko/ja/zh |", "|---|---|---:|---:|---:|---:|---:|"]
    tab: dict[tuple, dict[str, float]] = {}
    for r in res["classification"]:
        tab.setdefault((r["task"], r["map"]), {})[r["lang"]] = r["score"]
    for (task, m), by in tab.items():
        xs = [by[lang] for lang in LANGS if lang in by]
        cells = [f"{100 * by[lang]:.1f}" if lang in by else "" for lang in ("en", *LANGS)]
        lines.append(f"| {task} | {m} | " + " | ".join(cells) + f" | {100 * np.mean(xs):.1f} |" if xs else
                     f"| {task} | {m} | " + " | ".join(cells) + " | |")
    if res.get("pairs"):
        ps = res["pairs_setup"]
        lines += ["", f"## Pool ({ps['pool']:,}) + {ps['n_pairs']} in-domain SIB-200 pairs, weighted ({ps['map']}; "
                  "5-fold CV, pairs from the training folds)", "",
                  "| lang | pairs' share of the fit | copies per pair | SIB-200 accuracy | STS-B dev top-1 (CSLS) |",
                  "|---|---:|---:|---:|---:|"]
        for r in res["pairs"]:
            lines.append(f"| {r['lang']} | {r['share']:g} | {r['pair_weight_fold0']} | "
                         f"{100 * r['sib200_accuracy']:.1f} | {r['sts_dev_csls_top1']:.3f} |")
    if res.get("test"):
        lines += render_test(res["test"])
    lines += ["", "Fit seconds: " + json.dumps(res["fit_seconds"]), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
