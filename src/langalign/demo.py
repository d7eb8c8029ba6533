"""``langalign demo``: the project's main job, end to end, offline, on the bundled models.

1. Build (or reuse) the English pool and the LibreOffice help parallel corpus.
2. The English-only system first: an English MiniLM classifier and an English
   MiniLM index, before and after an English-only bridge (fitted on English text
   alone) that maps use-multilingual vectors of Korean / Japanese / Chinese into
   MiniLM's space, next to the alternative: re-embedding with use-multilingual.
3. One multilingual encoder on both sides (the paper's setting): LangAlign
   aligners fitted on LibreOffice pairs, in domain (LibreOffice modules) and out
   of domain (SIB-200 news), with and without ``adapt`` on the unlabelled inputs.
4. Print the tables, write ``demo.md`` + ``demo.json``, show example predictions.

Embeddings go through the on-disk cache, so a second run skips re-encoding; the
bridge's pool and the SIB-200 / sentiment items are the benchmark's, so a demo
after ``langalign benchmark`` (or the reverse) encodes little.
"""
from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._io import write_json_atomic, write_text_atomic
from .aligner import LangAlign
from .encoders import Encoder, load_encoder
from .evaluation import like_for_like_retention, retrieval_scores
from .transfer import CrossLingualClassifier

EXAMPLES_PER_LANG = 3
# English sentences for the MiniLM -> USE bridge: the first 20k of the benchmark's seeded
# 50k sample of the english-pool corpus. On dev the gain flattens near 20k (results/english_bridge.md).
BRIDGE_POOL = 20_000
# LibreOffice pairs per language: the quick demo fits on (and trains its in-domain head on) the benchmark's
# 4,000 (tasks.LIBREOFFICE_PAIRS); --full uses every train pair (11k-15k) and the whole train split.
QUICK_PAIRS = 4_000
FULL_PAIRS = 20_000
# What a first run costs, as measured (docs/getting-started.md, "The demo"): printed in the demo's first line.
TIME_NOTE = {
    False: "The first run builds two corpora (about 290 MB of Debian packages) and encodes about 91,000 texts with "
           "MiniLM and use-multilingual, and Tatoeba with e5-small; on a fresh clone on this project's 2-core machine "
           "that took 6.6 minutes, install included (the demo 5.3 minutes, 9 CPU-minutes, 2026-12-03), and 30 "
           "minutes while other work kept the machine busy. Later runs reuse the corpora and the encoded texts",
    True: "The first run builds two corpora (about 290 MB of Debian packages) and encodes every LibreOffice train "
          "pair, about 40,000 texts more than the quick size; later runs reuse both",
}

# Retrieval is scored both ways, on both sides: a retention divides like by like.
RETRIEVAL_METHODS = ("cosine", "csls")
RETRIEVAL_LABEL = {"cosine": "cosine", "csls": "CSLS"}

BRIDGE_TITLE = "English-only MiniLM system, before and after the bridge"
SAME_TITLE = "One multilingual encoder (use-multilingual) with aligners fitted on LibreOffice pairs"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cached(name: str | Encoder) -> Encoder:
    enc = load_encoder(name)
    try:
        from .scale.cache import CachedEncoder
    except ImportError:  # cache not available: encode afresh every run
        return enc
    return CachedEncoder(enc)


def _acc(pred: np.ndarray, gold: list[Any]) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(gold))) if len(gold) else float("nan")


def _mean(vals: dict[str, float]) -> float:
    return float(np.nanmean(list(vals.values())))


def default_backend() -> str:
    """MiniLM's backend for the demo: ONNX Runtime when installed (the same vectors to float32 rounding, and
    faster, above all on a busy machine: bench/encoders.py), else torch."""
    try:
        import onnx  # noqa: F401  (the export needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


