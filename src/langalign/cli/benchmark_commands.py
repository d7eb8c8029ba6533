"""``langalign benchmark``: rerun every number of the README from scratch."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "benchmark", help="run the benchmark (SIB-200, NLI, sentiment, STS, Tatoeba, LibreOffice) and write a report",
        formatter_class=_FMT,
        description="Train on English, test on Korean/Japanese/Chinese: zero-shot and native baselines against "
                    "LangAlign (forward) and Rev-LangAlign (reverse) with several mappers, pair sources and "
                    "encoder settings. Writes OUT/benchmark.json (every number with its configuration), "
                    "OUT/benchmark.md and PNG plots, and prints a summary table.",
        epilog="examples:\n  langalign benchmark --quick --out /tmp/bench\n"
               "  langalign benchmark --out results\n"
               "  langalign benchmark --tasks sib200,tatoeba --langs ko,ja --out results-small\n"
               "  langalign benchmark --encoders use-multilingual,e5-small --out results  # adds same:e5-small rows")
    p.add_argument("--quick", action="store_true",
                   help="small CI subset: SIB-200, zero-shot vs Rev-LangAlign default (300 in-domain pairs), "
                        "two-encoder English-only bridging")
    p.add_argument("--data", type=Path, help="reference data folder (default: ../shared/data)")
    p.add_argument("--home", type=Path, help="data home for the LibreOffice corpus (default: the langalign data home)")
    p.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: results)")
    p.add_argument("--tasks", help="comma-separated subset of sib200,nli,sentiment,sts,tatoeba,libreoffice")
    p.add_argument("--langs", default="ko,ja,zh", help="target languages (default: ko,ja,zh)")
    p.add_argument("--seed", type=int, default=0, help="seed for every sample and fit (default: 0)")
    p.add_argument("--encoders", default="use-multilingual",
                   help="multilingual encoders of the same-encoder setting, comma-separated (default: "
                        "use-multilingual, which also brings the two-encoder setting minilm -> use-multilingual); "
                        "each other encoder E adds a setting same:E with E on both sides, e.g. e5-small")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from ..benchmark import run_benchmark
    from ..benchmark.report import stdout_summary
    from ..data import find_reference_data, parse_langs
    from .outputs import folder_output

    folder_output(args.out, "--out")
    data = args.data if args.data is not None else find_reference_data()
    if not Path(data).is_dir():
        raise FileNotFoundError(f"{data}: no such folder")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    langs = [l for l in parse_langs(args.langs)]
    if "en" in langs:
        raise ValueError("English is the training language; pass only target languages (e.g. ko,ja,zh)")
    encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
    result = run_benchmark(Path(data), args.out, tasks=tasks, langs=langs, seed=args.seed, quick=args.quick,
                           home=args.home, encoders=encoders)
    print(stdout_summary(result))
    print(f"\nwrote {args.out}/benchmark.json, benchmark.md and plots "
          f"({result['meta']['wall_seconds'] / 60:.1f} min)", file=sys.stderr)
    return 0
