"""The tuned pipeline on the benchmark's other classification tasks (issue 23): tune e5-small on the English task
data, then read Korean, Japanese and Chinese.

``--task sentiment``: SIB-200 (``bench/tuned_pipeline.py``) has parallel training sentences in every language;
sentiment has none, so the only pairs are out of domain (LibreOffice help) and ``adapt`` must keep a map that does
not fit the reviews from costing accuracy. ``--task libreoffice``: module classification of LibreOffice help
paragraphs, where the same corpus gives in-domain pairs. ``--task nli``: 3-way NLI, trained on English SNLI pairs and
read on KorNLI / JNLI / XNLI-zh; each sentence of a pair is encoded (and mapped) alone, then the head reads
``[u, v, |u - v|, u * v]``. Its only in-domain translations are the XNLI dev sets, which are the ko/zh dev sets here,
so realign uses the out-of-domain LibreOffice pairs, as for sentiment. ``--task sib200``: SIB-200 topics (FLORES news
and travel text), the task of ``bench/tuned_pipeline.py`` (give it that bench's tuned folder with ``--tuned``), here
realigned with the out-of-domain LibreOffice pairs that bench does not try. Steps:

1. **Tune** e5-small on a seeded ``--tune-n`` of the benchmark's English training texts (task mode, softmax loss,
   ``--lr``: the setting chosen on SIB-200 dev), with a seeded 1,000 English dev texts for early stopping.
2. **Systems**, each a logistic-regression head (the library default) trained on the benchmark's English training
   texts: untuned zero-shot; tuned zero-shot; tuned + realign on LibreOffice train pairs (the tuned encoder on both
   sides, ``--pairs`` seeded pairs per language), reverse, reverse after ``adapt`` on the unlabelled inputs being
   classified (the benchmark's ``+adapt``), or forward; tuned + self-bridge (the untuned model's target vectors
   mapped into the tuned space, fitted on English pool text alone).
3. **Choice on dev**: mapper, direction and adapt per system, and the best tuned pipeline, by the task's metric
   (sentiment: accuracy; LibreOffice: macro-F1, its labels are skewed) averaged over the target dev sets
   (sentiment: JRTE dev for ja, ChnSentiCorp dev for zh, NSMC (ko) has no dev split, so ko follows the choice;
   LibreOffice: each language's dev split, pages disjoint from train and test).
4. **Test, once**: the benchmark's test sets, McNemar (on correct/incorrect) against the untuned zero-shot per
   language.

    python bench/tuned_tasks.py --task sentiment --out results/tuned_sentiment
    python bench/tuned_tasks.py --task libreoffice --out results/tuned_libreoffice
    python bench/tuned_tasks.py --task nli --out results/tuned_nli
    python bench/tuned_tasks.py --task sib200 --out results/tuned_sib200_libreoffice_pairs
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tuned_pipeline import Vectors, acc, choose_on_dev, head, log, sib200  # noqa: E402

import langalign as la  # noqa: E402
from langalign import LangAlign  # noqa: E402
from langalign.benchmark.tasks import load_libreoffice_task, load_nli_task, load_sentiment_task  # noqa: E402
from langalign.data import load_english_pool, load_libreoffice_help, load_nli, load_sentiment  # noqa: E402
from langalign.data.home import data_home, find_reference_data  # noqa: E402
from langalign.evaluation import mcnemar  # noqa: E402
from langalign.heads import pair_features  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from langalign.mappers import make_mapper  # noqa: E402

LANGS = ("ko", "ja", "zh")
TASKS = {"sentiment": {"dev_langs": ("ja", "zh"), "metric": "accuracy"},  # NSMC (ko) has no dev split
         "libreoffice": {"dev_langs": LANGS, "metric": "macro_f1"},
         "nli": {"dev_langs": LANGS, "metric": "accuracy"},  # KorNLI dev, JNLI valid, XNLI-zh dev
         "sib200": {"dev_langs": LANGS, "metric": "accuracy"}}


def encode(vec: Any, items: list[Any]) -> Any:
    """Vectors of texts, or a (first, second) pair of arrays for (text, text) items."""
    if items and isinstance(items[0], tuple):
        return vec([a for a, _ in items]), vec([b for _, b in items])
    return vec(items)


def mapped(fn: Any, X: Any) -> Any:
    """``fn`` applied to the vectors, to each side of a pair alone (as the library maps pair inputs)."""
    return tuple(fn(x) for x in X) if isinstance(X, tuple) else fn(X)


def features(X: Any) -> Any:
    """What the head reads: the vectors, or ``[u, v, |u - v|, u * v]`` of a pair."""
    return pair_features(*X) if isinstance(X, tuple) else X


def stacked(X: Any) -> Any:
    """Every sentence vector of X as one array (what ``adapt`` learns the inputs' statistics from)."""
    return np.vstack(X) if isinstance(X, tuple) else X


def nli_items(ds: Any) -> list[tuple[str, str]]:
    return list(zip(ds.texts, ds.text_pairs, strict=True))


def macro_f1(pred: Any, gold: list[str]) -> float:
    return float(f1_score(list(gold), [str(p) for p in pred], average="macro"))


class Data:
    """English training and dev texts, target dev and (lazily) test sets of one task."""

    def __init__(self, task: str, args: argparse.Namespace, root: Path):
        self.task = task
        if task == "sentiment":
            en = load_sentiment("en", "train", max_examples=4000, seed=args.seed, root=root)  # the benchmark's
            self.train_x, self.train_y = list(en.texts), list(en.labels)
            ed = load_sentiment("en", "dev", max_examples=args.dev_n, seed=args.seed, root=root)
            self.en_dev = (list(ed.texts), list(ed.labels))
            self.dev = {}
            for lang in TASKS[task]["dev_langs"]:
                d = load_sentiment(lang, "dev", max_examples=args.dev_n, seed=args.seed, root=root)
                self.dev[lang] = (list(d.texts), list(d.labels))
        elif task == "sib200":
            self._sib = sib200(root)  # row i is one sentence in every language
            self.train_x, self.train_y = self._sib["en"]["train"]
            self.en_dev = self._sib["en"]["dev"]
            self.dev = {lang: self._sib[lang]["dev"] for lang in LANGS}
        elif task == "nli":
            bench = load_nli_task(LANGS, root, args.seed)  # the benchmark's English training pairs
            self.train_x, self.train_y = list(bench.train_items), list(bench.train_labels)
            ed = load_nli("en", "dev", max_examples=args.dev_n, seed=args.seed, root=root)  # XNLI dev-en
            self.en_dev = (nli_items(ed), list(ed.labels))
            self.dev = {}
            for lang in LANGS:
                d = load_nli(lang, "dev", max_examples=args.dev_n, seed=args.seed, root=root)
                self.dev[lang] = (nli_items(d), list(d.labels))
        else:
            bench = load_libreoffice_task(LANGS, None, args.seed)  # the benchmark's English training set
            self.train_x, self.train_y = list(bench.train_items), list(bench.train_labels)
            known = set(self.train_y)
            self.dev = {}
            for lang in LANGS:
                d = load_libreoffice_help(lang, "dev").sample(args.dev_n, args.seed)
                keep = [i for i, lab in enumerate(d.meta["label"]) if lab in known]
                self.dev[lang] = ([d.target[i] for i in keep], [d.meta["label"][i] for i in keep])
                if lang == "ko":  # the English side of the ko dev pages: the tuner's early stopping
                    self.en_dev = ([d.source[i] for i in keep], [d.meta["label"][i] for i in keep])
        self._args, self._root = args, root

    def tests(self) -> dict[str, tuple[list[str], list[str]]]:
        if self.task == "sib200":
            return {lang: self._sib[lang]["test"] for lang in LANGS}
        if self.task == "sentiment":
            t = load_sentiment_task(LANGS, self._root, self._args.seed)
        elif self.task == "nli":
            t = load_nli_task(LANGS, self._root, self._args.seed)
        else:
            t = load_libreoffice_task(LANGS, None, self._args.seed)
        return {lang: (list(t.tests[lang][0]), list(t.tests[lang][1])) for lang in LANGS}


def tune(args: argparse.Namespace, texts: list[str], labels: list[str], dev: tuple[list[str], list[str]]) -> Any:
    folder = Path(args.tuned)
    meta_file = folder / "langalign_tuning.json"
    if meta_file.is_file():
        # A folder tuned with other settings would be measured under this run's name: refuse it.
        have = json.loads(meta_file.read_text(encoding="utf-8")).get("parameters", {})
        want = {"loss": args.loss, "epochs": args.epochs, "lr": args.lr, "max_seq_length": args.max_seq_length}
        differ = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        if differ:
            raise SystemExit(f"{folder} was tuned with other settings (have, asked): {differ}; "
                             "give another --tuned folder")
        log(f"reusing the tuned encoder in {folder}")
        return la.load_encoder(str(folder))
    rng = np.random.default_rng(args.seed)
    keep = np.sort(rng.permutation(len(texts))[:args.tune_n])
    log(f"tuning e5-small on {len(keep)} English {args.task} texts -> {folder}")
    return la.tune_encoder("e5-small", [texts[i] for i in keep], [labels[i] for i in keep], folder, dev=dev,
                           epochs=args.epochs, loss=args.loss, lr=args.lr, max_seq_length=args.max_seq_length,
                           num_threads=args.threads, seed=args.seed, show_progress=True)


def main(argv: list[str] | None = None, task: str | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASKS), default=task or "sentiment")
    ap.add_argument("--out", default=None, help="default: results/tuned_<task>")
    ap.add_argument("--tuned", default=None, help="the tuned encoder's folder (tuned here when it does not exist)")
    ap.add_argument("--tune-n", type=int, default=3000, help="English training texts the encoder is tuned on")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--loss", default="softmax")
    ap.add_argument("--lr", type=float, default=2e-5, help="the learning rate chosen on SIB-200 dev")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=2000, help="seeded LibreOffice train pairs per language")
    ap.add_argument("--pool", type=int, default=1500, help="English-pool sentences for the self-bridge")
    ap.add_argument("--mappers", default="default,centering,procrustes,ridge")
    ap.add_argument("--bridge-mappers", default="bridge,ridge")
    ap.add_argument("--dev-n", type=int, default=1000, help="seeded dev texts per language (and English)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dev-only", action="store_true", help="stop after the dev choices; the test sets are not read")
    args = ap.parse_args(argv)
    args.out = args.out or f"results/tuned_{args.task}"
    args.tuned = args.tuned or str(data_home() / "bench" / f"tuned-e5-small-{args.task}")
    t_start = time.perf_counter()
    root = find_reference_data()
    data = Data(args.task, args, root)
    dev_langs, metric_name = TASKS[args.task]["dev_langs"], TASKS[args.task]["metric"]
    metric = acc if metric_name == "accuracy" else macro_f1
    test_sets = None if args.dev_only else data.tests()
    train_x, train_y = data.train_x, data.train_y
    tuned = tune(args, train_x, train_y, data.en_dev)
    U, T = Vectors(la.load_encoder("e5-small")), Vectors(tuned)

    def texts(split: str, lang: str) -> list[str]:
        return data.dev[lang][0] if split == "dev" else test_sets[lang][0]  # type: ignore[index]

    def gold(split: str, lang: str) -> list[str]:
        return data.dev[lang][1] if split == "dev" else test_sets[lang][1]  # type: ignore[index]

    splits = ("dev",) if args.dev_only else ("dev", "test")
    langs_of = {"dev": dev_langs, "test": LANGS}
    V = {enc: {(s, lang): encode(vec, texts(s, lang)) for s in splits for lang in langs_of[s]}
         for enc, vec in (("untuned", U), ("tuned", T))}
    E = {"untuned": encode(U, train_x), "tuned": encode(T, train_x)}
    H = {enc: head().fit(features(E[enc]), train_y) for enc in E}
    english = {enc: metric(H[enc].predict(features(encode(vec, data.en_dev[0]))), data.en_dev[1])
               for enc, vec in (("untuned", U), ("tuned", T))}
    log(f"English dev {metric_name}: untuned {english['untuned']:.3f}, tuned {english['tuned']:.3f}")

    # Each candidate: system -> variant -> callable(split, lang) -> predictions
    candidates: dict[str, dict[str, Any]] = {
        "untuned zero-shot": {"-": lambda s, lang: H["untuned"].predict(features(V["untuned"][(s, lang)]))},
        "tuned zero-shot": {"-": lambda s, lang: H["tuned"].predict(features(V["tuned"][(s, lang)]))},
    }
    pairs = {}
    for lang in LANGS:
        pc = load_libreoffice_help(lang, "train").sample(args.pairs, args.seed)
        pairs[lang] = (T(list(pc.source)), T(list(pc.target)))
        log(f"LibreOffice pairs {lang}: {len(pc.source)}")
    realign: dict[str, Any] = {}
    for mapper in args.mappers.split(","):
        fitted = {lang: LangAlign(tuned, tuned, mapper=mapper, seed=args.seed).fit_embeddings(*pairs[lang])
                  for lang in LANGS}
        fwd_heads = {lang: head().fit(features(mapped(fitted[lang].to_target, E["tuned"])), train_y)
                     for lang in LANGS}

        def reverse(s: str, lang: str, f: dict = fitted) -> Any:
            return H["tuned"].predict(features(mapped(f[lang].to_source, V["tuned"][(s, lang)])))

        def reverse_adapt(s: str, lang: str, f: dict = fitted) -> Any:
            X = V["tuned"][(s, lang)]
            # the unlabelled inputs being classified, as the benchmark's +adapt
            f[lang].adapt(stacked(X), side="target")
            try:
                return H["tuned"].predict(features(mapped(f[lang].to_source, X)))
            finally:
                f[lang].adapted_ = {}

        def forward(s: str, lang: str, h: dict = fwd_heads) -> Any:
            return h[lang].predict(features(V["tuned"][(s, lang)]))

        realign.update({f"{mapper} reverse": reverse, f"{mapper} reverse+adapt": reverse_adapt,
                        f"{mapper} forward": forward})
    candidates["tuned + realign (LibreOffice pairs)"] = realign
    pool = load_english_pool(max_sentences=args.pool, seed=args.seed)
    P_u, P_t = U(pool), T(pool)
    bridges = {}
    for mapper in args.bridge_mappers.split(","):
        m = make_mapper(mapper).fit(P_u, P_t)  # untuned -> tuned, English text alone
        bridges[mapper] = lambda s, lang, m=m: H["tuned"].predict(
            features(mapped(m.transform, V["untuned"][(s, lang)])))
    candidates["tuned + self-bridge"] = bridges

    def dev_row(pred: Any) -> dict[str, float]:
        row = {lang: metric(pred("dev", lang), gold("dev", lang)) for lang in dev_langs}
        return {**row, "mean": float(np.mean([row[lang] for lang in dev_langs]))}

    dev_scores, chosen, best = choose_on_dev(candidates, dev_row)
    log(f"chosen on dev: {best} ({chosen[best]})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "command": f"python bench/{Path(sys.argv[0]).name} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "task": args.task, "metric": metric_name, "dev_langs": list(dev_langs),
        "tuning": json.loads((Path(tuned.folder) / "langalign_tuning.json").read_text(encoding="utf-8")),
        "english_dev": english, "dev": dev_scores, "chosen": chosen, "best_pipeline": best,
        "sizes": {"english_train": len(train_x), "english_dev": len(data.en_dev[0]), "pairs_per_lang": args.pairs,
                  "pool": len(pool), **{f"dev_{lang}": len(data.dev[lang][0]) for lang in dev_langs}}}
    payload["tuning"].pop("probe", None)
    payload["tuning"].get("base", {}).pop("probe", None)
    if not args.dev_only:
        test: dict[str, dict[str, Any]] = {}
        ref = {lang: candidates["untuned zero-shot"]["-"]("test", lang) for lang in LANGS}
        for system, variants in candidates.items():
            pred = variants[chosen[system]]
            row: dict[str, Any] = {"variant": chosen[system]}
            for lang in LANGS:
                p = pred("test", lang)
                row[lang] = metric(p, gold("test", lang))
                if metric_name != "accuracy":
                    row[f"{lang}_accuracy"] = acc(p, gold("test", lang))
                row[f"{lang}_p"] = mcnemar([str(v) for v in gold("test", lang)], [str(v) for v in p],
                                           [str(v) for v in ref[lang]])["p_value"]
            row["mean"] = float(np.mean([row[lang] for lang in LANGS]))
            test[system] = row
        payload["test"] = test
        payload["sizes"].update({f"test_{lang}": len(gold("test", lang)) for lang in LANGS})
    payload.update({"seconds": round(time.perf_counter() - t_start, 1),
                    "encode_seconds": round(U.seconds + T.seconds, 1),
                    "cpus": os.cpu_count(), "load_at_end": os.getloadavg()[0]})
    name = f"tuned_{args.task}_dev" if args.dev_only else f"tuned_{args.task}"
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    (out / f"{name}.md").write_text(to_markdown(payload), encoding="utf-8")
    log(f"wrote {out / name}.md and .json")


