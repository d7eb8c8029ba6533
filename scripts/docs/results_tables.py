"""Tables for the docs, rendered at build time from the committed result files (results/*.json, the one
results tree every bench writes to), so that no number in the site is typed by hand.

Each generator takes the repository root (and keyword arguments) and returns Markdown; pages call them by
their GENERATORS name: `<!-- generate: NAME key=value ... -->` (see hooks.py).
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

LANGS = ("ko", "ja", "zh")
TASK_NAMES = {"sib200": "SIB-200 topics (acc.)", "tatoeba": "Tatoeba retrieval (top-1, cosine / CSLS)",
              "sts": "STS (Spearman)", "sentiment": "Sentiment (acc.)", "nli": "NLI (acc.)",
              "libreoffice": "LibreOffice modules (acc., in domain)"}


class ResultsError(Exception):
    """A result file is missing or lacks what a table needs (fails the docs build)."""


def load(root: Path, rel: str) -> Any:
    path = root / rel
    if not path.is_file():
        raise ResultsError(f"{rel}: no such result file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ResultsError(f"{rel}: not valid JSON ({e})") from None


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}"


def _signed(points: float) -> str:
    s = f"{points:+.1f}"
    return "±0" if s in ("+0.0", "-0.0") else s


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


# -- the benchmark (results/benchmark.json) -------------------------------------------------------------------
class _Bench:
    """Rows of one task and setting of benchmark.json, grouped by method and language."""

    def __init__(self, rows: list[dict[str, Any]], task: str, setting: str):
        self.task = task
        self.methods: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
        for r in rows:
            if r["task"] == task and r["setting"] == setting:
                self.methods.setdefault(r["method"], {})[r["lang"]] = r

    def value(self, row: dict[str, Any], metric: str | None = None) -> float:
        m = row["metrics"]
        if self.task == "tatoeba":
            return float(m[metric or "csls"]["mean"])
        if self.task == "sts":
            return float(m["spearman"])
        return float(m["accuracy"])

    def mean(self, method: str, metric: str | None = None) -> float | None:
        by = self.methods.get(method, {})
        if not all(lang in by for lang in LANGS):
            return None
        return _mean([self.value(by[lang], metric) for lang in LANGS])

    def cell(self, method: str, ref: float | None, with_diff: bool = True) -> str:
        """'83.3 (+0.5)' with the languages whose difference to the zero-shot is significant; per language
        when some languages have no such row; '' when none has."""
        by = self.methods.get(method, {})
        if not by:
            return ""
        if self.task == "tatoeba":
            cos, csls = self.mean(method, "cosine"), self.mean(method, "csls")
            return f"{_pct(cos)} / {_pct(csls)}" if cos is not None and csls is not None else ""
        sig = [f"{lang} {_signed(100 * by[lang]['vs_zero_shot']['accuracy_diff'])}*" for lang in LANGS
               if lang in by and (by[lang].get("vs_zero_shot") or {}).get("mcnemar_p", 1.0) < 0.05]
        mean = self.mean(method)
        if mean is None:  # a language without such a row (e.g. no in-domain pairs): list the others
            parts = []
            for lang in LANGS:
                if lang in by:
                    vs = by[lang].get("vs_zero_shot") or {}
                    star = "*" if vs.get("mcnemar_p", 1.0) < 0.05 else ""
                    diff = f" ({_signed(100 * vs['accuracy_diff'])}{star})" if "accuracy_diff" in vs else ""
                    parts.append(f"{lang} {_pct(self.value(by[lang]))}{diff}")
            return ", ".join(parts)
        if not with_diff:  # compact: a star when some language differs significantly
            return _pct(mean) + ("*" if sig else "")
        notes = []
        if ref is not None:  # the difference of the two numbers as printed, so the table adds up
            notes.append(_signed(float(_pct(mean)) - float(_pct(ref))))
        if any(by[lang].get("vs_zero_shot") for lang in LANGS):
            notes.append(", ".join(sig) if sig else "none significant")
        return _pct(mean) + (f" ({'; '.join(notes)})" if notes else "")

    def best(self, keep) -> tuple[str, float] | None:
        scored = [(m, self.mean(m)) for m, by in self.methods.items()
                  if keep(next(iter(by.values())))]
        scored = [(m, v) for m, v in scored if v is not None]
        return max(scored, key=lambda mv: mv[1]) if scored else None


def _find(b: _Bench, mode: str, mapper: str, pairs: str, n: int | None = None) -> str:
    for method, by in b.methods.items():
        r = next(iter(by.values()))
        if r["mode"] == mode and r["mapper"] == mapper and r["pairs"] == pairs and (n is None or r["n_pairs"] == n):
            return method
    return ""


def _zero_shot(rows: list[dict[str, Any]], task: str, setting: str = "same") -> tuple[_Bench, str, float | None]:
    same = _Bench(rows, task, setting)
    method = next((m for m, by in same.methods.items() if next(iter(by.values()))["mode"] in ("zero-shot", "raw")), "")
    return same, method, same.mean(method) if method else None


def benchmark_headline(root: Path, setting: str = "same", file: str = "results/benchmark.json") -> str:
    """The benchmark's summary table for one setting ('same' encoder, 'same:E' for another multilingual encoder E
    on both sides, or 'two' encoders), means over ko/ja/zh."""
    res = load(root, file)
    rows, tasks = res["results"], res["meta"]["tasks_completed"]
    langalign = ("forward", "reverse")
    one_encoder = setting == "same" or setting.startswith("same:")
    if one_encoder:
        lines = ["| task (metric) | zero-shot | native | Rev-LangAlign default, 300 in-domain pairs "
                 "| best langalign row | LibreOffice-fitted default: plain / `+adapt` "
                 "| paper FC / AE (reverse, 300 pairs, small budget) |",
                 "|---|---:|---:|---:|---|---:|---:|"]
    elif setting == "two":
        lines = ["| task (metric) | same-encoder zero-shot | Rev-LangAlign default, English-only bridge | LangAlign "
                 "default, English-only bridge | Rev-LangAlign default, 300 in-domain pairs | best two-encoder row | "
                 "LibreOffice pairs (best row) |", "|---|---:|---:|---:|---:|---|---:|"]
    else:
        raise ResultsError(f"benchmark-headline: setting must be 'same', 'same:ENCODER' or 'two', got {setting!r}")
    for task in tasks:
        # zero-shot of the setting's own encoder; two encoders: use-multilingual's (none exists across two)
        same, zs_method, ref = _zero_shot(rows, task, setting if one_encoder else "same")
        b = _Bench(rows, task, setting)
        if not b.methods:
            continue
        name = TASK_NAMES.get(task, task)
        zero = same.cell(zs_method, None, with_diff=False) if zs_method else ""
        if one_encoder:
            native = next((m for m, by in b.methods.items() if next(iter(by.values()))["mode"] == "native"), "")
            native_cell = ""
            if native:
                by = b.methods[native]
                native_cell = (_pct(b.mean(native)) if b.mean(native) is not None else
                               ", ".join(f"{lang} {_pct(b.value(by[lang]))}" for lang in LANGS if lang in by))
            rev300 = _find(b, "reverse", "default", "in-domain", 300)
            best = b.best(lambda r: r["mode"] in langalign)
            best_cell = ""
            if best:
                best_cell = "same row" if best[0] == rev300 else f"{best[0]}: {b.cell(best[0], ref)}"
                if ref is not None and task != "tatoeba" and float(_pct(best[1])) <= float(_pct(ref)):
                    best_cell = f"none above zero-shot (best: {best_cell})"
            lo = _find(b, "reverse", "default", "libreoffice")
            lo_adapt = _find(b, "reverse", "default+adapt", "libreoffice")
            lo_cell = " / ".join(c for c in (b.cell(lo, ref), b.cell(lo_adapt, ref)) if c)
            fc = b.cell(_find(b, "reverse", "mlp-paper", "in-domain", 300), ref, with_diff=False)
            ae = b.cell(_find(b, "reverse", "autoencoder-paper", "in-domain", 300), ref, with_diff=False)
            cells = [zero, native_cell, b.cell(rev300, ref) or "(no in-domain pairs)", best_cell, lo_cell,
                     " / ".join(c for c in (fc, ae) if c)]
        else:
            own = next((m for m, by in b.methods.items() if next(iter(by.values()))["mode"] == "raw"), "")
            if own and "en" in b.methods[own] and task == "sts":
                name = f"{name[:-1]}; minilm's own English: {_pct(b.value(b.methods[own]['en']))})"
            bridge_rev = _find(b, "reverse", "default", "english-bridge")
            bridge_fwd = _find(b, "forward", "default", "english-bridge")
            rev300 = _find(b, "reverse", "default", "in-domain", 300)
            best = b.best(lambda r: r["mode"] in langalign)
            lo = b.best(lambda r: r["mode"] in langalign and r["pairs"] == "libreoffice")
            cells = [zero, b.cell(bridge_rev, ref), b.cell(bridge_fwd, ref), b.cell(rev300, ref),
                     f"{best[0]}: {b.cell(best[0], ref)}" if best else "",
                     b.cell(lo[0], ref) if lo else ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_run(root: Path, file: str = "results/benchmark.json") -> str:
    """One line: how the benchmark run in `file` was made."""
    meta = load(root, file)["meta"]
    quick = " --quick" if meta.get("quick") else ""
    return (f"Run: `{meta['command']}{quick}` (seed {meta['seed']}), langalign {meta['langalign_version']}, "
            f"{meta['date'][:10]}, {meta['wall_seconds'] / 60:.1f} minutes; tasks: "
            f"{', '.join(meta['tasks_completed'])}; head: {meta['head']}; English-only bridge: "
            f"{meta['english_bridge_pool']}.")


# -- the English-only bridge (results/english_bridge.json, test stage) ------------------------------------------
def english_bridge_test(root: Path, file: str = "results/english_bridge.json") -> str:
    t = load(root, file).get("test")
    if not t:
        raise ResultsError(f"{file}: no 'test' stage (run bench/english_bridge.py with --test)")
    ret: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in t["retrieval"]:
        ret.setdefault((r["map"], r["correction"]), {})[r["lang"]] = r
    maps = list(dict.fromkeys(m for m, c in ret if c and not m.startswith("re-embed")))
    # The alternative per scoring method: the better re-embedding scored the same way (like for like)
    refs = {c: [by for (m, cc), by in ret.items() if m.startswith("re-embed") and cc == c] for c in ("csls", "cosine")}

    def best_ref(corr: str, lang: str) -> str:
        return f"{max(by[lang]['top1'] for by in refs[corr]):.3f}" if refs[corr] else ""
    lines = ["| test set | the alternative: the better re-embedding (use-multilingual or e5-small), same scoring; "
             "use-multilingual zero-shot | "
             + " | ".join(f"bridge, `{m}`" for m in maps) + " |", "|---|---:|" + "---:|" * len(maps)]
    for corr in ("csls", "cosine"):
        cells = []
        for m in maps:
            by = ret.get((m, corr), {})
            cells.append(" / ".join(f"{by[lang]['top1']:.3f}" for lang in LANGS) + " (retention "
                         + " / ".join(f"{by[lang]['retention']:.3f}" for lang in LANGS) + ")" if by else "")
        alt = " / ".join(best_ref(corr, lang) for lang in LANGS)
        scoring = "CSLS" if corr == "csls" else "plain cosine"
        lines.append(f"| Tatoeba top-1, ko / ja / zh, bridged queries into a MiniLM index, {scoring} | "
                     f"{alt} | " + " | ".join(cells) + " |")
    cls: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in t["classification"]:
        cls.setdefault((r["task"], r["map"]), {})[r["lang"]] = r
    for task, title in (("sib200", "SIB-200 accuracy"), ("sentiment", "Sentiment accuracy"), ("nli", "NLI macro-F1")):
        own = next((by["en"] for (tk, m), by in cls.items() if tk == task and "en" in by), None)
        zs = next((by for (tk, m), by in cls.items() if tk == task and "zero-shot" in m), None)
        if zs is None:
            continue
        label = f"{title}, mean ko/ja/zh" + (f" (MiniLM on English: {_pct(own['score'])})" if own else "")
        cells = []
        for m in maps:
            by = cls.get((task, m), {})
            if not by:
                cells.append("")
                continue
            sig = [f"{lang} {_signed(100 * (by[lang]['score'] - zs[lang]['score']))}*" for lang in LANGS
                   if by[lang].get("mcnemar_p_vs_zero_shot", 1.0) < 0.05]
            per = ", ".join(f"{lang} {_pct(by[lang]['score'])}" for lang in LANGS)
            cells.append(f"{_pct(_mean([by[lang]['score'] for lang in LANGS]))} ({per}"
                         + (f"; {', '.join(sig)}" if sig else "") + ")")
        lines.append(f"| {label} | {_pct(_mean([zs[lang]['score'] for lang in LANGS]))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the paper's neural mappers with a real budget (results/neural_budget.json) ---------------------------
def neural_budget(root: Path, file: str = "results/neural_budget.json") -> str:
    res = load(root, file)
    acc = res["accuracy"]
    names = {"zero-shot (no map)": "zero-shot (no map)", "default": "default (linear, shrunk toward identity)",
             "mlp-paper": "paper FC (`mlp-paper`, plain)", "autoencoder-paper": "paper AE (`autoencoder-paper`, plain)",
             "mlp": "langalign FC (`mlp`, residual on the linear map)",
             "autoencoder": "langalign AE (`autoencoder`, residual)"}
    lines = ["| mapper | Rev-LangAlign | LangAlign | fit seconds per language (ko / ja / zh) |", "|---|---:|---:|---|"]
    for key, label in names.items():
        if key == "zero-shot (no map)":
            v = _pct(_mean([acc[key][lang] for lang in LANGS]))
            lines.append(f"| {label} | {v} | {v} | |")
            continue
        rev, fwd = acc.get(f"Rev-LangAlign {key}"), acc.get(f"LangAlign {key}")
        if rev is None or fwd is None:
            continue
        fits = res.get("fits", {}).get(key, {})
        secs = " / ".join(f"{fits[lang]['fit_seconds']:.0f}" for lang in LANGS) if fits else ""
        lines.append(f"| {label} | {_pct(_mean([rev[lang] for lang in LANGS]))} | "
                     f"{_pct(_mean([fwd[lang] for lang in LANGS]))} | {secs} |")
    p = res["neural_params"]
    return "\n".join(lines) + (f"\n\nSIB-200, {res['pairs']} in-domain pairs, {p['epochs']} epochs, patience "
                               f"{p['patience']}, batch {p['batch_size']}; mean accuracy over ko / ja / zh.")


# -- head protocol (results/head_protocol.json) ----------------------------------------------------------------
def head_protocol(root: Path, file: str = "results/head_protocol.json",
                  configs: str = "l2 C=3,l2 C=1,raw C=3,l2+std C=1") -> str:
    res = load(root, file)
    meta, scores, summary = res["meta"], res["scores"], res["summary"]
    tasks = list(res["tasks"])
    # the column of each task: mean over its target-language columns (x100)
    labels = {"l2": "L2", "raw": "no normalisation", "l2+std": "L2 + standardise", "std": "standardise",
              "centre": "centre", "l2+centre": "L2 + centre"}
    head = ["| logistic regression | " + " | ".join(f"{t} ({res['tasks'][t]['metric'].replace('_', '-')})"
                                                   for t in tasks) + " | all | worst gap to a column's best |",
            "|---|" + "---:|" * (len(tasks) + 2)]
    for cfg in [c.strip() for c in configs.split(",")]:
        if cfg not in scores:
            raise ResultsError(f"{file}: no configuration {cfg!r}")
        prep, c = cfg.split(" ", 1)
        name = f"{labels.get(prep, prep)}, {c}"
        if cfg == meta["chosen"]:
            name += " (default)"
        if cfg == meta.get("old_default"):
            name += " (old default)"
        cols = []
        for t in tasks:
            xs = [v for k, v in scores[cfg].items() if k.startswith(f"{t}:") and not k.startswith(f"{t}:en")]
            cols.append(_pct(_mean(xs)) if xs else "")
        s = summary[cfg]
        head.append(f"| {name} | " + " | ".join(cols) + f" | {_pct(s['mean_target'])} | {_pct(s['worst_gap'])} |")
    return "\n".join(head)


# -- Procrustes on held-out pairs (results/procrustes_heldout.json) ---------------------------------------------
def procrustes_heldout(root: Path, file: str = "results/procrustes_heldout.json") -> str:
    rows = load(root, file)["rows"]
    lines = ["| pairs (train / dev) | lang | unmapped | plain rotation | Procrustes, shrunk (choice) "
             "| linear default (choice) |",
             "|---|---|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['corpus']} ({r['n_train']:,} / {r['n_dev']:,}) | {r['lang']} | {r['unmapped']:.3f} | "
                     f"{r['procrustes-plain']:.3f} | {r['procrustes']:.3f} ({r['procrustes choice']}) | "
                     f"{r['linear']:.3f} ({r['linear choice']}) |")
    return "\n".join(lines) + "\n\nMean cosine between mapped English and the target on the held-out dev pairs."


# -- adapt under domain shift (results/domain_shift.json) -------------------------------------------------------
def domain_shift(root: Path, file: str = "results/domain_shift.json") -> str:
    rows = load(root, file)["rows"]
    tab: OrderedDict[str, OrderedDict[str, dict[str, Any]]] = OrderedDict()
    for r in rows:
        tab.setdefault(r["method"], OrderedDict())[f"{r['task']} {r['lang']}"] = r
    cols = list(dict.fromkeys(k for by in tab.values() for k in by))
    metric = {c: next(by[c]["metric"] for by in tab.values() if c in by) for c in cols}
    lines = ["| method | " + " | ".join(f"{c} ({metric[c].replace('_', '-')})" for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for method, by in tab.items():
        cells = []
        for c in cols:
            r = by.get(c)
            if r is None:
                cells.append("")
                continue
            star = "*" if r.get("mcnemar_p", 1.0) < 0.05 else ""
            diff = f" ({_signed(100 * r['diff'])}{star})" if "diff" in r else ""
            cells.append(_pct(r["score"]) + diff)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\nDev sets, x100; in parentheses the difference to the zero-shot, "
                               "* McNemar p < 0.05.")


# -- choosing a configuration without test labels (results/model_selection.json) --------------------------------
def model_selection(root: Path, file: str = "results/model_selection.json") -> str:
    results = load(root, file)["results"]
    rules = [("english_dev_regret", "English dev score"), ("agreement_regret", "agreement (kappa), mode and C"),
             ("agreement_mode_regret", "agreement choosing only the mode, at C=3"),
             ("labelled_regret", "50 labelled target items")]
    lines = ["| how the configuration is chosen | points below the best in hindsight (mean) |", "|---|---:|"]
    for key, label in rules:
        xs = [r[key] for r in results if key in r]
        if xs:
            lines.append(f"| {label} | {100 * _mean(xs):.1f} |")
    default = [r["best_score"] - r["scores"]["reverse C=3"] for r in results if "reverse C=3" in r["scores"]]
    if default:
        lines.append(f"| the default (reverse, C=3) | {100 * _mean(default):.1f} |")
    return "\n".join(lines) + f"\n\nOver {len(results)} task-language dev sets."


# -- tuning the encoder (results/tuning.json) --------------------------------------------------------------
def tuning(root: Path, file: str = "results/tuning.json") -> str:
    res = load(root, file)
    lines = ["| task | encoder | en | ko | ja | zh | mean ko/ja/zh |", "|---|---|---:|---:|---:|---:|---:|"]
    for task in res["tasks"].values():
        first = True
        for system, by in task["eval"]["scores"].items():
            cells = [_pct(by[lang]["accuracy"]) if lang in by else "" for lang in ("en", *LANGS)]
            mean = _pct(_mean([by[lang]["accuracy"] for lang in LANGS]))
            lines.append(f"| {task['title'] if first else ''} | {system} | " + " | ".join(cells) + f" | {mean} |")
            first = False
    return "\n".join(lines) + "\n\nAccuracy (%), 204 test items per language."


# -- serving (results/serving.json) ------------------------------------------------------------------------
def serving_retention(root: Path, file: str = "results/serving.json") -> str:
    langs = load(root, file)["retention"]["langs"]
    systems = list(dict.fromkeys(s for by in langs.values() for s in by))
    lines = ["| top-1 (ko / ja / zh) | cosine | retention | CSLS | retention |", "|---|---|---|---|---|"]
    for s in systems:
        row = [langs[lang].get(s, {}) for lang in LANGS]
        cells = []
        for metric in ("cosine", "csls"):
            vals = [r.get(f"top1_{metric}") for r in row]
            rets = [r.get(f"retention_{metric}") for r in row]
            cells.append(" / ".join(f"{v:.3f}" for v in vals) if all(v is not None for v in vals) else "")
            cells.append(f"{100 * _mean(rets):.1f}%" if all(v is not None for v in rets) else "")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rate(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def serving_service(root: Path, file: str = "results/serving.json") -> str:
    """Throughput and latency of `POST /v1/embeddings` against the same call in-process, by concurrency."""
    res = load(root, file)
    levels, mech = res["service"]["levels"], {m["concurrency"]: m for m in res.get("mechanics", {}).get("levels", [])}
    head = "| `POST /v1/embeddings`, one sentence per request | " + " | ".join(
        f"concurrency {lv['concurrency']}" for lv in levels) + " |"
    rows = [head, "|---|" + "---|" * len(levels)]
    n = {lv["requests"] for lv in levels}
    errors = sum(lv["requests"] - lv["ok"] for lv in levels)
    rows.append(f"| service: requests/s, p50 / p99 ms ({', '.join(map(str, sorted(n)))} requests, "
                f"{errors or 'zero'} errors) | "
                + " | ".join(f"{_rate(lv['throughput_per_s'])}, {lv['p50_ms']:.0f} / {lv['p99_ms']:.0f}"
                             for lv in levels) + " |")
    rows.append("| in-process `bridge.to_source([text])`, same rounds: texts/s, p50 ms | " + " | ".join(
        f"{_rate(lv['in_process_sequential']['throughput_per_s'])}, {lv['in_process_sequential']['p50_ms']:.0f}"
        for lv in levels) + " |")
    rows.append("| in-process, all of a round's texts in one call: texts/s | " + " | ".join(
        _rate(lv["in_process_one_batch"]["throughput_per_s"]) for lv in levels) + " |")
    ratios = [(lv["throughput_vs_in_process_sequential"], lv["per_round_throughput_vs_in_process_sequential"])
              for lv in levels]
    rows.append(f"| service / in-process one per call (median of {levels[0]['rounds']} rounds; range) | " + " | ".join(
        f"{mid:.2g}x ({min(per):.2g}-{max(per):.2g})" for mid, per in ratios) + " |")
    if mech:
        rows.append("| HTTP + batcher alone (encoder sleeping): req/s, mean batch | " + " | ".join(
            f"{_rate(mech[lv['concurrency']]['throughput_per_s'])}, {mech[lv['concurrency']]['mean_batch']:.1f} "
            f"(ideal {mech[lv['concurrency']]['ideal_per_s']:.0f})" if lv["concurrency"] in mech else ""
            for lv in levels) + " |")
    return "\n".join(rows)


# -- generic: the rows of one section of a JSON result ---------------------------------------------------------
def json_rows(root: Path, file: str, section: str, columns: str = "") -> str:
    """A table of `res[section]["rows"]` (or `res[section]` when it is a list), one column per key."""
    res = load(root, file)
    part = res
    for key in section.split("."):
        if not isinstance(part, dict) or key not in part:
            raise ResultsError(f"{file}: no section {section!r}")
        part = part[key]
    rows = part["rows"] if isinstance(part, dict) else part
    if not isinstance(rows, list) or not rows:
        raise ResultsError(f"{file}: section {section!r} holds no rows")
    cols = [c.strip() for c in columns.split(",")] if columns else list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return "" if v is None else str(v)

    missing = [c for c in cols if not any(c in r for r in rows)]
    if missing:
        raise ResultsError(f"{file}: section {section!r} has no column {missing}")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# -- the tuned pipeline (results/tuned_pipeline.json) ------------------------------------------------------------
def tuned_pipeline_drift(root: Path, file: str = "results/tuned_pipeline.json") -> str:
    """Cosine of translations and of random pairs, and Tatoeba top-1, before and after tuning."""
    drift = load(root, file)["drift"]
    lines = ["| set | cosine translation / random, untuned | tuned | top-1, untuned | tuned |",
             "|---|---|---|---:|---:|"]
    for key, a in drift["untuned"].items():
        b = drift["tuned"][key]
        t1 = f"{_pct(a['top1'])} | {_pct(b['top1'])}" if "top1" in a else " | "
        lines.append(f"| {key} | {a['cos_translation']:.3f} / {a['cos_random']:.3f} | "
                     f"{b['cos_translation']:.3f} / {b['cos_random']:.3f} | {t1} |")
    return "\n".join(lines)


def tuned_pipeline_test(root: Path, file: str = "results/tuned_pipeline.json") -> str:
    """Test accuracy per system (variants chosen on dev), McNemar p against the untuned zero-shot."""
    res = load(root, file)
    best = res["meta"]["best_pipeline"]
    lines = ["| system | chosen on dev | ko | ja | zh | mean ko/ja/zh | McNemar p (ko / ja / zh) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for system, row in res["test"].items():
        name = f"**{system}**" if system == best else system
        ps = " / ".join(f"{row[f'{lang}_p']:.2f}" for lang in LANGS)
        lines.append(f"| {name} | {row['variant']} | " + " | ".join(_pct(row[lang]) for lang in LANGS)
                     + f" | {_pct(row['mean'])} | {ps} |")
    e = res["english"]
    return "\n".join(lines) + (f"\n\nAccuracy (%), SIB-200 test (204 per language). English test accuracy of the "
                               f"English head: untuned {_pct(e['untuned']['test'])}, tuned {_pct(e['tuned']['test'])}. "
                               f"Bold: the tuned pipeline chosen on dev.")


GENERATORS = {
    "benchmark-headline": benchmark_headline, "benchmark-run": benchmark_run,
    "english-bridge-test": english_bridge_test,
    "neural-budget": neural_budget, "head-protocol": head_protocol, "procrustes-heldout": procrustes_heldout,
    "domain-shift": domain_shift, "model-selection": model_selection, "tuning": tuning,
    "serving-retention": serving_retention, "serving-service": serving_service, "json-rows": json_rows,
    "tuned-pipeline-drift": tuned_pipeline_drift, "tuned-pipeline-test": tuned_pipeline_test,
}
