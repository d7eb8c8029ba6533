"""The benchmark runner: every task x language x method row, with fixed seeds.

Grid (documented in the report):

* settings: ``same`` (use-multilingual on both sides; the paper's setting) and
  ``two`` (minilm for English, use-multilingual for the target language); ``encoders`` (CLI
  ``--encoders``) names the multilingual encoders of the same-encoder setting: each other one adds
  ``same:<name>`` (e.g. ``same:e5-small``, e5-small on both sides), with its own zero-shot reference.
* baselines: zero-shot (same encoder, no map) and native / translate-train
  (a head trained on target-language training data) where such data exists.
  Zero-shot is impossible across two encoders; two-encoder rows are compared
  with the *same-encoder* zero-shot predictions.
* pair sources: ``in-domain`` N=100/300 seeded samples of the task's parallel
  data, ``libreoffice`` (LibreOffice help train pairs), ``english-bridge``
  (two encoders only: ``fit(english, english)`` on an English pool).
* mappers: centering (same encoder only), procrustes, default (= linear; with english-bridge
  pairs the bridge's residual MLP, as ``LangAlign.fit_bridge`` fits by default);
  the paper's ``mlp-paper`` (FC) and ``autoencoder-paper`` (AE) with
  in-domain 300 and english-bridge pairs (trained on at most
  ``NEURAL_MAX_PAIRS`` pairs; neural fits are the slowest part on CPU).
* LibreOffice-fitted aligners (same encoder) also get a ``+adapt`` row:
  Rev-LangAlign after ``LangAlign.adapt`` on the unlabelled test inputs.
* modes: LangAlign forward (head on English mapped into the target space)
  and Rev-LangAlign reverse (English head; target input mapped to English).
"""
from __future__ import annotations

import datetime as _dt
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..aligner import BRIDGE_MAPPER, LangAlign
from ..evaluation import classification_report, cosine_pairs, mcnemar, retrieval_scores, sts_scores
from ..transfer import CrossLingualClassifier
from ..heads import make_head
from ..mappers.neural import is_neural
from . import tasks as T

SETTINGS = {"same": ("use-multilingual", "use-multilingual"), "two": ("minilm", "use-multilingual")}
DEFAULT_ENCODERS = ("use-multilingual",)


def benchmark_settings(encoders: list[str] | tuple[str, ...] | None = None) -> dict[str, tuple[str, str]]:
    """``{setting: (source encoder, target encoder)}`` for the multilingual ``encoders`` (default: use-multilingual).

    use-multilingual is ``same`` (and brings ``two``, minilm -> use-multilingual); any other encoder E is
    ``same:E``, E on both sides.
    """
    from ..encoders import canonical_encoder_name, split_backend

    def loadable(name: str) -> str:
        # "+onnx" gives equal vectors faster, so it is kept for loading but not in the setting's name
        key = canonical_encoder_name(name)
        return key + "+onnx" if split_backend(name)[1] == "onnx" else key

    names = list(dict.fromkeys(loadable(e.strip()) for e in (encoders or DEFAULT_ENCODERS) if e.strip()))
    if not names:
        raise ValueError("encoders is empty: name at least one multilingual encoder (e.g. use-multilingual)")
    out = {("same" if e == "use-multilingual" else f"same:{split_backend(e)[0]}"): (e, e) for e in names}
    if "use-multilingual" in names:
        out["two"] = SETTINGS["two"]
    return out