def run_demo(langs: str | list[str] = "ko,ja,zh", out_dir: str | Path = "reports/demo", max_pairs: int | None = None,
             corpus_from: str | None = None, seed: int = 0, bridge_pool: int = BRIDGE_POOL, full: bool = False,
             backend: str | None = None) -> dict[str, Any]:
    """The demo. ``full=False`` (the default) fits the LibreOffice aligners and in-domain heads on
    :data:`QUICK_PAIRS` pairs per language; ``full=True`` on up to ``max_pairs`` (default 20,000), the whole
    train split. ``backend``: MiniLM's (``"torch"``, ``"onnx"``; default :func:`default_backend`)."""
    from .benchmark import tasks as T
    from .data import (build_english_pool, build_libreoffice_help, find_reference_data, load_english_pool,
                       load_libreoffice_help, load_tatoeba, parse_langs)

    codes = parse_langs(langs)
    out = Path(out_dir)
    root = find_reference_data()
    if max_pairs is None:
        max_pairs = FULL_PAIRS if full else QUICK_PAIRS
    backend = backend or default_backend()
    if backend not in ("torch", "onnx"):  # int8 would change the vectors the demo's findings rest on
        raise ValueError(f"the demo runs MiniLM with backend 'torch' or 'onnx', not {backend!r}")
    started = time.monotonic()

    def step(msg: str) -> None:
        _say(f"[{time.monotonic() - started:6.0f} s] {msg}")

    _say(f"langalign demo ({'full' if full else 'quick'} size: bridge on {bridge_pool:,} English sentences, "
         f"{'up to ' if full else ''}{max_pairs:,} LibreOffice pairs per language; MiniLM backend {backend}). "
         f"{TIME_NOTE[full]}" + ("." if full else "; `langalign demo --full` for the full size."))
    step("[1/5] corpora: the English pool and LibreOffice help for " + ", ".join(codes) + " (built once, then reused)")
    build_english_pool()
    build_libreoffice_help(codes, debs=corpus_from, seed=seed)

    step("[2/5] loading the bundled encoders: use-multilingual (512-d, 16 languages), minilm (384-d, English)")
    use = _cached("use-multilingual")
    mini = _cached(load_encoder("minilm", backend=backend))

    results: dict[str, Any] = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                               "langs": codes, "seed": seed, "size": "full" if full else "quick",
                               "minilm_backend": backend, "tables": {BRIDGE_TITLE: {}, SAME_TITLE: {}},
                               "examples": {}, "aligners": {}}

    def put(table: str, row: str, lang: str, value: float) -> None:
        results["tables"][table].setdefault(row, {})[lang] = value

    step(f"[3/5] English-only bridge minilm -> use-multilingual, fitted on {bridge_pool:,} English sentences alone")
    pool = load_english_pool(max_sentences=T.BRIDGE_POOL_CORPUS, seed=seed)[:bridge_pool]
    # mapper="bridge": what fit_bridge fits by default (the residual MLP chosen on dev splits)
    bridge = LangAlign(mini, use, mapper="bridge", held_out=0.0, seed=seed)
    bridge.fit_embeddings(mini.encode(pool, show_progress=True), use.encode(pool, show_progress=True))
    results["aligners"]["bridge"] = {"pairs": len(pool), "source": "english-pool corpus (English only)",
                                     "mapper": bridge.mapper}

    # Sentiment first: there the bridge beats re-embedding; on SIB-200 it trails it (both are printed).
    tasks = {"Sentiment": T.load_sentiment_task(codes, root, seed),
             "SIB-200 topic": T.load_sib200_task(codes, root, seed)}
    sib = tasks["SIB-200 topic"]
    X_sib_use = use.encode(sib.train_items, show_progress=True)
    for name, task in tasks.items():
        step(f"  {name}: English heads on MiniLM and on use-multilingual vectors")
        # The existing English system: a MiniLM head trained on English data ...
        mini_head = CrossLingualClassifier(bridge, mode="reverse").fit_embeddings(
            mini.encode(task.train_items, show_progress=True), task.train_labels)
        # ... and the alternative a user would weigh: re-embed everything with the multilingual encoder.
        use_head = CrossLingualClassifier(use, mode="zero-shot").fit_embeddings(
            X_sib_use if task is sib else use.encode(task.train_items, show_progress=True), task.train_labels)
        for code in codes:
            texts, gold = task.tests[code]
            Y = use.encode(texts, show_progress=True)
            if task is sib:  # (skipped for sentiment: MiniLM reads long reviews slowly, and to no use)
                raw = mini_head._require_head().predict(mini.encode(texts, show_progress=True))
                put(BRIDGE_TITLE, f"{name} | MiniLM English head | target text as is (no map)", code,
                    _acc(raw, gold))
            bridged = mini_head.predict_embeddings(Y)
            put(BRIDGE_TITLE, f"{name} | MiniLM English head | + Rev-LangAlign English-only bridge", code,
                _acc(bridged, gold))
            reembedded = use_head.predict_embeddings(Y)
            put(BRIDGE_TITLE, f"{name} | use-multilingual head | re-embed everything, zero-shot", code,
                _acc(reembedded, gold))
            _paired(results, name, gold, bridged, reembedded)
            if task is sib:
                pick = np.random.default_rng(seed).choice(len(texts), size=min(EXAMPLES_PER_LANG, len(texts)),
                                                          replace=False)
                results["examples"][code] = [{"text": texts[i], "gold": gold[i], "minilm_no_map": str(raw[i]),
                                              "minilm_bridge": str(bridged[i])} for i in pick]
        if task is sib:
            en_test = T.load_sib200("en", "test", root / "sib200")
            results["minilm_english_sib200_test"] = _acc(
                mini_head._require_head().predict(mini.encode(en_test.texts)), list(en_test.labels))

    step("  Tatoeba: target-language queries into an English MiniLM index of the English side")
    # The reference a user would weigh: re-embed both sides with a multilingual encoder (use-multilingual and
    # e5-small); a retention divides by the better of them scored the same way (cosine by cosine, CSLS by CSLS).
    # e5-small runs on MiniLM's backend: ONNX gives the same vectors (the same encoder identity), twice as fast here
    e5 = _cached(load_encoder("e5-small", backend=backend))
    for code in codes:
        pc = load_tatoeba(code, root / "tatoeba")
        en, xx = list(pc.source), list(pc.target)
        kw: dict[str, Any] = {"query_texts": xx, "candidate_texts": en, "both_directions": False}
        index = mini.encode(en, show_progress=True)
        Q = use.encode(xx, show_progress=True)
        put(BRIDGE_TITLE, "Tatoeba top-1 | MiniLM index | target text as is (no map)", code,
            retrieval_scores(mini.encode(xx, show_progress=True), index, **kw)["accuracy"])
        mapped = bridge.to_source(Q)
        top1 = {m: retrieval_scores(mapped, index, method=m, **kw)["accuracy"] for m in RETRIEVAL_METHODS}
        for m in RETRIEVAL_METHODS:
            put(BRIDGE_TITLE, f"Tatoeba top-1 | MiniLM index | + bridge, {RETRIEVAL_LABEL[m]}", code, top1[m])
        refs: dict[str, dict[str, float]] = {}
        for ref_name, enc in (("use-multilingual", use), ("e5-small", e5)):
            Qr, Cr = (Q, use.encode(en)) if enc is use else (enc.encode(xx, show_progress=True), enc.encode(en))
            refs[ref_name] = {m: retrieval_scores(Qr, Cr, method=m, **kw)["accuracy"] for m in RETRIEVAL_METHODS}
            for m in RETRIEVAL_METHODS:
                put(BRIDGE_TITLE, f"Tatoeba top-1 | {ref_name} index | re-embed both sides, {RETRIEVAL_LABEL[m]}",
                    code, refs[ref_name][m])
        results.setdefault("tatoeba_retention", {})[code] = like_for_like_retention(top1, refs)

    step("[4/5] per language: LangAlign on LibreOffice pairs (one encoder), English heads, target test text")
    for code in codes:
        lo_train = load_libreoffice_help(code, "train").sample(max_pairs, seed)
        align = LangAlign(use, use, mapper="default", seed=seed)
        align.fit_embeddings(use.encode(lo_train.source, show_progress=True),
                             use.encode(lo_train.target, show_progress=True))
        results["aligners"][code] = {"pairs": len(lo_train), "choice": getattr(align.forward_, "choice_", None),
                                     "held_out": align.scores_}
        # the in-domain English head: the whole train split (full), or the fitted pairs' English side (quick)
        lo_en = load_libreoffice_help(code, "train") if full else lo_train
        lo_te = load_libreoffice_help(code, "test")
        assert lo_en.meta is not None and lo_te.meta is not None  # the corpus carries page labels
        sib_texts, sib_gold = sib.tests[code]
        for name, X_en, y_en, Y, gold in (
                ("LibreOffice module (in domain)", use.encode(lo_en.source), lo_en.meta["label"],
                 use.encode(lo_te.target), lo_te.meta["label"]),
                ("SIB-200 topic (out of domain)", X_sib_use, sib.train_labels, use.encode(sib_texts), sib_gold)):
            for mode in ("zero-shot", "forward", "reverse"):
                clf = CrossLingualClassifier(align, mode=mode).fit_embeddings(X_en, y_en)
                put(SAME_TITLE, f"{name} | {mode}", code, _acc(clf.predict_embeddings(Y), gold))
            # adapt() sees only the unlabelled inputs: it keeps the map in domain and falls back out of it.
            try:
                align.adapt(Y, side="target")
                clf = CrossLingualClassifier(align, mode="reverse").fit_embeddings(X_en, y_en)
                put(SAME_TITLE, f"{name} | reverse + adapt", code, _acc(clf.predict_embeddings(Y), gold))
                results["aligners"][code].setdefault("adapt", {})[name] = align.adapted_.get("reverse")
            finally:
                align.adapted_ = {}

    step("[5/5] report")
    results["seconds"] = round(time.monotonic() - started, 1)
    tables = {title: _table(rows, codes) for title, rows in results["tables"].items()}
    results["summary"] = _summary(results)
    for title, table in tables.items():
        print(f"\n{title} (accuracy / top-1, %)\n")
        print(table)
    print("\n" + "\n".join(results["summary"]))
    print("\nExample predictions (SIB-200 test):")
    for code, exs in results["examples"].items():
        for e in exs:
            print(f"  [{code}] {e['text'][:70]}")
            print(f"       gold={e['gold']}  MiniLM no map={e['minilm_no_map']}  MiniLM+bridge={e['minilm_bridge']}")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "demo.json", results)
    write_text_atomic(out / "demo.md", _markdown(results, tables))
    print(f"\nreport: {out / 'demo.md'}  data: {out / 'demo.json'}  ({results['seconds'] / 60:.1f} minutes)")
    return results


