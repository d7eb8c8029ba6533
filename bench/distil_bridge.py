"""Frozen-map bridge vs distilled bridge (issue 24): which way should an English MiniLM system read ko/ja/zh?

Rows (every one ends in MiniLM's space, read by an English MiniLM index or head):

* ``bridge ridge`` / ``bridge mlp``: the English-only bridge, a map use-multilingual -> MiniLM fitted on
  the first ``--pool`` sentences of the benchmark's seeded english-pool sample (the demo's bridge at 20k;
  ``mlp`` is ``mapper="bridge"``, the residual MLP ``fit_bridge`` uses);
* ``e5-small + ridge``: the same kind of map from e5-small's vectors, fitted on ``--residual-pool`` held-out
  pool sentences (the sample's sentences 40,000+, never seen by a student);
* each ``--students`` folder (``langalign tune --mode distil --base e5-small --teacher minilm ...``), as is
  and ``+ ridge``: a residual ridge map student(en) -> MiniLM(en) on the same held-out sentences.

References (what a user would do instead): re-embed both sides with use-multilingual, and with e5-small.
Retention is like for like (``langalign.evaluation.like_for_like_retention``): cosine by cosine, CSLS by
CSLS, over the better reference.

Stages: ``dev`` (SIB-200 train+dev, 800 FLORES sentences per language: retrieval into an English index of
the same 800, and a MiniLM head by 5-fold CV: trained on English folds, read target-language held-out folds)
chooses; ``test`` (Tatoeba 1,000 pairs per language; SIB-200 test with a head trained on English train) is
measured once after, and appended to the same files; ``ood`` (other queries: a seeded 1,000 XNLI dev sentence
pairs for ko and zh, news, fiction and government text) is read once after too.

    python bench/distil_bridge.py --students tuned/distil-4k --stage dev --out results
    python bench/distil_bridge.py --students tuned/distil-4k --stage test --out results
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

from langalign import LangAlign  # noqa: E402
from langalign.averaged_encoder import average_unit_vectors  # noqa: E402
from langalign.benchmark.tasks import BRIDGE_POOL_CORPUS, sts_parallel  # noqa: E402
from langalign.data import load_english_pool, load_sib200, load_tatoeba, load_xnli_dev_parallel  # noqa: E402
from langalign.data.home import find_reference_data  # noqa: E402
from langalign.evaluation import like_for_like_retention, retrieval_scores  # noqa: E402
from langalign.heads import make_head  # noqa: E402
from langalign.mappers import make_mapper  # noqa: E402

LANGS = ("ko", "ja", "zh")
OOD_LANGS = ("ko", "zh")  # XNLI dev has no Japanese translation
METHODS = ("cosine", "csls")
HELD_OUT_START = 40_000  # residual maps are fitted on pool sentences from here on (no student saw them)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Bridge:
    """Target-language texts -> vectors in MiniLM's space."""

    def __init__(self, name: str, vec: hp.Vectors, mapper: Any = None):
        self.name, self.vec, self.mapper = name, vec, mapper

    def __call__(self, texts: list[str]) -> np.ndarray:
        V = self.vec(texts)
        return V if self.mapper is None else np.asarray(self.mapper.transform(V), np.float32)


class AveragedBridge(Bridge):
    """Bridges averaged as ``la.AveragedEncoder`` averages its routes (its own function, on cached vectors)."""

    def __init__(self, name: str, *routes: Bridge):
        super().__init__(name, routes[0].vec)
        self.routes = routes

    def __call__(self, texts: list[str]) -> np.ndarray:
        return average_unit_vectors([r(texts) for r in self.routes])


