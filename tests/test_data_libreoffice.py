"""LibreOffice-help corpus: extraction and cleaning on a tiny synthetic tree, and a real apt build."""
from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from langalign.data import read_manifest
from langalign.data.libreoffice import (build_libreoffice_help, extract_paragraphs, load_libreoffice_help,
                                        page_label, split_pages)
from langalign.errors import DataError

PAGE = """<!DOCTYPE html><html><head><title>t</title><script>var x = "<p id='par_idX'>no</p>";</script></head>
<body><nav><p id="par_id_nav">Navigation text</p></nav>
<div id="DisplayArea">
<h1 id="hd_id1">Heading</h1>
<p id="par_id1" class="paragraph">{p1}</p>
<p id="par_id2" class="paragraph">Choose <span class="emph">Format - Cells</span>&nbsp;now,
   then   click <a href="x.html">OK</a>.</p>
<p id="par_id3" class="code">Dim a As Integer</p>
<p id="par_id4" class="paragraph">OK</p>
<p id="par_id5" class="paragraph">{p5}</p>
<p id="par_id1" class="paragraph">repeated id is ignored</p>
<p id="par_id6" class="paragraph">Line one<br>line two</p>
</div></body></html>"""

KO = {"p1": "셀을 선택합니다.", "p2": "셀 서식을 선택합니다.", "p5": "Untranslated sentence here"}


def _page(lang: str, unique: str) -> str:
    if lang == "en":
        return PAGE.format(p1=f"Select the cells on page {unique}.", p5="Untranslated sentence here")
    return (PAGE.format(p1=f"{unique} 페이지의 셀을 선택합니다.", p5="Untranslated sentence here")
            .replace("Choose <span", "선택 <span"))


def _make_tree(root: Path, pages_per_module: int = 12) -> Path:
    for help_dir, lang in (("en-US", "en"), ("ko", "ko")):
        for module in ("swriter", "scalc", "shared"):
            for i in range(pages_per_module):
                p = root / "usr/share/libreoffice/help" / help_dir / "text" / module / "guide" / f"p{i}.html"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(_page(lang, f"{module}{i}"), encoding="utf-8")
    # a folder with too few pages to be a label of its own
    for help_dir, lang in (("en-US", "en"), ("ko", "ko")):
        p = root / "usr/share/libreoffice/help" / help_dir / "text" / "sdatabase" / "only.html"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_page(lang, "db"), encoding="utf-8")
    return root


def test_extract_paragraphs_strips_markup():
    paras = extract_paragraphs(_page("en", "x"))
    assert "par_id_nav" not in paras and "par_idX" not in paras  # only the display area
    assert paras["par_id1"] == ("Select the cells on page x.", False)
    assert paras["par_id2"] == ("Choose Format - Cells now, then click OK.", False)  # nbsp collapsed too
    assert paras["par_id3"] == ("Dim a As Integer", True)
    assert paras["par_id6"][0] == "Line one line two"


def test_page_labels():
    assert page_label("text/swriter/guide/table_insert.html") == "writer"
    assert page_label("text/scalc/01/func_sum.html") == "calc"
    assert page_label("text/simpress/main.html") == "impress"
    assert page_label("text/sdraw/x.html") == "draw"
    assert page_label("text/sbasic/shared/x.html") == "basic"
    assert page_label("text/smath/x.html") == "math"
    assert page_label("text/schart/x.html") == "chart"
    assert page_label("text/shared/01/x.html") == "shared"
    assert page_label("text/snew/x.html") == "snew"


def test_split_pages_every_label_everywhere_and_seeded():
    pages = {"a": [f"a{i}" for i in range(30)], "b": [f"b{i}" for i in range(3)]}
    s = split_pages(pages, seed=0)
    for ps in pages.values():
        assert {s[p] for p in ps} == {"train", "dev", "test"}
    assert split_pages(pages, seed=0) == s
    assert split_pages(pages, seed=1) != s


