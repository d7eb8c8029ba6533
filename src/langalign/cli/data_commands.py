"""``langalign data ...``: list, import, download and build corpora in the data home."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: Any) -> None:
    data = subparsers.add_parser(
        "data", help="manage corpora and benchmark data", formatter_class=_FMT,
        description="Manage the corpora in the data home ($LANGALIGN_DATA_HOME, default: the user cache folder).",
        epilog="examples:\n  langalign data list\n  langalign data import sib200 ../shared/data/sib200\n"
               "  langalign data build libreoffice-help --langs ko,ja,zh")
    data.set_defaults(func=lambda args: (data.print_help(), 1)[1])
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    p = sub.add_parser("list", help="show the corpora in the data home, with counts", formatter_class=_FMT,
                       description="Show the data home, its corpora (with counts and licences) and where the "
                                   "shared reference data was found.",
                       epilog="examples:\n  langalign data list\n  langalign data list --json | jq .corpora")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.add_argument("--verify", action="store_true", help="also check every file against its manifest checksum")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import", help="copy a local benchmark set into the data home", formatter_class=_FMT,
                       description="Validate, Unicode-normalise and copy a benchmark set into the data home.\n"
                                   "  sib200:  DIR holds <lang_code>/{train,dev,test}.tsv (e.g. kor_Hang/train.tsv)\n"
                                   "  tatoeba: DIR holds tatoeba.<xxx>-eng.<xxx> and tatoeba.<xxx>-eng.eng",
                       epilog="examples:\n  langalign data import sib200 ../shared/data/sib200\n"
                              "  langalign data import tatoeba ../shared/data/tatoeba\n"
                              "  langalign data import sib200 DIR --langs en,ko")
    p.add_argument("dataset", choices=["sib200", "tatoeba"], help="which benchmark set")
    p.add_argument("dir", type=Path, help="folder holding the files")
    p.add_argument("--langs", help="sib200 only: comma-separated languages to copy (default: all found)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("download", help="download a benchmark set (needs network)", formatter_class=_FMT,
                       description="Download a public benchmark set into the data home. Offline, use "
                                   "`langalign data import` with a local copy instead.",
                       epilog="examples:\n  langalign data download sib200\n"
                              "  langalign data download sib200 --langs en,ko,ja,zh,de")
    p.add_argument("dataset", choices=["sib200"], help="which benchmark set")
    p.add_argument("--langs", default="en,ko,ja,zh", help="comma-separated languages (default: en,ko,ja,zh)")
    p.add_argument("--timeout", type=float, default=15.0, help="network timeout in seconds (default: 15)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("build", help="build a corpus from its sources", formatter_class=_FMT,
                       description="Build a corpus from Debian packages (fetched with apt-get download, or taken "
                                   "from --from/--debs DIR holding the .deb files or trees extracted with dpkg -x).\n"
                                   "  libreoffice-help: an English-X parallel corpus with topic labels from the "
                                   "LibreOffice help;\n"
                                   "    <data home>/corpora/libreoffice-help/en-<lang>.{train,dev,test}.tsv "
                                   "(columns page, par_id, label, source, target) and manifest.json.\n"
                                   "  english-pool: 100k+ deduplicated English sentences from the training splits "
                                   "of the shared\n"
                                   "    reference data and Debian's English text (fortunes, WordNet examples, game "
                                   "dialogue, help and manuals);\n"
                                   "    <data home>/corpora/english-pool/sentences.txt (one per line), sources.txt "
                                   "(the source of each line) and manifest.json.",
                       epilog="examples:\n  langalign data build libreoffice-help --langs ko,ja,zh\n"
                              "  langalign data build libreoffice-help --langs ko --from ~/debs --force\n"
                              "  langalign data build english-pool\n"
                              "  langalign data build english-pool --max-per-source 20000 --debs ~/debs")
    p.add_argument("corpus", choices=["libreoffice-help", "english-pool"], help="which corpus")
    p.add_argument("--langs", help="libreoffice-help: comma-separated target languages (default: ko,ja,zh)")
    p.add_argument("--from", "--debs", dest="from_dir", type=Path,
                   help="folder with the .deb files or extracted trees (default: apt-get download)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the by-page split (libreoffice-help) or of the shuffle and caps (english-pool)")
    p.add_argument("--dedupe", choices=["corpus", "page"], default="corpus",
                   help="libreoffice-help: drop repeated pairs across the whole corpus (default) or within a page")
    p.add_argument("--max-per-source", type=int, metavar="N",
                   help="english-pool: keep at most N sentences of any one source (default: no cap)")
    p.add_argument("--sources", help="english-pool: comma-separated sources to use (default: all)")
    p.add_argument("--reference", type=Path,
                   help="english-pool: the shared reference data folder (default: ../shared/data or "
                        "$LANGALIGN_REFERENCE_DATA)")
    p.add_argument("--home", type=Path, help="data home to build into (default: $LANGALIGN_DATA_HOME or the "
                                             "user cache folder)")
    p.add_argument("--force", action="store_true", help="rebuild even if a build with these settings exists")
    p.add_argument("--like", type=Path, metavar="MANIFEST",
                   help="reproduce the build this manifest.json (or corpus folder) records: its settings, seed "
                        "and package versions; stops, writing nothing, unless every input file hashes the same")
    p.add_argument("--json", action="store_true", help="print the manifest counts as JSON")
    p.set_defaults(func=cmd_build)


# ---------------------------------------------------------------- handlers

def _total(counts: Any) -> int:
    """Sum the leaf counts of a manifest ``counts`` tree ("pairs" or "sentences" leaves where present)."""
    if isinstance(counts, int):
        return counts
    if isinstance(counts, dict):
        for key in ("pairs", "sentences"):  # a total already: the rest of the tree breaks it down
            if key in counts:
                return int(counts[key])
        return sum(_total(v) for k, v in counts.items() if k not in ("labels", "pages"))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..data.home import data_home, find_reference_data, list_corpora, verify_corpus
    from ..errors import DataError

    home = data_home()
    corpora = list_corpora()
    try:
        reference: str | None = str(find_reference_data())
    except DataError:
        reference = None
    rows = []
    for m in corpora:
        row: dict[str, Any] = {"name": m.get("name"), "path": m.get("path"), "licence": m.get("licence"),
               "created": m.get("created"), "languages": m.get("languages"),
               "total": _total(m.get("counts", {})), "counts": m.get("counts"), "error": m.get("error")}
        if args.verify and not m.get("error"):
            row["problems"] = verify_corpus(m["path"])
        rows.append(row)
    if args.json:
        print(json.dumps({"data_home": str(home), "reference_data": reference, "corpora": rows},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"data home:      {home}")
    print(f"reference data: {reference or 'not found (set LANGALIGN_REFERENCE_DATA)'}")
    if not rows:
        print("no corpora yet; try `langalign data import sib200 DIR` or "
              "`langalign data build libreoffice-help`")
        return 0
    print()
    print(f"{'name':<18} {'rows':>8}  {'languages':<36} {'licence':<22} created")
    for r in rows:
        if r["error"]:
            print(f"{r['name']:<18} {'-':>8}  BROKEN: {r['error']}")
            continue
        langs = ",".join(r["languages"] or []) or "-"
        print(f"{r['name']:<18} {r['total']:>8,}  {langs[:36]:<36} {str(r['licence'])[:22]:<22} {r['created']}")
        for problem in r.get("problems", []):
            print(f"    ! {problem}")
    return 0 if not any(r.get("problems") or r["error"] for r in rows) else 1


def cmd_import(args: argparse.Namespace) -> int:
    from ..data.benchmarks import import_sib200, import_tatoeba
    from ..data.home import read_manifest
    from ..data.langcodes import parse_langs

    if not args.dir.is_dir():
        raise FileNotFoundError(f"{args.dir}: no such folder")
    if args.dataset == "sib200":
        folder = import_sib200(args.dir, langs=parse_langs(args.langs) if args.langs else None)
    else:
        if args.langs:
            raise ValueError("--langs applies to sib200 only; tatoeba imports every pair it finds")
        folder = import_tatoeba(args.dir)
    m = read_manifest(folder)
    # An import adds or updates languages; the totals are the whole corpus, earlier imports included.
    what = f"{args.dataset} ({args.langs})" if args.langs else args.dataset
    print(f"imported {what} into {folder}; the corpus now holds {_total(m['counts']):,} rows, "
          f"languages {', '.join(m.get('languages', []))}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from ..data.benchmarks import download_sib200
    from ..data.langcodes import parse_langs

    folder = download_sib200(parse_langs(args.langs), timeout=args.timeout)
    print(f"downloaded sib200 into {folder}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from ..data.home import read_manifest
    from ..data.langcodes import parse_langs
    from ..data.libreoffice import build_libreoffice_help

    if args.from_dir is not None and not args.from_dir.exists():
        raise FileNotFoundError(f"{args.from_dir}: no such folder")
    if args.corpus == "english-pool":
        return _build_english_pool(args)
    for opt, value in (("--max-per-source", args.max_per_source), ("--sources", args.sources),
                       ("--reference", args.reference)):
        if value is not None:
            raise ValueError(f"{opt} applies to english-pool only")
    like = _like(args)
    folder = build_libreoffice_help(parse_langs(args.langs or "ko,ja,zh"), debs=args.from_dir, seed=args.seed,
                                    force=args.force, dedupe=args.dedupe, home=args.home, like=like)
    m = read_manifest(folder)
    if args.json:
        print(json.dumps({"path": str(folder), "counts": m["counts"], "dropped": m.get("dropped")},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"{m['name']} in {folder} (licence {m['licence']}, source: {m['source']})")
    for lang, splits in m["counts"].items():
        parts = ", ".join(f"{s} {c['pairs']:,}" for s, c in splits.items())
        dropped = m.get("dropped", {}).get(lang, {})
        drop_txt = ", ".join(f"{k} {v:,}" for k, v in dropped.items() if k != "paired_paragraphs")
        print(f"  en-{lang}: {parts}  (dropped: {drop_txt})")
    return 0


def _like(args: argparse.Namespace) -> Any:
    """The manifest to reproduce, read now (the build replaces the folder it may sit in)."""
    if args.like is None:
        return None
    from ..data.home import read_like

    name = "english-pool" if args.corpus == "english-pool" else "libreoffice-help"
    return read_like(args.like, name)


def _build_english_pool(args: argparse.Namespace) -> int:
    from ..data.english_pool import build_english_pool
    from ..data.home import read_manifest

    if args.langs is not None:
        raise ValueError("--langs applies to libreoffice-help only; the English pool is English only")
    if args.dedupe != "corpus":
        raise ValueError("--dedupe applies to libreoffice-help only; the pool is always deduplicated")
    sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
    folder = build_english_pool(sources, debs=args.from_dir, seed=args.seed, reference=args.reference,
                                home=args.home, max_per_source=args.max_per_source, force=args.force,
                                like=_like(args))
    m = read_manifest(folder)
    if args.json:
        print(json.dumps({"path": str(folder), "counts": m["counts"], "missing": m.get("missing"),
                          "sources": {n: st["counts"] for n, st in m["sources"].items()}},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"{m['name']} in {folder}: {m['counts']['sentences']:,} sentences "
          f"(file {folder / 'sentences.txt'})")
    for name, st in m["sources"].items():
        c = st["counts"]
        where = f"{st['package']}={st['version']}" if "package" in st else st.get("origin", "")
        print(f"  {name:<22} {c['kept']:>8,} of {c['candidates']:>8,} candidates  ({where}; {st['licence']})")
    for pkg, why in (m.get("missing") or {}).items():
        print(f"  ! skipped {pkg}: {why}")
    return 0