def build(args: argparse.Namespace) -> tuple[dict[str, Bridge], dict[str, hp.Vectors], hp.Vectors]:
    mini, use, e5 = hp.Vectors("minilm"), hp.Vectors("use-multilingual"), hp.Vectors("e5-small")
    sample = load_english_pool(max_sentences=BRIDGE_POOL_CORPUS, seed=0)
    pool, held = sample[:args.pool], sample[HELD_OUT_START:HELD_OUT_START + args.residual_pool]
    log(f"pool {len(pool):,}, held-out residual pool {len(held):,}")
    bridges: dict[str, Bridge] = {}
    Pm, Pu = mini(pool), use(pool)
    for mapper in ("ridge", "bridge"):
        t0 = time.perf_counter()
        al = LangAlign("minilm", "use-multilingual", mapper=mapper, held_out=0.0, seed=0).fit_embeddings(Pm, Pu)
        log(f"  map {mapper}: {time.perf_counter() - t0:.0f}s")
        label = "ridge" if mapper == "ridge" else "mlp (fit_bridge default)"
        bridges[f"bridge {label}, use-multilingual, pool {len(pool):,}"] = Bridge("", use, _ToSource(al))
    Hm = mini(held)
    bridges[f"e5-small + ridge, pool {len(held):,}"] = Bridge("", e5, make_mapper("ridge").fit(e5(held), Hm))
    ridge = bridges[f"bridge ridge, use-multilingual, pool {len(pool):,}"]
    mlp = bridges[f"bridge mlp (fit_bridge default), use-multilingual, pool {len(pool):,}"]
    e5_ridge = bridges[f"e5-small + ridge, pool {len(held):,}"]
    students = [s for s in args.students.split(",") if s]
    for folder in students:
        sv = hp.Vectors(folder)
        tag = Path(folder).name
        bridges[f"distilled {tag}"] = Bridge("", sv)
        bridges[f"distilled {tag} + ridge, pool {len(held):,}"] = Bridge("", sv, make_mapper("ridge").fit(sv(held), Hm))
        bridges[f"averaged: distilled {tag} and bridge ridge"] = AveragedBridge("", bridges[f"distilled {tag}"], ridge)
        bridges[f"averaged: distilled {tag} and bridge mlp"] = AveragedBridge("", bridges[f"distilled {tag}"], mlp)
        if args.three_routes:
            # a third, independent route: e5-small's own vectors through a ridge map (no tuning at all)
            bridges[f"averaged: distilled {tag}, bridge ridge and e5-small + ridge"] = AveragedBridge(
                "", bridges[f"distilled {tag}"], ridge, e5_ridge)
    if args.three_routes:
        bridges["averaged: bridge ridge and e5-small + ridge"] = AveragedBridge("", ridge, e5_ridge)
        if len(students) > 1:
            every = [bridges[f"distilled {Path(f).name}"] for f in students]
            bridges["averaged: every student and bridge ridge"] = AveragedBridge("", *every, ridge)
    for k, b in bridges.items():
        b.name = k
    return bridges, {"use-multilingual": use, "e5-small": e5}, mini


class _ToSource:
    def __init__(self, aligner: LangAlign):
        self.aligner = aligner

    def transform(self, V: np.ndarray) -> np.ndarray:
        return self.aligner.to_source(V)


def retrieval(en: list[str], xx: list[str], mini: hp.Vectors, bridges: dict[str, Bridge],
              refs: dict[str, hp.Vectors]) -> list[dict[str, Any]]:
    kw = {"query_texts": xx, "candidate_texts": en, "both_directions": False}
    ref = {n: {m: retrieval_scores(v(xx), v(en), method=m, **kw)["accuracy"] for m in METHODS} for n, v in refs.items()}
    rows = [{"row": f"re-embed both sides: {n}", **{f"top1_{m}": t for m, t in by.items()}} for n, by in ref.items()]
    C = mini(en)
    for name, b in bridges.items():
        Q = b(xx)
        top1 = {m: retrieval_scores(Q, C, method=m, **kw)["accuracy"] for m in METHODS}
        ret = like_for_like_retention(top1, ref)
        rows.append({"row": name, **{f"top1_{m}": top1[m] for m in METHODS},
                     **{f"retention_{m}": ret[m]["retention"] for m in METHODS},
                     **{f"reference_{m}": ret[m]["reference"] for m in METHODS}})
    return rows


def classify(train_en: list[str], y: list[Any], tests: dict[str, tuple[list[str], list[Any]]], mini: hp.Vectors,
             bridges: dict[str, Bridge], refs: dict[str, hp.Vectors]) -> dict[str, dict[str, list[int]]]:
    """Per row and language: 0/1 correctness of each test item (heads: logreg, the library default)."""
    out: dict[str, dict[str, list[int]]] = {}
    hm = make_head("logreg").fit(mini(train_en), y)
    for n, v in refs.items():
        h = make_head("logreg").fit(v(train_en), y)
        for lang, (texts, gold) in tests.items():
            out.setdefault(f"re-embed everything, zero-shot: {n}", {})[lang] = _ok(h.predict(v(texts)), gold)
    for name, b in bridges.items():
        for lang, (texts, gold) in tests.items():
            out.setdefault(name, {})[lang] = _ok(hm.predict(b(texts)), gold)
    return out


def _ok(pred: Any, gold: list[Any]) -> list[int]:
    return [int(str(p) == str(g)) for p, g in zip(pred, gold, strict=True)]


def sts_dev_pairs(root: Path, lang: str) -> tuple[list[str], list[str]]:
    """Both sentences of every STS-B dev row, English and its translation, each pair once."""
    pairs = sts_parallel(lang, "dev", root)
    if pairs is None:
        raise SystemExit(f"STS-B dev for {lang!r} is not row-aligned with the English dev split")
    return pairs