def _paired(results: dict[str, Any], name: str, gold: Any, a: Any, b: Any) -> None:
    """Add one language's test items to the paired comparison bridge (a) vs re-embedding (b)."""
    ok_a = np.asarray([str(p) for p in a]) == np.asarray([str(g) for g in gold])
    ok_b = np.asarray([str(p) for p in b]) == np.asarray([str(g) for g in gold])
    d = results.setdefault("paired", {}).setdefault(name, {"n": 0, "bridge_only": 0, "reembed_only": 0})
    d["n"] += int(ok_a.size)
    d["bridge_only"] += int(np.sum(ok_a & ~ok_b))
    d["reembed_only"] += int(np.sum(~ok_a & ok_b))


def _summary(results: dict[str, Any]) -> list[str]:
    """Plain sentences computed from the tables: wins and losses alike. "beats" only for a positive
    difference as printed (one decimal), "ties" for none; McNemar's test over the paired test items
    (all languages) says whether the difference is significant."""
    from .evaluation.classification import mcnemar_p

    b = results["tables"][BRIDGE_TITLE]
    lines = []
    for name in ("Sentiment", "SIB-200 topic"):
        raw_row = b.get(f"{name} | MiniLM English head | target text as is (no map)")
        br = _mean(b[f"{name} | MiniLM English head | + Rev-LangAlign English-only bridge"])
        alt = _mean(b[f"{name} | use-multilingual head | re-embed everything, zero-shot"])
        diff = round(100 * br, 1) - round(100 * alt, 1)
        if abs(diff) < 0.05:
            verdict = f"ties with re-embedding with use-multilingual ({100 * alt:.1f}%)"
        else:
            verdict = (f"{'beats' if diff > 0 else 'trails'} re-embedding with use-multilingual "
                       f"({100 * alt:.1f}%) by {abs(diff):.1f} points")
        pair = (results.get("paired") or {}).get(name)
        if pair:
            p = mcnemar_p(pair["bridge_only"], pair["reembed_only"])
            verdict += (f" ({'significant' if p < 0.05 else 'not significant'}: McNemar p = {p:.2g} over "
                        f"{pair['n']:,} paired test items)")
        as_is = f"at {100 * _mean(raw_row):.1f}% as is and " if raw_row else ""
        lines.append(f"- {name}: the English MiniLM head reads target text {as_is}at {100 * br:.1f}% through "
                     f"the bridge; it {verdict}.")
    ret = results["tatoeba_retention"]
    for m in ("csls", "cosine"):
        refs = sorted({r[m]["reference"] for r in ret.values()})
        lines.append(f"- Tatoeba, {RETRIEVAL_LABEL[m]} on both sides: bridged queries into the MiniLM index keep " +
                     ", ".join(f"{code} {r[m]['retention']:.3f}" for code, r in ret.items()) +
                     f" of re-embedding's top-1 (the better of use-multilingual and e5-small, here "
                     f"{' / '.join(refs)}; 1.000 = as good as re-embedding the index).")
    s = results["tables"][SAME_TITLE]
    for name in ("LibreOffice module (in domain)", "SIB-200 topic (out of domain)"):
        zs, rv, ad = (_mean(s[f"{name} | {m}"]) for m in ("zero-shot", "reverse", "reverse + adapt"))
        lines.append(f"- {name}, one encoder: zero-shot {100 * zs:.1f}%, Rev-LangAlign {100 * rv:.1f}%, "
                     f"with adapt {100 * ad:.1f}%.")
    return lines


