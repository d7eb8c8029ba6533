"""Benchmark outputs: ``benchmark.json`` (every number + configuration), ``benchmark.md`` and PNG plots."""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

LANG_ORDER = ("ko", "ja", "zh")
SETTING_TITLES = {"same": "same encoder (use-multilingual -> use-multilingual)",
                  "two": "two encoders (minilm for English, use-multilingual for the target)"}


def setting_title(setting: str) -> str:
    """``same:e5-small`` -> ``same encoder (e5-small -> e5-small)``."""
    if setting in SETTING_TITLES:
        return SETTING_TITLES[setting]
    enc = setting.split(":", 1)[1] if setting.startswith("same:") else setting
    return f"same encoder ({enc} -> {enc})"


def _settings(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The run's settings in its order (``same`` settings first, ``two`` last)."""
    names = list(meta.get("settings") or {}) or ["same", "two"]
    return names + [s for s in dict.fromkeys(r["setting"] for r in rows) if s not in names]


def _fmt(x: float | None, scale: float = 100.0, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x * scale:.{digits}f}"


def _diff_cell(row: dict[str, Any], key: str) -> str:
    vs = row.get("vs_zero_shot")
    if not vs:
        return ""
    d = vs[f"{key}_diff"] * 100
    star = "*" if vs["mcnemar_p"] < 0.05 and key == "accuracy" else ""
    return f" ({d:+.1f}{star})"


def _rows_by_method(rows: list[dict[str, Any]]) -> OrderedDict[str, dict[str, dict]]:
    out: OrderedDict[str, dict[str, dict]] = OrderedDict()
    for r in rows:
        out.setdefault(r["method"], {})[r["lang"]] = r
    return out


def _langs(rows: list[dict[str, Any]]) -> list[str]:
    present = {r["lang"] for r in rows}
    return [l for l in LANG_ORDER if l in present] + sorted(present - set(LANG_ORDER) - {"en"})


def classification_table(rows: list[dict[str, Any]], metric: str, with_diff: bool = True) -> list[str]:
    langs = _langs(rows)
    lines = ["| method | " + " | ".join(langs) + " | mean |", "|---|" + "---:|" * (len(langs) + 1)]
    for method, by_lang in _rows_by_method(rows).items():
        cells, vals = [], []
        for lang in langs:
            r = by_lang.get(lang)
            if r is None:
                cells.append("n/a")
                continue
            v = r["metrics"][metric]
            vals.append(v)
            cells.append(_fmt(v) + (_diff_cell(r, metric) if with_diff else ""))
        mean = _fmt(float(np.mean(vals))) if len(vals) == len(langs) else "n/a"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {mean} |")
    return lines


def mean_metric(rows: list[dict[str, Any]], method: str, metric: str = "accuracy", langs=LANG_ORDER) -> float | None:
    vals = [r["metrics"][metric] for r in rows if r["method"] == method and r["lang"] in langs]
    return float(np.mean(vals)) if len(vals) == len(langs) and vals else None


def render_markdown(result: dict[str, Any]) -> str:
    meta, rows = result["meta"], result["results"]
    md = [f"# langalign benchmark{' (quick)' if meta['quick'] else ''}", "",
          f"Command: `{meta['command']}` (seed {meta['seed']}), langalign {meta['langalign_version']}, "
          f"{meta['date']}, wall time {meta['wall_seconds'] / 60:.1f} min on {os.cpu_count()} CPU cores. "
          f"Data: `{meta['data']}`. Every number below is in `benchmark.json` with its configuration.", "",
          "## How to read this", "",
          "- Each task trains on English and is tested on Korean (ko), Japanese (ja) and Chinese (zh); "
          "cells are percentages.",
          "- **zero-shot** = English head applied to target-language vectors of the same multilingual encoder "
          "(no map; the paper's English-data baseline). **native** = head trained on target-language training "
          "data (the paper's native / translated-data baseline), where such data exists.",
          "- **LangAlign** = forward map (head trained on English mapped into the target space); "
          "**Rev-LangAlign** = reverse map (English head; target input mapped into the English space).",
          "- Pair sources: *in-domain N* = a seeded sample of N parallel pairs from the task's own data; "
          "*LibreOffice N* = software-manual pairs (out of domain); *English-only N* = two-encoder bridging "
          "fitted on English text alone (`fit(english, english)`).",
          "- Mappers: `default` (= `linear`, ridge shrunk toward identity / plain ridge across dimensions, "
          "cross-validated), `procrustes`, `centering`, and the paper's `mlp-paper` (FC) and "
          "`autoencoder-paper` (AE). `+adapt`: the same LibreOffice-fitted aligner after "
          "`LangAlign.adapt` on the unlabelled test inputs (falls back toward the zero-shot when they "
          "lie outside the pairs' domain; no labels used).",
          f"- In parentheses: difference to the zero-shot reference in points; `*` = McNemar p < 0.05 "
          f"(accuracy). {meta['zero_shot_reference']}.",
          f"- Heads: {meta['head']}. Neural mappers: at most {meta['neural_mappers']['max_pairs']:,} pairs, "
          f"{meta['neural_mappers']['epochs']} epochs, early stopping patience {meta['neural_mappers']['patience']}.",
          f"- English-only bridging pool: {meta['english_bridge_pool']}.", ""]
    for task, info in meta["task_info"].items():
        trows = [r for r in rows if r["task"] == task]
        if not trows:
            continue
        md += [f"## {info['title']}", ""]
        for note in info.get("notes", []):
            md.append(f"- {note}")
        if info.get("notes"):
            md.append("")
        for setting in _settings(meta, rows):
            srows = [r for r in trows if r["setting"] == setting]
            if not srows:
                continue
            md += [f"### {setting_title(setting)}", ""]
            if task == "sts":
                md += sts_table(srows)
            elif task == "tatoeba":
                md += retrieval_table(srows)
            else:
                md += ["Accuracy:", ""] + classification_table(srows, "accuracy") + [""]
                md += ["Macro-F1:", ""] + classification_table(srows, "macro_f1") + [""]
            md.append("")
    md += fits_table(meta.get("aligner_fits", []))
    md += ["## Plots", "", "![accuracy by method](accuracy_by_method.png)", "",
           "![PCA before and after alignment](pca_sib200_ko.png)", ""]
    return "\n".join(md)


def fits_table(fits: list[dict[str, Any]]) -> list[str]:
    """Fit time and peak memory of every aligner the run fitted (each fitted once, then reused)."""
    if not fits:
        return []
    lines = ["## Aligner fits: time and memory", "",
             "Each aligner is fitted once and reused across tasks. Peak memory is the numpy allocation peak "
             "during `fit_embeddings` (tracemalloc); the neural mappers' torch tensors are not traced.", "",
             "| setting | pairs | task | lang | mapper | pairs fitted | dims | fit s | peak MiB |",
             "|---|---|---|---|---|---:|---|---:|---:|"]
    for f in fits:
        dims = "x".join(str(d) for d in f.get("dim", []))
        mapper = f["mapper"] + (f" (fitted as {f['fitted_as']})" if f.get("fitted_as") else "")
        lines.append(f"| {f['setting']} | {f['pairs']} | {f['task']} | {f['lang']} | {mapper} | "
                     f"{f['n_pairs']:,} | {dims} | {f['fit_seconds']:.1f} | {f['fit_peak_mib']:.1f} |")
    return lines + [""]


def sts_table(rows: list[dict[str, Any]]) -> list[str]:
    en = [r for r in rows if r["lang"] == "en"]
    rows = [r for r in rows if r["lang"] != "en"]
    langs = _langs(rows)
    lines = []
    if en:
        lines += [f"English STS-B test, {en[0]['note'].split(' with ')[-1]}: Spearman "
                  f"{en[0]['metrics']['spearman'] * 100:.1f}", ""]
    lines += ["Spearman x 100 (difference to raw cosine in parentheses):", "",
              "| method | " + " | ".join(langs) + " | mean |", "|---|" + "---:|" * (len(langs) + 1)]
    for method, by_lang in _rows_by_method(rows).items():
        cells, vals = [], []
        for lang in langs:
            r = by_lang.get(lang)
            if r is None:
                cells.append("n/a")
                continue
            v = r["metrics"]["spearman"]
            vals.append(v)
            d = r.get("vs_raw")
            cells.append(_fmt(v) + (f" ({d['spearman_diff'] * 100:+.1f})" if d else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {_fmt(float(np.mean(vals))) if vals else 'n/a'} |")
    return lines + [""]


def retrieval_table(rows: list[dict[str, Any]]) -> list[str]:
    langs = _langs(rows)
    head = " | ".join(f"{l} en→xx | {l} xx→en" for l in langs)
    lines = []
    for method_name in ("cosine", "csls"):
        lines += [f"Top-1 accuracy, {method_name}:", "",
                  f"| method | {head} | mean |", "|---|" + "---:|" * (2 * len(langs) + 1)]
        for method, by_lang in _rows_by_method(rows).items():
            cells, vals = [], []
            for lang in langs:
                r = by_lang.get(lang)
                if r is None:
                    cells += ["n/a", "n/a"]
                    continue
                m = r["metrics"][method_name]
                cells += [_fmt(m["en_to_xx"]), _fmt(m["xx_to_en"])]
                vals += [m["en_to_xx"], m["xx_to_en"]]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {_fmt(float(np.mean(vals))) if vals else 'n/a'} |")
        lines.append("")
    return lines


def stdout_summary(result: dict[str, Any]) -> str:
    """A compact table: mean accuracy (classification), Spearman (STS), top-1 (retrieval) per method."""
    rows = result["results"]
    out = []
    for task in result["meta"]["task_info"]:
        trows = [r for r in rows if r["task"] == task and r["lang"] != "en"]
        if not trows:
            continue
        out.append(f"\n== {task}")
        langs = _langs(trows)
        settings = _settings(result["meta"], rows)
        w = max(5, *(len(s) for s in settings))
        out.append(f"{'setting':<{w}} {'method':<58} " + " ".join(f"{l:>6}" for l in langs) + f" {'mean':>6}")
        for setting in settings:
            for method, by_lang in _rows_by_method([r for r in trows if r["setting"] == setting]).items():
                vals: list[float | None] = []
                for lang in langs:
                    r = by_lang.get(lang)
                    if r is None:
                        vals.append(None)
                    elif task == "sts":
                        vals.append(r["metrics"]["spearman"])
                    elif task == "tatoeba":
                        vals.append(r["metrics"]["csls"]["mean"])
                    else:
                        vals.append(r["metrics"]["accuracy"])
                ok = [v for v in vals if v is not None]
                mean = _fmt(float(np.mean(ok))) if len(ok) == len(vals) else "n/a"
                out.append(f"{setting:<{w}} {method[:58]:<58} " + " ".join(f"{_fmt(v):>6}" for v in vals)
                           + f" {mean:>6}")
    metric_note = "(classification: accuracy; sts: Spearman; tatoeba: CSLS top-1 mean of both directions)"
    return metric_note + "\n" + "\n".join(out)


def plot_accuracy(result: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["results"] if "accuracy" in r["metrics"] and r["lang"] in LANG_ORDER]
    tasks = [t for t in result["meta"]["task_info"] if any(r["task"] == t for r in rows)]
    if not tasks:
        tasks = []
    heights = []
    groups = []
    for t in tasks:
        labels = []
        for setting in _settings(result["meta"], rows):
            for m in _rows_by_method([r for r in rows if r["task"] == t and r["setting"] == setting]):
                labels.append((setting, m))
        groups.append((t, labels))
        heights.append(max(2.5, 0.22 * len(labels) * 1.0 + 1))
    fig, axes = plt.subplots(len(groups) or 1, 1, figsize=(11, sum(heights) or 3), squeeze=False,
                             gridspec_kw={"height_ratios": heights or [1]})
    colors = {"ko": "#1f77b4", "ja": "#d62728", "zh": "#2ca02c"}
    # strict=False: with no groups there is still one (empty) axis
    for ax, (task, labels) in zip(axes[:, 0], groups, strict=False):
        y = np.arange(len(labels))
        for k, lang in enumerate(LANG_ORDER):
            vals = []
            for setting, m in labels:
                r = [x for x in rows if x["task"] == task and x["setting"] == setting and x["method"] == m
                     and x["lang"] == lang]
                vals.append(r[0]["metrics"]["accuracy"] * 100 if r else np.nan)
            ax.barh(y + (k - 1) * 0.27, vals, height=0.27, color=colors[lang], label=lang)
        ax.set_yticks(y)
        ax.set_yticklabels([f"{_short(s)} · {m}" for s, m in labels], fontsize=7)
        ax.invert_yaxis()
        zs = [x["metrics"]["accuracy"] * 100 for x in rows if x["task"] == task and x["mode"] == "zero-shot"
              and x["setting"] == "same"]
        if zs:
            ax.axvline(float(np.mean(zs)), color="k", ls="--", lw=0.8, label="zero-shot mean")
        ax.set_xlabel("accuracy (%)")
        ax.set_title(result["meta"]["task_info"][task]["title"], fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _short(setting: str) -> str:
    return {"two": "2enc", "same": "1enc"}.get(setting, setting.split(":", 1)[-1])


def _pca2(*arrays: np.ndarray) -> list[np.ndarray]:
    Z = np.concatenate(arrays, axis=0).astype(np.float64)
    mu = Z.mean(axis=0)
    _, _, Vt = np.linalg.svd(Z - mu, full_matrices=False)
    return [(A - mu) @ Vt[:2].T for A in arrays]


def plot_pca(plot_data: dict[str, Any], path: Path) -> bool:
    if not plot_data:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(plot_data.values()))
    panels = [("raw: use-multilingual en vs ko (zero-shot space)", first["en_raw_same"], first["ko_raw"])]
    for d in plot_data.values():
        src = {"in-domain": f"in-domain {d['n']}", "libreoffice": "LibreOffice",
               "english-bridge": "English-only"}[d["source"]]
        enc = "use-multilingual" if d["setting"] == "same" else "minilm"
        panels.append((f"Rev-LangAlign default [{src}]: {enc} en vs ko mapped", d["en_source"], d["ko_mapped"]))
    panels = panels[:4]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, E, K) in zip(axes[0], panels, strict=True):
        pe, pk = _pca2(E, K)
        n = min(len(pe), len(pk))
        for i in range(0, n, 4):
            ax.plot([pe[i, 0], pk[i, 0]], [pe[i, 1], pk[i, 1]], color="0.8", lw=0.5, zorder=0)
        ax.scatter(pe[:, 0], pe[:, 1], s=8, c="#1f77b4", label="English")
        ax.scatter(pk[:, 0], pk[:, 1], s=8, c="#d62728", marker="x", label="Korean")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7)
    fig.suptitle("SIB-200 test sentences (PCA of each panel's vectors; grey lines join translations)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write_outputs(result: dict[str, Any], plot_data: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "benchmark.json", "markdown": out / "benchmark.md",
             "accuracy_plot": out / "accuracy_by_method.png", "pca_plot": out / "pca_sib200_ko.png"}
    plot_accuracy(result, paths["accuracy_plot"])
    if not plot_pca(plot_data, paths["pca_plot"]):
        paths.pop("pca_plot")
    result["meta"]["outputs"] = {k: p.name for k, p in paths.items()}
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False, allow_nan=True) + "\n", encoding="utf-8")
    os.replace(tmp, paths["json"])
    paths["markdown"].write_text(render_markdown(result) + "\n", encoding="utf-8")
    return paths