def dev_stage(root: Path, mini: hp.Vectors, bridges: dict[str, Bridge], refs: dict[str, hp.Vectors]) -> dict:
    by = {lang: {} for lang in ("en", *LANGS)}
    labels: dict[str, Any] = {}
    for split in ("train", "dev"):
        for lang in by:
            ds = load_sib200(lang, split, root=root / "sib200")
            assert ds.meta is not None
            for i, t, lab in zip(ds.meta["index_id"], ds.texts, ds.labels, strict=True):
                by[lang][(split, i)] = t
                labels[(split, i)] = lab
    ids = sorted(by["en"])
    out: dict[str, Any] = {"retrieval": {}, "classification": {}}
    for lang in LANGS:
        log(f"[dev] retrieval {lang}")
        out["retrieval"][lang] = retrieval([by["en"][i] for i in ids], [by[lang][i] for i in ids], mini, bridges, refs)
    # FLORES retrieval sat at the ceiling on dev and did not predict Tatoeba; STS-B dev translations are short,
    # everyday sentences like Tatoeba's (dev split: no student or map trained on them)
    out["retrieval_sts"] = {}
    for lang in LANGS:
        log(f"[dev] retrieval, STS-B dev {lang}")
        en, xx = sts_dev_pairs(root, lang)
        out["retrieval_sts"][lang] = retrieval(en, xx, mini, bridges, refs)
    folds = np.random.default_rng(0).permutation(len(ids)) % 5
    acc: dict[str, dict[str, list[int]]] = {}
    for f in range(5):
        log(f"[dev] SIB-200 fold {f + 1}/5")
        tr = [ids[i] for i in np.flatnonzero(folds != f)]
        te = [ids[i] for i in np.flatnonzero(folds == f)]
        tests = {lang: ([by[lang][i] for i in te], [labels[i] for i in te]) for lang in LANGS}
        for row, per in classify([by["en"][i] for i in tr], [labels[i] for i in tr], tests, mini, bridges,
                                 refs).items():
            for lang, ok in per.items():
                acc.setdefault(row, {}).setdefault(lang, []).extend(ok)
    out["classification"] = {row: {lang: float(np.mean(v)) for lang, v in per.items()} for row, per in acc.items()}
    return out


def test_stage(root: Path, mini: hp.Vectors, bridges: dict[str, Bridge], refs: dict[str, hp.Vectors]) -> dict:
    out: dict[str, Any] = {"retrieval": {}, "classification": {}}
    for lang in LANGS:
        log(f"[test] Tatoeba {lang}")
        pc = load_tatoeba(lang, root / "tatoeba")
        out["retrieval"][lang] = retrieval(list(pc.source), list(pc.target), mini, bridges, refs)
    tr = load_sib200("en", "train", root=root / "sib200")
    tests = {}
    for lang in LANGS:
        ds = load_sib200(lang, "test", root=root / "sib200")
        tests[lang] = (list(ds.texts), list(ds.labels))
    log("[test] SIB-200")
    per = classify(list(tr.texts), list(tr.labels), tests, mini, bridges, refs)
    out["classification"] = {row: {lang: float(np.mean(v)) for lang, v in p.items()} for row, p in per.items()}
    out["classification_items"] = per  # for paired tests (McNemar)
    return out


def ood_stage(root: Path, mini: hp.Vectors, bridges: dict[str, Bridge], refs: dict[str, hp.Vectors]) -> dict:
    """Queries of another kind, measured once after the choices: XNLI dev premises and hypotheses (news, fiction,
    government text; ko and zh, Japanese has no XNLI translation), a seeded 1,000 pairs per language."""
    out: dict[str, Any] = {"retrieval": {}}
    for lang in OOD_LANGS:
        log(f"[ood] XNLI dev {lang}")
        pc = load_xnli_dev_parallel(lang, root=root)
        keep = np.sort(np.random.default_rng(0).permutation(len(pc.source))[:1000])
        out["retrieval"][lang] = retrieval([pc.source[i] for i in keep], [pc.target[i] for i in keep], mini,
                                           bridges, refs)
    return out


HEADER = ["| row | top-1 cosine ko / ja / zh | top-1 CSLS ko / ja / zh | retention cosine | retention CSLS | "
          "mean retention CSLS |", "|---|---|---|---|---|---:|"]