PAPER_MAPPERS = ("mlp-paper", "autoencoder-paper")
NEURAL_MAX_PAIRS = 3000
NEURAL_PARAMS = {"epochs": 20, "patience": 3, "batch_size": 128}
IN_DOMAIN_NS = (100, 300)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Embeddings:
    """Encode every text once per encoder (disk cache + in-process dict) and hand out arrays."""

    def __init__(self, disk_cache: bool = True):
        self.disk_cache = disk_cache
        self._enc: dict[str, Any] = {}
        self._mem: dict[str, dict[str, np.ndarray]] = {}
        self.encoded: dict[str, int] = {}

    def encoder(self, name: str):
        if name not in self._enc:
            from ..encoders import load_encoder
            enc = load_encoder(name)
            if self.disk_cache:
                try:
                    from ..scale.cache import CachedEncoder
                    enc = CachedEncoder(enc)
                except ImportError:  # pragma: no cover
                    pass
            self._enc[name] = enc
            self._mem[name] = {}
        return self._enc[name]

    def get(self, name: str, texts: list[str]) -> np.ndarray:
        enc = self.encoder(name)
        mem = self._mem[name]
        missing = [t for t in dict.fromkeys(texts) if t not in mem]
        if missing:
            _log(f"  encoding {len(missing):,} texts with {name}")
            vecs = enc.encode(missing, show_progress=len(missing) >= 500)
            for t, v in zip(missing, np.asarray(vecs, dtype=np.float32), strict=True):
                mem[t] = v
            self.encoded[name] = self.encoded.get(name, 0) + len(missing)
        return np.stack([mem[t] for t in texts]).astype(np.float32)

    def items(self, name: str, items: list[Any], pair: bool) -> np.ndarray:
        if not pair:
            return self.get(name, items)
        a = self.get(name, [x[0] for x in items])
        b = self.get(name, [x[1] for x in items])
        return np.concatenate([a, b], axis=1)


def _method_label(mode: str, mapper: str | None, pairs: str | None, n: int | None) -> str:
    if mode in ("zero-shot", "native", "raw"):
        return {"zero-shot": "zero-shot (no map)", "native": "native (target train)", "raw": "raw (no map)"}[mode]
    name = "LangAlign" if mode == "forward" else "Rev-LangAlign"
    assert pairs is not None  # mapped rows always name their pairs
    src = {"in-domain": f"in-domain {n}", "libreoffice": f"LibreOffice {n}",
           "english-bridge": f"English-only {n}"}[pairs]
    return f"{name} {mapper} [{src}]"


def _head_description() -> str:
    p = make_head("logreg").get_params()
    prep = ", ".join(["L2-normalised" if p["normalize"] else "not normalised",
                      "standardised" if p["standardize"] else "not standardised"])
    return f"logreg (langalign default: {prep}, C={p['C']:g})"


