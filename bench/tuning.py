"""Does tuning MiniLM on the task (langalign's optional first step) help transfer?

For each task (SIB-200 topics, SST-2 sentiment, LibreOffice help modules), on a seeded English
training sample:

1. tune ``minilm`` in task mode (``EncoderTuner``; early stopping on the task's dev split; the
   test splits are used for the final report only, never for a choice);
2. train the same logistic-regression head on English vectors of the untuned and of the tuned
   MiniLM, and score it in English and, through the English-only bridge
   (``LangAlign(minilm_or_tuned, "use-multilingual").fit(english, english)``, Rev-LangAlign), in
   Korean, Japanese and Chinese;
3. compare with ``use-multilingual`` zero-shot with the same head.

Before that, the two task losses (softmax, SetFit contrastive) are compared on the SIB-200 dev
split with the same settings; the better one tunes every task. Tuning runs with 2 torch threads;
its wall time and the process's peak RSS while tuning are recorded.

    python bench/tuning.py --out results            # about 15-25 minutes on 2 busy cores
    python bench/tuning.py --out /tmp/t --n-train 120 --n-test 60 --tasks sib200   # a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import langalign as la
from langalign.scale.cache import CachedEncoder
from langalign.evaluation import classification_report, mcnemar
from langalign.transfer import CrossLingualClassifier

LANGS = ("ko", "ja", "zh")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- data -------------------------------------------------------------------------------------
def _sample(texts: list[str], labels: list[Any], n: int | None, seed: int) -> tuple[list[str], list[Any]]:
    if n is None or n >= len(texts):
        return list(texts), list(labels)
    idx = np.sort(np.random.default_rng(seed).choice(len(texts), n, replace=False))
    return [texts[i] for i in idx], [labels[i] for i in idx]


def load_tasks(names: list[str], n_train: int, n_dev: int, n_test: int, seed: int) -> dict[str, dict]:
    from langalign.data import load_libreoffice_help, load_sentiment, load_sib200

    tasks: dict[str, dict] = {}
    if "sib200" in names:
        tr = load_sib200("en", "train")
        dv = load_sib200("en", "dev")
        tests = {lang: (load_sib200(lang, "test").texts, load_sib200(lang, "test").labels) for lang in ("en",) + LANGS}
        tasks["sib200"] = {"title": "SIB-200 topics (7 classes)", "train": _sample(tr.texts, tr.labels, n_train, seed),
                           "dev": (dv.texts, dv.labels),
                           "tests": {k: _sample(list(v[0]), list(v[1]), n_test, seed) for k, v in tests.items()},
                           "notes": "train: seeded sample of the 701 English train sentences; dev: the 99 English "
                                    "dev sentences; test: 204 per language (FLORES translations)"}
    if "sentiment" in names:
        tr = load_sentiment("en", "train", max_examples=n_train, seed=seed)
        dv = load_sentiment("en", "dev", max_examples=n_dev, seed=seed)
        tests = {}
        for lang in ("en",) + LANGS:
            t = load_sentiment(lang, "test", max_examples=n_test, seed=seed)
            tests[lang] = (list(t.texts), list(t.labels))
        tasks["sentiment"] = {"title": "Sentiment (binary)", "train": (list(tr.texts), list(tr.labels)),
                              "dev": (list(dv.texts), list(dv.labels)), "tests": tests,
                              "notes": "train/dev: seeded samples of SST-2 train/dev sentences (6+ words); test: "
                                       "SST-2 (GLUE dev) en, NSMC ko, JRTE ja, ChnSentiCorp zh, seeded samples"}
    if "libreoffice" in names:
        try:
            tr = load_libreoffice_help("ko", "train")
        except la.DataError as e:
            _log(f"LibreOffice task skipped: {e}")
        else:
            dv = load_libreoffice_help("ko", "dev")
            tests = {}
            te_ko = load_libreoffice_help("ko", "test")
            tests["en"] = _sample(list(te_ko.source), list(te_ko.meta["label"]), n_test, seed)
            for lang in LANGS:
                te = load_libreoffice_help(lang, "test")
                tests[lang] = _sample(list(te.target), list(te.meta["label"]), n_test, seed)
            tasks["libreoffice"] = {
                "title": "LibreOffice help modules (in domain)",
                "train": _sample(list(tr.source), list(tr.meta["label"]), n_train, seed),
                "dev": _sample(list(dv.source), list(dv.meta["label"]), n_dev, seed), "tests": tests,
                "notes": "English sides of the en-ko train/dev splits (seeded samples); test: target sides of the "
                         "en-xx test splits (pages disjoint from train), English side of en-ko test for en; "
                         "labels are skewed, read macro-F1"}
    return tasks


# -- tuning, in a child process ---------------------------------------------------------------
def tune(task: dict, loss: str, args, workdir: Path, name: str) -> tuple[Any, dict[str, Any]]:
    """Run ``langalign tune`` as its own process: its wall time, CPU time and peak RSS are then the
    tuning's alone (``os.wait4`` gives that child's resource use), as a user would see them."""
    from langalign.data import write_table

    folder = workdir / name
    write_table(workdir / f"{name}.train.jsonl", {"text": task["train"][0], "label": task["train"][1]})
    write_table(workdir / f"{name}.dev.jsonl", {"text": task["dev"][0], "label": task["dev"][1]})
    cmd = [sys.executable, "-m", "langalign.cli", "tune", "--base", "minilm", "--mode", "task",
           "--data", str(workdir / f"{name}.train.jsonl"), "--dev", str(workdir / f"{name}.dev.jsonl"),
           "--output", str(folder), "--overwrite", "--loss", loss, "--epochs", str(args.epochs),
           "--patience", str(args.patience), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
           "--max-seq-length", str(args.max_seq_length), "--threads", str(args.threads), "--device", "cpu",
           "--seed", str(args.seed)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"langalign tune failed ({proc.returncode}): {err.strip()[-2000:]}")
    meta = json.loads((folder / "langalign_tuning.json").read_text(encoding="utf-8"))
    ds = meta["dev_scores"]
    info = {"loss": loss, "command": " ".join(["langalign", *cmd[3:]]),
            "seconds": meta["seconds"], "process_wall_seconds": round(wall, 1),
            "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
            "dev_before": ds["before"], "dev_best": ds["best"], "dev_per_epoch": ds["per_epoch"],
            "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]),
            "steps": meta["history"][-1]["steps"], "n_train": meta["data"]["n_train"],
            "n_dev": meta["data"]["n_dev"], "fingerprint": meta["fingerprint"], "stdout": out.strip()}
    _log(f"  tuned ({loss}): dev accuracy {info['dev_before']:.3f} -> {info['dev_best']:.3f} (epochs "
         f"{info['dev_per_epoch']}), training {info['seconds']:.0f} s (process: {info['process_wall_seconds']:.0f} s "
         f"wall, {info['process_cpu_seconds']:.0f} s CPU, peak RSS {info['peak_rss_mb']:.0f} MB, load "
         f"{info['load_average_before']:.1f})")
    return la.load_encoder(str(folder)), info


def _scores(y_true: list[Any], pred: np.ndarray) -> dict[str, float]:
    r = classification_report(np.array(y_true), pred)
    return {"accuracy": round(float(r["accuracy"]), 4), "macro_f1": round(float(r["macro_f1"]), 4)}


def evaluate(task: dict, encoders: dict[str, Any], use: Any) -> dict[str, Any]:
    """Accuracy / macro-F1 of one head per encoder, in English and (bridge / zero-shot) in ko/ja/zh."""
    Xtr, ytr = task["train"]
    pool = list(dict.fromkeys(list(Xtr) + list(task["dev"][0])))  # English only: no labels, no test text
    U_pool = use.encode(pool)
    U_tr = use.encode(Xtr)
    U_test = {lang: use.encode(t[0]) for lang, t in task["tests"].items()}
    results: dict[str, Any] = {}
    preds: dict[str, dict[str, np.ndarray]] = {}
    zs = CrossLingualClassifier(use, mode="zero-shot").fit_embeddings(U_tr, ytr)
    results["use-multilingual zero-shot"] = {}
    preds["use-multilingual zero-shot"] = {}
    for lang, (_, yt) in task["tests"].items():
        p = zs.predict_embeddings(U_test[lang])
        preds["use-multilingual zero-shot"][lang] = p
        results["use-multilingual zero-shot"][lang] = _scores(yt, p)
    for label, enc in encoders.items():
        t0 = time.perf_counter()
        X_pool = enc.encode(pool)
        X_tr = enc.encode(Xtr)
        X_en = enc.encode(task["tests"]["en"][0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bridge = la.LangAlign(enc, use, seed=0).fit_embeddings(X_pool, U_pool)
        own = CrossLingualClassifier(enc, mode="zero-shot").fit_embeddings(X_tr, ytr)
        rev = CrossLingualClassifier(bridge, mode="reverse").fit_embeddings(X_tr, ytr)
        name = f"{label} + English-only bridge"
        results[name], preds[name] = {}, {}
        p = own.predict_embeddings(X_en)
        results[name]["en"], preds[name]["en"] = _scores(task["tests"]["en"][1], p), p
        for lang in LANGS:
            p = rev.predict_embeddings(U_test[lang])
            results[name][lang], preds[name][lang] = _scores(task["tests"][lang][1], p), p
        _log(f"  {label}: encoded and scored in {time.perf_counter() - t0:.0f} s; "
             + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in results[name].items()))
    # tuned vs untuned, per language (McNemar on the same test items)
    names = [n for n in results if n.startswith("minilm")]
    sig = {}
    if len(names) == 2:
        a, b = names
        for lang, (_, yt) in task["tests"].items():
            m = mcnemar(np.array(yt), preds[a][lang], preds[b][lang])
            sig[lang] = {"p_value": round(float(m["p_value"]), 4)}
    return {"scores": results, "tuned_vs_untuned_mcnemar": sig, "pool_size": len(pool),
            "n_test": {lang: len(t[0]) for lang, t in task["tests"].items()}}


# -- report -----------------------------------------------------------------------------------
def render(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = ["# Tuning MiniLM before alignment (`bench/tuning.py`)", "",
             f"Run {result['date']}, commit `{result['commit']}`, {result['machine']}; total {result['total_minutes']} "
             f"min. Settings: {s['n_train']} English training examples per task (seeded sample), "
             f"epochs {s['epochs']}, patience {s['patience']}, batch {s['batch_size']}, lr {s['lr']}, max_seq_length "
             f"{s['max_seq_length']} while tuning, {s['threads']} torch threads, seed {s['seed']}; token embeddings "
             "frozen (task-mode default). Head: logistic regression (`logreg`) on the same English examples. "
             "ko/ja/zh through the English-only bridge `LangAlign(encoder, \"use-multilingual\").fit(english, "
             "english)` (Rev-LangAlign), fitted on the task's English train + dev texts.", ""]
    lc = result.get("loss_choice")
    lines += ["Tuning runs as its own `langalign tune` process (wall and CPU time, peak RSS of that process). The "
              "machine's 2 cores were shared with other jobs (load average at the start of each run below): "
              "wall times vary several-fold with the load, CPU seconds less so.", ""]
    lines += ["## Tuning runs", "",
              "| task | loss | dev acc. before | after (best epoch) | per epoch | steps | training loop | "
              "process wall / CPU | peak RSS | load |", "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    runs = [("SIB-200 (loss choice)", r) for r in (lc["runs"] if lc else [])]
    runs += [(t["title"].split(" (")[0], t["tuning"]) for name, t in result["tasks"].items()
             if not (lc and name == "sib200")]
    for task_name, r in runs:
        lines.append(f"| {task_name} | {r['loss']} | {100 * r['dev_before']:.1f} | {100 * r['dev_best']:.1f} "
                     f"({r['best_epoch']}) | {', '.join(f'{100 * v:.1f}' for v in r['dev_per_epoch'])} | "
                     f"{r['steps']} | "
                     f"{r['seconds']:.0f} s | {r['process_wall_seconds']:.0f} s / {r['process_cpu_seconds']:.0f} s | "
                     f"{r['peak_rss_mb']:.0f} MB | {r['load_average_before']:.1f} |")
    lines.append("")
    if lc:
        lines += [f"Loss choice on SIB-200 dev: **{lc['chosen']}** ({lc['why']}); it tunes every task below.", ""]
    for _name, t in result["tasks"].items():
        lines += [f"## {t['title']}", "", t["notes"] + f"; bridge pool {t['eval']['pool_size']} English texts; "
                  f"test sizes {t['eval']['n_test']}.", ""]
        for metric in ("accuracy", "macro_f1"):
            lines += [f"{'Accuracy' if metric == 'accuracy' else 'Macro-F1'} (%):", "",
                      "| encoder (English head) | en | ko | ja | zh | mean ko/ja/zh |",
                      "|---|---:|---:|---:|---:|---:|"]
            for row, by_lang in t["eval"]["scores"].items():
                vals = [by_lang[lang][metric] for lang in ("en",) + LANGS]
                mean = float(np.mean(vals[1:]))
                lines.append(f"| {row} | " + " | ".join(f"{100 * v:.1f}" for v in vals) + f" | {100 * mean:.1f} |")
            lines.append("")
        sig = t["eval"]["tuned_vs_untuned_mcnemar"]
        if sig:
            lines += ["Tuned vs untuned MiniLM, McNemar p-values: "
                      + ", ".join(f"{lang} {v['p_value']:.3f}" for lang, v in sig.items()) + ".", ""]
    if result.get("skipped"):
        lines += ["Skipped: " + "; ".join(result["skipped"]), ""]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results")
    ap.add_argument("--tasks", default="sib200,sentiment,libreoffice")
    ap.add_argument("--n-train", type=int, default=240)
    ap.add_argument("--n-dev", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=204)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--patience", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-seq-length", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--losses", default="softmax,contrastive", help="losses compared on SIB-200 dev")
    args = ap.parse_args()
    t_start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    tasks = load_tasks(names, args.n_train, args.n_dev, args.n_test, args.seed)
    skipped = [f"{n} (data not available)" for n in names if n not in tasks]
    minilm = CachedEncoder(la.load_encoder("minilm"))
    use = CachedEncoder(la.load_encoder("use-multilingual"))
    result: dict[str, Any] = {"settings": vars(args), "tasks": {}, "skipped": skipped}
    workdir = Path(tempfile.mkdtemp(prefix="langalign-bench-tuning-"))

    losses = [x.strip() for x in args.losses.split(",") if x.strip()]
    chosen, tuned = losses[0], {}
    if "sib200" in tasks and len(losses) > 1:
        _log(f"loss choice on SIB-200 dev: {losses}")
        runs = []
        for loss in losses:
            tuned[loss] = tune(tasks["sib200"], loss, args, workdir, f"sib200-{loss}")
            runs.append(tuned[loss][1])
        best = max(runs, key=lambda r: (r["dev_best"], -r["process_cpu_seconds"]))
        chosen = best["loss"]
        why = (f"higher best dev accuracy, {100 * best['dev_best']:.1f} vs "
               + ", ".join(f"{100 * r['dev_best']:.1f} ({r['loss']})" for r in runs if r is not best))
        if all(r["dev_best"] == best["dev_best"] for r in runs):
            why = "equal dev accuracy; the cheaper one"
        result["loss_choice"] = {"runs": runs, "chosen": chosen, "why": why}
    for name, task in tasks.items():
        _log(f"{name}: {len(task['train'][0])} train, {len(task['dev'][0])} dev")
        if name == "sib200" and chosen in tuned:
            enc, info = tuned[chosen]
        else:
            enc, info = tune(task, chosen, args, workdir, f"{name}-{chosen}")
        ev = evaluate(task, {"minilm": minilm, "minilm tuned": enc}, use)
        result["tasks"][name] = {"title": task["title"], "notes": task["notes"], "tuning": info, "eval": ev}
    shutil.rmtree(workdir, ignore_errors=True)
    result["total_minutes"] = round((time.perf_counter() - t_start) / 60, 1)
    result["date"] = time.strftime("%Y-%m-%d")
    result["commit"] = _commit()
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "tuning.md").write_text(render(result), encoding="utf-8")
    _log(f"wrote {out / 'tuning.md'} and {out / 'tuning.json'} ({result['total_minutes']} min)")


if __name__ == "__main__":
    main()