def _retrieval_rows(by_lang: dict[str, list[dict[str, Any]]]) -> list[str]:
    langs = [lang for lang in LANGS if lang in by_lang]
    lines = [h.replace("ko / ja / zh", " / ".join(langs)) for h in HEADER]
    for row in [r["row"] for r in by_lang["ko"]]:
        per = {lang: next(r for r in by_lang[lang] if r["row"] == row) for lang in langs}

        def cells(key: str, per: dict = per) -> str:
            return " / ".join(f"{per[lang][key]:.3f}" if key in per[lang] else "-" for lang in langs)

        mean = (f"{np.mean([per[lang]['retention_csls'] for lang in langs]):.3f}"
                if "retention_csls" in per["ko"] else "")
        lines.append(f"| {row} | {cells('top1_cosine')} | {cells('top1_csls')} | {cells('retention_cosine')} | "
                     f"{cells('retention_csls')} | {mean} |")
    return lines


def render(res: dict[str, Any]) -> str:
    lines = ["# Frozen-map bridge vs distilled bridge (issue 24)", ""]
    for stage, title in (("dev", "Dev: SIB-200 train+dev (800 FLORES sentences per language)"),
                         ("test", "Test (measured once, after the choice on dev): Tatoeba and SIB-200 test"),
                         ("ood", "Other queries (measured once, after the choice on dev): XNLI dev sentences, ko and "
                                 "zh, a seeded 1,000 pairs each")):
        st = res.get(stage)
        if not st:
            continue
        lines += [f"## {title}", "", f"Command: `{st['command']}`; {st['seconds']:.0f} s. Students: "
                  + (", ".join(f"`{s}` ({d})" for s, d in st["students"].items()) or "none") + ".", "",
                  "Retrieval top-1, ko/ja/zh queries into an English MiniLM index; retention like for like "
                  "(cosine / cosine, CSLS / CSLS; reference = the better re-embedding):", ""]
        lines += _retrieval_rows(st["retrieval"])
        if "retrieval_sts" in st:
            lines += ["", "The same on STS-B dev (both sentences of each of the 1,500 rows, English and translation; "
                      "short everyday sentences like Tatoeba's, which FLORES retrieval, at its ceiling, did not "
                      "predict):", ""]
            lines += _retrieval_rows(st["retrieval_sts"])
        if "classification" not in st:
            lines.append("")
            continue
        lines += ["", "SIB-200 accuracy (%), MiniLM English head reading the target language through each row "
                  "(references: a head on the re-embedding encoder, zero-shot):", "",
                  "| row | ko | ja | zh | mean |", "|---|---:|---:|---:|---:|"]
        for row, per in st["classification"].items():
            vals = [100 * per[lang] for lang in LANGS]
            lines.append(f"| {row} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {np.mean(vals):.1f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", default="", help="comma-separated distilled encoder folders")
    ap.add_argument("--pool", type=int, default=20_000, help="English sentences for the use-multilingual bridge")
    ap.add_argument("--residual-pool", type=int, default=2_000,
                    help="held-out English sentences for the ridge maps on e5-small and on each student")
    ap.add_argument("--three-routes", action="store_true",
                    help="also average with e5-small + ridge as a third route, and every student together")
    ap.add_argument("--stage", choices=["dev", "test", "ood"], default="dev",
                    help="dev chooses; test and ood (other queries: XNLI dev sentences) are read once after")
    ap.add_argument("--out", default="results")
    args = ap.parse_args(argv)
    root = find_reference_data()
    t0 = time.perf_counter()
    bridges, refs, mini = build(args)
    res_path = Path(args.out) / "distil_bridge.json"
    res = json.loads(res_path.read_text(encoding="utf-8")) if res_path.is_file() else {}
    stage = {"dev": dev_stage, "test": test_stage, "ood": ood_stage}[args.stage]
    res[args.stage] = stage(root, mini, bridges, refs)
    students = {}
    for s in [s for s in args.students.split(",") if s]:
        meta = json.loads((Path(s) / "langalign_tuning.json").read_text(encoding="utf-8"))
        what = ("pairs (English + translation)" if meta["data"].get("translations") else "English sentences")
        students[Path(s).name] = (f"{meta['data']['n_train']:,} {what}, {len(meta['history'])} epoch(s), "
                                  f"start map {bool(meta.get('start_map'))}, {meta['seconds'] / 60:.0f} min on "
                                  f"{meta['threads']} {meta['device']} threads")
    res[args.stage].update({"command": "python bench/distil_bridge.py " + " ".join(argv or sys.argv[1:]),
                            "seconds": time.perf_counter() - t0, "students": students})
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res_path.write_text(json.dumps(res, indent=1), encoding="utf-8")
    (Path(args.out) / "distil_bridge.md").write_text(render(res), encoding="utf-8")
    print(render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