class BenchmarkRunner:
    def __init__(self, data: Path, out: Path, task_names: list[str], langs: list[str], seed: int = 0,
                 quick: bool = False, home: Path | None = None, disk_cache: bool = True,
                 encoders: list[str] | None = None):
        self.data, self.out, self.seed, self.quick, self.home = Path(data), Path(out), seed, quick, home
        self.settings = benchmark_settings(encoders)
        self.task_names, self.langs = task_names, langs
        self.emb = Embeddings(disk_cache)
        self.results: list[dict[str, Any]] = []
        self._aligners: dict[tuple, tuple[LangAlign, dict]] = {}
        self._lo_pairs: dict[str, tuple[list[str], list[str]]] = {}
        self.pool: list[str] = []
        self.pool_desc = ""
        self.task_info: dict[str, Any] = {}
        self.plot_data: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.fits: list[dict[str, Any]] = []

    def _encoders_arg(self) -> str:
        names = [s for s, t in self.settings.values() if s == t]
        return "" if tuple(names) == DEFAULT_ENCODERS else f" --encoders {','.join(names)}"

    def _same(self, setting: str) -> bool:
        """One encoder on both sides (zero-shot, native and centering rows exist)."""
        s_enc, t_enc = self.settings[setting]
        return s_enc == t_enc

    # ---------------------------------------------------------------- grid
    def grid(self, task: str, setting: str, has_parallel: bool) -> list[tuple[str, int | None, str]]:
        """(pairs source, N, mapper) combinations for one task and setting."""
        out: list[tuple[str, int | None, str]] = []
        if self.quick:
            if self._same(setting):
                return [("in-domain", 300, "default")] if has_parallel else []
            return [("english-bridge", None, "default")]
        light = ["centering", "procrustes", "default"] if self._same(setting) else ["procrustes", "default"]
        sources: list[tuple[str, int | None]] = []
        if has_parallel:
            sources += [("in-domain", n) for n in IN_DOMAIN_NS]
        if task != "libreoffice":
            sources.append(("libreoffice", None))
        if not self._same(setting):
            sources.append(("english-bridge", None))
            sources = [s for s in sources if s != ("in-domain", 100)]
        for src, n in sources:
            mappers = list(light)
            big = (src == "in-domain" and n == 300) or src == "english-bridge"
            if big:
                mappers += list(PAPER_MAPPERS)
            out += [(src, n, m) for m in mappers]
        return out

    # ---------------------------------------------------------------- aligners
    def libreoffice_pairs(self, lang: str) -> tuple[list[str], list[str]]:
        if lang not in self._lo_pairs:
            from ..data import load_libreoffice_help
            pc = load_libreoffice_help(lang, "train", self.home).sample(T.LIBREOFFICE_PAIRS, self.seed)
            self._lo_pairs[lang] = (list(pc.source), list(pc.target))
        return self._lo_pairs[lang]

    def aligner(self, setting: str, task: Any, lang: str, source: str, n: int | None, mapper: str
                ) -> tuple[LangAlign, dict[str, Any]] | None:
        if source == "in-domain":
            par = getattr(task, "parallel", {}).get(lang)
            if par is None:
                return None
            key: tuple = (setting, task.name, lang, source, n, mapper)
        elif source == "libreoffice":
            key = (setting, "*", lang, source, None, mapper)
        else:
            key = (setting, "*", "*", source, None, mapper)
        if key in self._aligners:
            return self._aligners[key]
        if source == "in-domain":
            assert par is not None and n is not None  # checked above; in-domain rows have a size
            src_t, tgt_t = par
            idx = sorted(random.Random(self.seed).sample(range(len(src_t)), min(n, len(src_t))))
            src_t, tgt_t = [src_t[i] for i in idx], [tgt_t[i] for i in idx]
            desc = f"{task.parallel_source}: seeded {len(idx)} pairs"
        elif source == "libreoffice":
            src_t, tgt_t = self.libreoffice_pairs(lang)
            desc = f"LibreOffice help en-{lang} train: seeded {len(src_t):,} pairs"
        else:
            src_t = tgt_t = self.pool
            desc = self.pool_desc
        s_enc, t_enc = self.settings[setting]
        X = self.emb.get(s_enc, src_t)
        Y = self.emb.get(t_enc, tgt_t)
        params: dict[str, Any] = {}
        n_fit = len(X)
        # The English-only bridge's "default" is what LangAlign.fit_bridge fits by default.
        fit_as = BRIDGE_MAPPER if (source == "english-bridge" and mapper == "default") else mapper
        if fit_as != mapper:
            params = {"seed": self.seed, "device": "cpu"}
        if mapper in PAPER_MAPPERS:
            params = {**NEURAL_PARAMS, "seed": self.seed, "device": "cpu"}
            if n_fit > NEURAL_MAX_PAIRS:
                sel = np.sort(np.random.default_rng(self.seed).permutation(n_fit)[:NEURAL_MAX_PAIRS])
                X, Y = X[sel], Y[sel]
                n_fit = NEURAL_MAX_PAIRS
                desc += f" (neural mapper: seeded {NEURAL_MAX_PAIRS:,} of them)"
        # Peak memory of the fit as numpy allocations seen by tracemalloc (torch's own allocator,
        # used by the neural mappers, is not traced; those rows say so).
        traced_here = not tracemalloc.is_tracing()
        if traced_here:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.time()
        align = LangAlign(s_enc, t_enc, mapper=fit_as, mapper_params=params, held_out=0.0, seed=self.seed)
        align.fit_embeddings(X, Y)
        fit_s = round(time.time() - t0, 2)
        peak = tracemalloc.get_traced_memory()[1] - base
        if traced_here:
            tracemalloc.stop()
        neural = align.forward_ is not None and is_neural(align.forward_)
        info = {"pairs": source, "n_pairs": int(n_fit), "pairs_detail": desc, "mapper": mapper,
                "mapper_params": params, "fit_seconds": fit_s,
                "fit_peak_mib": round(peak / 2**20, 1),
                "fit_peak_scope": "numpy (tracemalloc)" + (" + torch untraced" if neural else "")}
        if fit_as != mapper:
            info["fitted_as"] = fit_as
        self.fits.append({"setting": setting, "pairs": source, "lang": "*" if source == "english-bridge" else lang,
                          "task": task.name if source == "in-domain" else "*", "mapper": mapper,
                          "n_pairs": int(n_fit), "dim": [int(X.shape[1]), int(Y.shape[1])],
                          **({"fitted_as": fit_as} if fit_as != mapper else {}),
                          **{k: info[k] for k in ("fit_seconds", "fit_peak_mib", "fit_peak_scope")}})
        fwd = align.forward_
        if hasattr(fwd, "choice_"):
            info["linear_choice"] = {"forward": getattr(fwd, "choice_", None),
                                     "reverse": getattr(align.reverse_, "choice_", None)}
        _log(f"  fitted {setting} {mapper:<17} on {source} {lang} ({n_fit:,} pairs) in {info['fit_seconds']}s")
        self._aligners[key] = (align, info)
        return self._aligners[key]

    # ---------------------------------------------------------------- rows
    def _row(self, task: str, lang: str, setting: str, mode: str, info: dict | None, metrics: dict, **extra):
        s_enc, t_enc = self.settings[setting]
        info = info or {}
        row = {"task": task, "lang": lang, "setting": setting,
               "encoders": {"source": s_enc, "target": t_enc}, "mode": mode,
               "method": _method_label(mode, info.get("mapper"), info.get("pairs"), info.get("n_pairs")),
               "mapper": info.get("mapper"), "pairs": info.get("pairs"), "n_pairs": info.get("n_pairs"),
               "pairs_detail": info.get("pairs_detail"), "seed": self.seed, "metrics": metrics}
        if info.get("linear_choice"):
            row["linear_choice"] = info["linear_choice"]
        row.update(extra)
        self.results.append(row)
        return row

    def run_classification(self, task: T.ClassificationTask) -> None:
        labels_en = task.train_labels
        zero_preds: dict[str, dict[str, np.ndarray]] = {}  # setting -> language -> predictions
        for setting in self.settings:
            s_enc, t_enc = self.settings[setting]
            ref_setting = setting if self._same(setting) else "same"  # two encoders: use-multilingual's zero-shot
            _log(f"[{task.name}] setting {setting}: {s_enc} -> {t_enc}")
            X_en = self.emb.items(s_enc, task.train_items, task.pair)
            Y_test = {lang: self.emb.items(t_enc, task.tests[lang][0], task.pair) for lang in self.langs}
            eng_head = CrossLingualClassifier(s_enc, mode="zero-shot").fit_embeddings(X_en, labels_en, pair=task.pair)

            # setting is bound as a default: a closure would see the loop variable's later value
            def record(lang: str, mode: str, info: dict | None, pred: np.ndarray, setting: str = setting,
                       ref_setting: str = ref_setting) -> None:
                y = task.tests[lang][1]
                rep = classification_report(y, list(pred))
                metrics = {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n_test": rep["n"]}
                ref = zero_preds.get(ref_setting, {}).get(lang)
                vs = None
                if ref is not None and mode != "zero-shot":
                    ref_rep = classification_report(y, list(ref))
                    mc = mcnemar(y, list(ref), list(pred))
                    vs = {"reference": f"same-encoder zero-shot ({self.settings[ref_setting][0]}, no map)",
                          "accuracy_diff": rep["accuracy"] - ref_rep["accuracy"],
                          "macro_f1_diff": rep["macro_f1"] - ref_rep["macro_f1"],
                          "mcnemar_p": mc["p_value"], "mcnemar_b": mc["b"], "mcnemar_c": mc["c"],
                          "mcnemar_method": mc["method"]}
                self._row(task.name, lang, setting, mode, info, metrics, vs_zero_shot=vs)

            if self._same(setting):
                for lang in self.langs:
                    pred = eng_head.predict_embeddings(Y_test[lang])
                    zero_preds.setdefault(setting, {})[lang] = pred
                    record(lang, "zero-shot", None, pred)
                if not self.quick:
                    for lang, (items, labs) in task.native.items():
                        if lang not in self.langs:
                            continue
                        Xn = self.emb.items(t_enc, items, task.pair)
                        nat = CrossLingualClassifier(t_enc, mode="zero-shot").fit_embeddings(Xn, labs, pair=task.pair)
                        record(lang, "native", {"pairs": None, "n_pairs": None, "mapper": None,
                                                "pairs_detail": f"{len(items):,} target-language training examples"},
                               nat.predict_embeddings(Y_test[lang]))
            for source, n, mapper in self.grid(task.name, setting, bool(task.parallel)):
                for lang in self.langs:
                    got = self.aligner(setting, task, lang, source, n, mapper)
                    if got is None:
                        continue
                    align, info = got
                    rev = CrossLingualClassifier.from_head(align, eng_head.head_, pair_task=task.pair)
                    record(lang, "reverse", info, rev.predict_embeddings(Y_test[lang]))
                    if source == "libreoffice" and self._same(setting) and not self.quick:
                        record(lang, "reverse", {**info, "mapper": f"{mapper}+adapt"},
                               self._adapted_predictions(align, eng_head, Y_test[lang], task.pair))
                    if task.name == "sib200" and lang == "ko" and mapper == "default" and setting in SETTINGS:
                        self._pca_data(setting, source, n, align, task)
                    if self.quick:
                        continue
                    fwd = CrossLingualClassifier(align, mode="forward").fit_embeddings(X_en, labels_en, pair=task.pair)
                    record(lang, "forward", info, fwd.predict_embeddings(Y_test[lang]))

    @staticmethod
    def _adapted_predictions(align: LangAlign, eng_head: CrossLingualClassifier, Y: np.ndarray,
                             pair: bool) -> np.ndarray:
        """Rev-LangAlign after ``adapt`` on the unlabelled inputs being classified (no labels used).

        What a service would do with its own traffic: an aligner fitted on another domain
        (LibreOffice manuals) falls back toward the zero-shot when the inputs lie elsewhere.
        The aligner is shared across rows, so its adaptation is undone afterwards.
        """
        d = Y.shape[1] // 2 if pair else Y.shape[1]
        inputs = np.vstack([Y[:, :d], Y[:, d:]]) if pair else Y
        try:
            align.adapt(inputs, side="target")
            rev = CrossLingualClassifier.from_head(align, eng_head.head_, pair_task=pair)
            return rev.predict_embeddings(Y)
        finally:
            align.adapted_ = {}

    def _pca_data(self, setting: str, source: str, n: int | None, align: LangAlign, task: T.ClassificationTask) -> None:
        key = f"{setting}:{source}:{n}"
        if key in self.plot_data:
            return
        s_enc, t_enc = self.settings[setting]
        en_test = T.load_sib200("en", "test", self.data / "sib200")
        ko = task.tests["ko"][0]
        self.plot_data[key] = {
            "setting": setting, "source": source, "n": n, "labels": list(en_test.labels),
            "en_raw_same": self.emb.get("use-multilingual", list(en_test.texts)),
            "ko_raw": self.emb.get(t_enc, ko),
            "en_source": self.emb.get(s_enc, list(en_test.texts)),
            "ko_mapped": align.to_source(self.emb.get(t_enc, ko)),
        }

    def run_sts(self, task: T.STSTask) -> None:
        for setting in self.settings:
            s_enc, t_enc = self.settings[setting]
            _log(f"[sts] setting {setting}: {s_enc} -> {t_enc}")
            pairs_en, gold_en = task.en_test
            E = self.emb.items(s_enc, pairs_en, True)
            d = E.shape[1] // 2
            self._row("sts", "en", setting, "raw", None, sts_scores(cosine_pairs(E[:, :d], E[:, d:]), gold_en),
                      note=f"English STS-B test with {s_enc} (reference)")
            raw = {}
            for lang in self.langs:
                pairs, gold = task.tests[lang]
                V = self.emb.items(t_enc, pairs, True)
                dt = V.shape[1] // 2
                raw[lang] = sts_scores(cosine_pairs(V[:, :dt], V[:, dt:]), gold)
                if self._same(setting):
                    self._row("sts", lang, setting, "raw", None, raw[lang])
            for source, n, mapper in self.grid("sts", setting, bool(task.parallel)):
                for lang in self.langs:
                    got = self.aligner(setting, task, lang, source, n, mapper)
                    if got is None:
                        continue
                    align, info = got
                    pairs, gold = task.tests[lang]
                    V = self.emb.items(t_enc, pairs, True)
                    dt = V.shape[1] // 2
                    m = sts_scores(cosine_pairs(align.to_source(V[:, :dt]), align.to_source(V[:, dt:])), gold)
                    self._row("sts", lang, setting, "reverse", info, m,
                              vs_raw={"reference": f"raw cosine in {t_enc} space",
                                      "spearman_diff": m["spearman"] - raw[lang]["spearman"]})

    def run_retrieval(self, task: T.RetrievalTask) -> None:
        def scores(Q: np.ndarray, C: np.ndarray, en: list[str], xx: list[str]) -> dict[str, Any]:
            out = {}
            for method in ("cosine", "csls"):
                r = retrieval_scores(Q, C, method=method, query_texts=en, candidate_texts=xx, ks=(1,))
                out[method] = {"en_to_xx": r["q2c"]["accuracy"], "xx_to_en": r["c2q"]["accuracy"],
                               "mean": r["accuracy"]}
            return out

        for setting in self.settings:
            s_enc, t_enc = self.settings[setting]
            _log(f"[tatoeba] setting {setting}: {s_enc} -> {t_enc}")
            raw = {}
            for lang in self.langs:
                en, xx = task.bitext[lang]
                if self._same(setting):
                    raw[lang] = scores(self.emb.get(s_enc, en), self.emb.get(t_enc, xx), en, xx)
                    self._row("tatoeba", lang, setting, "raw", None, raw[lang])
            for source, n, mapper in self.grid("tatoeba", setting, False):
                for lang in self.langs:
                    got = self.aligner(setting, task, lang, source, n, mapper)
                    if got is None:
                        continue
                    align, info = got
                    en, xx = task.bitext[lang]
                    Xe, Yx = self.emb.get(s_enc, en), self.emb.get(t_enc, xx)
                    self._row("tatoeba", lang, setting, "forward", info, scores(align.to_target(Xe), Yx, en, xx))
                    self._row("tatoeba", lang, setting, "reverse", info, scores(Xe, align.to_source(Yx), en, xx))

    # ---------------------------------------------------------------- main
    def run(self, on_task_done: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
        t_start = time.time()
        try:
            import torch
            torch.set_num_threads(1)  # small nets on a shared 2-core CPU: one thread is faster
        except ImportError:  # pragma: no cover
            pass
        loaders: dict[str, Callable[[], Any]] = {
            "sib200": lambda: T.load_sib200_task(self.langs, self.data, self.seed),
            "nli": lambda: T.load_nli_task(self.langs, self.data, self.seed),
            "sentiment": lambda: T.load_sentiment_task(self.langs, self.data, self.seed),
            "libreoffice": lambda: T.load_libreoffice_task(self.langs, self.home, self.seed),
            "sts": lambda: T.load_sts_task(self.langs, self.data, self.seed),
            "tatoeba": lambda: T.load_tatoeba_task(self.langs, self.data, self.seed),
        }
        if not self.quick or "libreoffice" in self.task_names:
            from ..data import build_libreoffice_help
            _log("LibreOffice help corpus: building or reusing")
            build_libreoffice_help(self.langs, seed=0, home=self.home)
        tasks = {}
        for name in self.task_names:
            tasks[name] = loaders[name]()
            t = tasks[name]
            self.task_info[name] = {"title": t.title, "notes": t.notes,
                                    "parallel_source": getattr(t, "parallel_source", "")}
        limit = T.BRIDGE_POOL_QUICK if self.quick else T.BRIDGE_POOL_FULL
        self.pool, self.pool_desc = T.english_pool(tasks, self.data, limit, self.seed, self.quick, self.home)
        for name, t in tasks.items():
            t0 = time.time()
            _log(f"== task {name}")
            if isinstance(t, T.ClassificationTask):
                self.run_classification(t)
            elif isinstance(t, T.STSTask):
                self.run_sts(t)
            else:
                self.run_retrieval(t)
            self.timings[name] = round(time.time() - t0, 1)
            if on_task_done is not None:  # partial outputs after every task
                on_task_done(self._result(time.time() - t_start, done=list(self.timings)))
        return self._result(time.time() - t_start, done=list(self.timings))

    def _result(self, wall: float, done: list[str]) -> dict[str, Any]:
        return {
            "meta": {
                "command": "langalign benchmark" + (" --quick" if self.quick else "") + self._encoders_arg(),
                "argv": sys.argv[1:], "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "langalign_version": __version__, "python": platform.python_version(),
                "platform": platform.platform(), "seed": self.seed, "quick": self.quick,
                "data": str(self.data), "tasks": self.task_names, "langs": self.langs,
                "settings": {k: {"source": v[0], "target": v[1]} for k, v in self.settings.items()},
                "head": _head_description(),
                "english_bridge_pool": self.pool_desc,
                "neural_mappers": {"max_pairs": NEURAL_MAX_PAIRS, **NEURAL_PARAMS},
                "zero_shot_reference": "two-encoder rows are compared with the same-encoder zero-shot predictions "
                                       "(zero-shot across minilm and use-multilingual is impossible: different spaces)",
                "tasks_completed": done,
                "task_info": {k: v for k, v in self.task_info.items() if k in done},
                "wall_seconds": round(wall, 1), "task_seconds": self.timings,
                "texts_encoded_this_run": self.emb.encoded,
                "aligner_fits": self.fits,
            },
            "results": self.results,
        }


def run_benchmark(data: Path, out: Path, tasks: list[str] | None = None, langs: list[str] | None = None,
                  seed: int = 0, quick: bool = False, home: Path | None = None,
                  encoders: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write ``benchmark.json``, ``benchmark.md`` and PNG plots into ``out``."""
    from .report import write_outputs
    task_names = tasks or (["sib200"] if quick else list(T.TASK_NAMES))
    unknown = [t for t in task_names if t not in T.TASK_NAMES]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(T.TASK_NAMES)}")
    runner = BenchmarkRunner(data, out, task_names, langs or list(T.LANGS), seed, quick, home, encoders=encoders)
    result = runner.run(on_task_done=lambda partial: write_outputs(partial, runner.plot_data, Path(out)))
    write_outputs(result, runner.plot_data, Path(out))
    return result