def to_markdown(p: dict[str, Any]) -> str:
    tm = p["tuning"]
    ds = tm.get("dev_scores", {})
    task, metric = p.get("task", "sentiment"), p.get("metric", "accuracy")
    dev_langs = p.get("dev_langs", ["ja", "zh"])
    what = {"sentiment": "sentiment, then read ko/ja/zh reviews",
            "libreoffice": "LibreOffice help modules, then read ko/ja/zh help paragraphs",
            "nli": "NLI (SNLI pairs), then read KorNLI / JNLI / XNLI-zh",
            "sib200": "SIB-200 topics, then read ko/ja/zh with out-of-domain (LibreOffice) pairs"}[task]
    lines = [f"# Tune e5-small on English {what}", "",
             f"`{p['command']}` ({p['seconds']:.0f}s, of which encoding {p['encode_seconds']:.0f}s; {p['cpus']} CPUs "
             f"shared, load {p['load_at_end']:.1f} at the end).", "",
             f"Tuning: e5-small, task mode, {tm['data']['n_train']:,} English training texts, parameters "
             f"{json.dumps({k: tm['parameters'].get(k) for k in ('loss', 'epochs', 'lr', 'max_seq_length')})}; "
             f"English dev accuracy (tuner's head) before {ds.get('before')}, best {ds.get('best')}; "
             f"{tm.get('seconds', 0) / 60:.0f} min on {tm.get('threads')} thread(s). English dev {metric} of "
             f"the library head: untuned {100 * p['english_dev']['untuned']:.1f}, "
             f"tuned {100 * p['english_dev']['tuned']:.1f}.",
             "", f"Sizes: {json.dumps(p['sizes'])}.", ""]
    if "test" in p:
        lines += ["## Test (read once, after the dev choices)", "",
                  f"Best tuned pipeline on dev: **{p['best_pipeline']}** ({p['chosen'][p['best_pipeline']]}). "
                  f"Scores: {metric} x100. `p` = McNemar (correct / incorrect) against the untuned zero-shot on the "
                  "same test texts.", "",
                  f"| system | variant (dev choice) | dev mean {'/'.join(dev_langs)} | ko | ja | zh | mean | "
                  "p ko / ja / zh |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for system, row in p["test"].items():
            d = p["dev"][system][row["variant"]]["mean"]
            name = f"**{system}**" if system == p["best_pipeline"] else system
            lines.append(f"| {name} | {row['variant']} | {100 * d:.1f} | " + " | ".join(
                f"{100 * row[lang]:.1f}" for lang in LANGS) + f" | {100 * row['mean']:.1f} | "
                + " / ".join(f"{row[f'{lang}_p']:.3f}" for lang in LANGS) + " |")
        lines.append("")
    sets = {"sentiment": "ja = JRTE dev, zh = ChnSentiCorp dev", "libreoffice": "each language's LibreOffice dev split",
            "nli": "ko = KorNLI dev, ja = JNLI valid, zh = XNLI-zh dev", "sib200": "each language's SIB-200 dev"}[task]
    lines += [f"## Dev, every variant ({metric} x100; {sets})", "",
              "| system | variant | " + " | ".join(dev_langs) + " | mean |",
              "|---|---|" + "---:|" * (len(dev_langs) + 1)]
    for system, variants in p["dev"].items():
        for variant, row in variants.items():
            mark = " (chosen)" if p["chosen"][system] == variant else ""
            lines.append(f"| {system} | {variant}{mark} | " + " | ".join(f"{100 * row[lang]:.1f}" for lang in dev_langs)
                         + f" | {100 * row['mean']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