def _table(rows: dict[str, dict[str, float]], codes: list[str]) -> str:
    """Row names are ``"a | b | c"``: their parts become the leading columns."""
    width = max((len(name.split("|")) for name in rows), default=1)
    names = {3: ["task", "encoder", "method"], 2: ["task", "method"], 1: ["method"]}
    head = names.get(width, [f"part {i + 1}" for i in range(width)])
    head += codes + ["mean"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for name, vals in rows.items():
        nums = [vals.get(c, float("nan")) for c in codes]
        cells = [f"{100 * v:.1f}" for v in nums] + [f"{100 * float(np.nanmean(nums)):.1f}"]
        parts = [part.strip() for part in name.split("|")]
        lines.append(" | ".join(parts + [""] * (width - len(parts)) + cells))
    return "\n".join("| " + line + " |" for line in lines)


def _markdown(results: dict[str, Any], tables: dict[str, str]) -> str:
    parts = ["# langalign demo", "", f"Run {results['created']}, seed {results['seed']}, command `langalign demo`.", "",
             "Classifiers are trained on English data only and tested on target-language text; retrieval sends "
             "target-language queries into an index of the English side.", ""]
    for title, table in tables.items():
        parts += [f"## {title} (accuracy / top-1, %)", "", table, ""]
    parts += ["## What it shows", ""] + results["summary"] + ["",
              "Aligners:", "", "```json", json.dumps(results["aligners"], indent=1), "```", "",
              "## Example predictions (SIB-200 test)", ""]
    for code, exs in results["examples"].items():
        for e in exs:
            parts.append(f"- [{code}] {e['text']} — gold `{e['gold']}`, MiniLM no map `{e['minilm_no_map']}`, "
                         f"MiniLM + bridge `{e['minilm_bridge']}`")
    return "\n".join(parts) + "\n"