def test_build_from_extracted_tree(tmp_path):
    src = _make_tree(tmp_path / "src")
    home = tmp_path / "home"
    folder = build_libreoffice_help(["ko"], debs=src, home=home, min_label_pages=10, min_label_pairs=1,
                                    show_progress=False)
    m = read_manifest(folder)
    assert m["licence"] == "MPL-2.0" and m["languages"] == ["ko"]
    assert m["labels"] == ["calc", "shared", "writer"]  # sdatabase has 1 page < 10: dropped, counted
    d = m["dropped"]["ko"]
    assert d["label with too few pages"] == 6
    assert d["code sample"] == 36 and d["too short"] == 36  # "Dim ..." and "OK" on each of 36 pages
    assert d["identical sides"] == 2 * 36  # the two untranslated paragraphs (par_id5, par_id6)
    # par_id2 is the same pair on every page: kept once, then counted as a duplicate
    assert d["duplicate"] == 35
    total = sum(c["pairs"] for c in m["counts"]["ko"].values())
    assert total == 36 + 1  # one unique paragraph per page + the shared one
    # labels with too few training pairs are dropped and counted
    folder = build_libreoffice_help(["ko"], debs=src, home=home, min_label_pairs=11, show_progress=False)
    m2 = read_manifest(folder)
    kept = sum(c["pairs"] for c in m2["counts"]["ko"].values())
    assert len(m2["labels"]) < 3 and kept < total
    assert m2["dropped"]["ko"]["label with too few training pairs"] == total - kept
    for split in ("train", "dev", "test"):
        assert set(load_libreoffice_help("ko", split, home=home).meta["label"]) <= set(m2["labels"])
    # the files are parallel TSVs with the documented columns
    with open(folder / "en-ko.train.tsv", encoding="utf-8") as f:
        header = next(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert header == ["page", "par_id", "label", "source", "target"]
    pages = defaultdict(set)
    for split in ("train", "dev", "test"):
        corpus = load_libreoffice_help("ko", split, home=home)
        assert set(corpus.meta["label"]) <= {"calc", "shared", "writer"}
        for p in corpus.meta["page"]:
            pages[p].add(split)
    assert all(len(s) == 1 for s in pages.values())


def test_build_is_reused_unless_forced(tmp_path):
    src = _make_tree(tmp_path / "src")
    home = tmp_path / "home"
    folder = build_libreoffice_help(["ko"], debs=src, home=home, show_progress=False, workers=1)
    created = read_manifest(folder)["created"]
    marker = folder / "en-ko.dev.tsv"
    before = marker.stat().st_mtime_ns
    shutil.rmtree(src)  # a reuse must not touch the sources at all
    assert build_libreoffice_help(["ko"], debs=src, home=home) == folder
    assert marker.stat().st_mtime_ns == before and read_manifest(folder)["created"] == created
    with pytest.raises(DataError, match="no such file or folder"):
        build_libreoffice_help(["ko"], debs=src, home=home, force=True)
    with pytest.raises(DataError, match="no such file or folder"):
        build_libreoffice_help(["ko"], debs=src, home=home, seed=1)  # other settings: rebuild


def test_build_reports_missing_language(tmp_path):
    src = _make_tree(tmp_path / "src")
    with pytest.raises(DataError, match="libreoffice-help-ja"):
        build_libreoffice_help(["ja"], debs=src, home=tmp_path / "home", show_progress=False)
    with pytest.raises(ValueError, match="English is the source side"):
        build_libreoffice_help(["en"], debs=src, home=tmp_path / "home")


def test_load_before_build_says_how_to_build(tmp_path):
    with pytest.raises(DataError, match="langalign data build libreoffice-help --langs ko"):
        load_libreoffice_help("ko", "train", home=tmp_path)


# ---------------------------------------------------------------- the real corpus (apt-get download)

@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory):
    if not shutil.which("apt-get"):
        pytest.skip("apt-get not available")
    home = tmp_path_factory.mktemp("lohelp-home")
    folder = build_libreoffice_help(("ko", "ja", "zh"), home=home, show_progress=False)
    return home, folder


@pytest.mark.network_apt
def test_real_libreoffice_corpus(real_corpus):
    home, folder = real_corpus
    m = read_manifest(folder)
    assert m["licence"] == "MPL-2.0"
    print(json.dumps(m["counts"], indent=1))
    for lang in ("ko", "ja", "zh"):
        splits = {s: load_libreoffice_help(lang, s, home=home) for s in ("train", "dev", "test")}
        assert sum(len(c) for c in splits.values()) >= 10_000
        page_split = defaultdict(set)
        for s, corpus in splits.items():
            assert len(corpus) == m["counts"][lang][s]["pairs"]
            assert corpus.summary.total_dropped == 0  # the files are already clean
            for p in corpus.meta["page"]:
                page_split[p].add(s)
            assert all(src != tgt for src, tgt in corpus.pairs())
        assert all(len(v) == 1 for v in page_split.values()), "a page is in two splits"
        for label in m["labels"]:
            assert label in splits["train"].meta["label"], (lang, label)
            assert label in splits["test"].meta["label"], (lang, label)
        all_pairs = [p for c in splits.values() for p in c.pairs()]
        assert len(all_pairs) == len(set(all_pairs))
