"""English pool: splitter, filters and dedupe on small strings; a build from tiny fixtures; a real build."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langalign.data import build_english_pool, load_english_pool, load_english_pool_table, read_manifest
from langalign.data.corpus import TOO_SHORT
from langalign.data.english_pool import IN_EVAL
from langalign.data.pool_filters import (CODE, DANGLING, NO_END, NO_START, TOO_LONG, UNBALANCED, as_sentence, dedupe,
                                         dedupe_key, detokenize_ptb, drop_reason, split_sentences, tidy)
from langalign.data.pool_sources import fortune_paragraphs, html_paragraphs, wml_strings, wordnet_examples
from langalign.errors import DataError

# ---------------------------------------------------------------- splitter and filters


def test_split_sentences_keeps_abbreviations_and_initials():
    text = ("Dr. Smith met J. R. R. Tolkien at 5 p.m. yesterday.  He said \u201chello!\u201d Then he left? "
            "Yes. See Fig. 3 for details, e.g. the map.")
    assert split_sentences(text) == [
        "Dr. Smith met J. R. R. Tolkien at 5 p.m. yesterday.",
        'He said "hello!"',
        "Then he left?",
        "Yes.",
        "See Fig. 3 for details, e.g. the map.",
    ]
    assert split_sentences("") == []
    assert split_sentences("no end here") == ["no end here"]


@pytest.mark.parametrize("text, reason", [
    ("Too short.", TOO_SHORT),
    (" ".join(["word"] * 41) + ".", TOO_LONG),
    ("See https://example.org for more.", CODE),
    ("Edit the file /etc/apt/sources.list now.", CODE),
    ("Call foo() to start the thing.", CODE),
    ("Use the {name} placeholder here.", CODE),
    ("Use std::vector in your code here.", CODE),
    ("the sentence starts in lower case.", NO_START),
    ("The sentence has no final punctuation", NO_END),
])
def test_drop_reasons(text, reason):
    assert drop_reason(text) == reason


def test_quotes_rejoined_and_markup_gaps():
    assert split_sentences('He refused, saying, "I exist to program. Go away." Then he left.') == [
        'He refused, saying, "I exist to program. Go away."', "Then he left."]
    assert tidy("4. Sweating like a pig is not refreshing .") == "Sweating like a pig is not refreshing."
    assert drop_reason("To hide notifications, see .") == DANGLING
    assert drop_reason('She said "hello and left.') == UNBALANCED
    assert drop_reason("Scripts live in the //user/local/cgi-bin directory.") == CODE


def test_kept_and_relaxed_sentences():
    assert drop_reason("The cat sat on the mat.") is None
    assert drop_reason("None of us knew what to say.") is None and drop_reason("True love is rare indeed.") is None
    assert drop_reason("The function returns None when it fails.") == CODE
    assert drop_reason("The ticket cost $5 and it was the #1 show.") is None
    assert drop_reason("Well...maybe we should wait a little.") is None
    assert drop_reason("Set $HOME before you start the shell.") == CODE
    assert drop_reason('"Are you coming home tonight?" she asked.') is None
    assert drop_reason("the cat sat on the mat", prose=False) is None  # datasets: no start/end test
    assert drop_reason("THIS IS A HEADING IN CAPITALS.") == "all capitals"
    assert drop_reason("1234 5678 9012 3456.") == "too few letters"
    assert drop_reason("Das ist ein schöner Tag für alle Bürger.") == "not mostly ASCII"


def test_fixes():
    assert detokenize_ptb("it 's a charming , often affecting journey .") == \
        "It's a charming, often affecting journey."
    assert detokenize_ptb("i do n't like it -lrb- at all -rrb- .") == "I don't like it (at all)."
    assert as_sentence("he ran the mile in four minutes") == "He ran the mile in four minutes."
    assert as_sentence("is it raining?") == "Is it raining?"


def test_dedupe_ignores_case_punctuation_whitespace():
    assert dedupe_key("Hello,  World!") == dedupe_key("hello world") == "hello world"
    assert dedupe(["A cat.", "a  cat", "A dog.", "A CAT!"]) == ["A cat.", "A dog."]


_words = st.text(alphabet=st.sampled_from("abcdeAB .,!?'\"-"), min_size=0, max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(_words, max_size=30))
def test_dedupe_idempotent_and_first_wins(items):
    once = dedupe(items)
    assert dedupe(once) == once
    assert len({dedupe_key(s) for s in once}) == len(once)
    assert {dedupe_key(s) for s in once} == {dedupe_key(s) for s in items}
    assert all(s in items for s in once)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("abc XYZ.!?\"'()\n\t"), max_size=200), st.integers(1, 6),
       st.integers(0, 10))
def test_kept_sentences_within_bounds(text, lo, extra):
    hi = lo + extra
    for s in split_sentences(text):
        assert s == s.strip() and "\n" not in s and "  " not in s
        if drop_reason(s, min_words=lo, max_words=hi) is None:
            assert lo <= len(s.split()) <= hi


def test_parsers():
    html = ("<html><head><title>T</title><script>var x = 1;</script></head><body>"
            "<p>First paragraph. It has <b>two</b> sentences.</p><pre>code block here.</pre>"
            "<table><tr><td>A table cell.</td></tr></table>"
            "<div class='highlight'><div>nested code.</div></div>"
            "<p>Call <code>foo</code> now.</p><ul><li>A list item.</li></ul></body></html>")
    paras = html_paragraphs(html)
    assert "First paragraph. It has two sentences." in paras and "A list item." in paras
    assert not any("code block" in p or "table cell" in p or "nested" in p or "var x" in p for p in paras)
    assert any("\u0000" in p for p in paras)  # inline code is marked, so that sentence is dropped
    fortunes = "Be kind.\n%\nA penny saved is a penny earned.\n\t\t-- Benjamin Franklin\n%\n"
    assert fortune_paragraphs(fortunes) == ["Be kind.", "A penny saved is a penny earned."]
    wn = ('  1 This software and database is being provided "AS IS"\n'
          '00001740 03 n 01 entity 0 | that which is perceived; "the team is a unit"; "it was big"  \n')
    assert wordnet_examples(wn) == ["the team is a unit", "it was big"]
    assert wml_strings('message= _ "I will <b>not</b> go."\nname=_"Bob"') == ["I will not go.", "Bob"]


# ---------------------------------------------------------------- a build from tiny fixtures

def _reference(root: Path) -> Path:
    (root / "sib200/eng_Latn").mkdir(parents=True)
    (root / "sib200/eng_Latn/train.tsv").write_text(
        "index_id\tcategory\ttext\n1\ttravel\tThe train to Paris leaves every morning at eight.\n"
        "2\tsports\tShe won the race by a wide margin.\n", encoding="utf-8")
    (root / "sib200/eng_Latn/test.tsv").write_text(
        "index_id\tcategory\ttext\n3\ttravel\tThis test sentence must never enter the pool.\n", encoding="utf-8")
    (root / "tatoeba").mkdir()
    (root / "tatoeba/tatoeba.kor-eng.eng").write_text("I like green tea very much.\n", encoding="utf-8")
    return root


def _tree(root: Path) -> Path:
    fort = root / "fortunes/usr/share/games/fortunes"
    fort.mkdir(parents=True)
    (fort / "wisdom").write_text("Look before you leap, my friend.\n%\nI like green tea very much.\n%\n"
                                 "The early bird catches the worm.\n%\n", encoding="utf-8")
    (fort / "wisdom.dat").write_bytes(b"\x00\x01binary")
    (fort / "off").mkdir()
    (fort / "off/rude").write_text("This offensive fortune must be excluded.\n%\n", encoding="utf-8")
    # one merged tree holding a second package
    doc = root / "merged/usr/share/doc/debian"
    doc.mkdir(parents=True)
    (doc / "social-contract.txt.gz").write_bytes(gzip.compress(
        b"Debian will remain one hundred percent free software. We will give back to the community.\n\n"
        b"    indented code block that is skipped.\n\nThe early bird catches the worm.\n"))
    (root / "merged/usr/share/doc/doc-debian").mkdir(parents=True)
    (root / "merged/usr/share/doc/doc-debian/copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\n"
        "License: GPL-2+\n", encoding="utf-8")
    return root


def test_build_from_trees(tmp_path):
    ref, tree, home = _reference(tmp_path / "ref"), _tree(tmp_path / "tree"), tmp_path / "home"
    folder = build_english_pool(["sib200-train", "fortunes", "debian-docs"], debs=[tree, tree / "merged"],
                                reference=ref, home=home, show_progress=False)
    assert folder == home / "corpora" / "english-pool"
    texts, sources = load_english_pool_table(home=home)
    assert sorted(texts) == sorted([
        "The train to Paris leaves every morning at eight.", "She won the race by a wide margin.",
        "Look before you leap, my friend.", "The early bird catches the worm.",
        "Debian will remain one hundred percent free software.", "We will give back to the community."])
    assert sources.count("fortunes") == 2 and sources.count("debian-docs") == 2  # the worm is a fortune
    m = read_manifest(folder)
    assert m["counts"] == {"sentences": 6, "per_source": {"sib200-train": 2, "fortunes": 2, "debian-docs": 2}}
    fc = m["sources"]["fortunes"]["counts"]
    assert fc["dropped"] == {IN_EVAL: 1}  # the Tatoeba sentence; the offensive file is never read
    assert m["sources"]["debian-docs"]["counts"]["dropped"] == {"duplicate": 1}
    assert m["sources"]["debian-docs"]["copyright_licences"] == ["GPL-2+"]
    assert m["sources"]["fortunes"]["version"] == "extracted tree"
    assert m["settings"]["sources"] == ["sib200-train", "fortunes", "debian-docs"]
    assert m["langalign_version"] and m["evaluation_sentences_excluded"] == 2
    assert {e["path"] for e in m["files"]} == {"sentences.txt", "sources.txt"}
    assert "This test sentence" not in (folder / "sentences.txt").read_text(encoding="utf-8")
    # loading: a seeded sample, a source filter
    assert load_english_pool(home=home, max_sentences=3, seed=1) == load_english_pool(home=home, max_sentences=3,
                                                                                      seed=1)
    assert len(load_english_pool(home=home, max_sentences=3)) == 3
    assert set(load_english_pool(home=home, sources=["sib200-train"])) == {
        "The train to Paris leaves every morning at eight.", "She won the race by a wide margin."}
    texts, sources = load_english_pool_table(home=home, max_per_source=1, seed=2)
    assert sorted(sources) == ["debian-docs", "fortunes", "sib200-train"]
    with pytest.raises(ValueError, match="not in the pool"):
        load_english_pool(home=home, sources=["wordnet"])
    # same settings: reused without reading the sources; a cap is another build
    created = m["created"]
    shutil.rmtree(tree)
    assert read_manifest(build_english_pool(["sib200-train", "fortunes", "debian-docs"], debs=[tmp_path],
                                            reference=ref, home=home))["created"] == created
    folder = build_english_pool(["sib200-train"], reference=ref, home=home, max_per_source=1, seed=3,
                                show_progress=False)
    m = read_manifest(folder)
    assert m["counts"]["sentences"] == 1 and m["sources"]["sib200-train"]["counts"]["dropped"] == {
        "over max_per_source": 1}


def test_libreoffice_dev_test_pages_stay_out(tmp_path):
    """The pool holds only the libreoffice-help corpus's *train* pages, and none of its dev/test sentences."""
    from langalign.data.libreoffice import build_libreoffice_help, load_libreoffice_help
    root = tmp_path / "tree"
    for help_dir, word in (("en-US", "The"), ("ko", "\uadf8")):
        for module in ("swriter", "scalc"):
            for i in range(12):
                p = root / "usr/share/libreoffice/help" / help_dir / "text" / module / f"p{i}.html"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(f'<div id="DisplayArea"><p id="par_id1">{word} page {module} number {i} '
                             f'is here.</p></div>', encoding="utf-8")
    build_libreoffice_help(["ko"], debs=root, home=tmp_path / "lo", min_label_pairs=1, show_progress=False)
    split_of = {}
    for split in ("train", "dev", "test"):
        for text in load_libreoffice_help("ko", split, home=tmp_path / "lo").source:
            split_of[text] = split
    folder = build_english_pool(["libreoffice-help"], debs=root, home=tmp_path / "home", reference=tmp_path,
                                show_progress=False)
    pool = set(load_english_pool(home=tmp_path / "home"))
    assert pool == {t for t, split in split_of.items() if split == "train"}
    m = read_manifest(folder)
    held = sum(1 for split in split_of.values() if split != "train")
    assert m["sources"]["libreoffice-help"]["counts"]["dropped"] == {
        "held-out files (dev/test of an evaluated corpus)": held}


def test_build_from_deb_file(tmp_path):
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb not available to make a fixture .deb")
    pkg = tmp_path / "pkg"
    fort = pkg / "usr/share/games/fortunes"
    fort.mkdir(parents=True)
    (fort / "people").write_text("Never trust a man who says he is honest.\n%\n", encoding="utf-8")
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text("Package: fortunes\nVersion: 1:9.9-1\nArchitecture: all\n"
                                        "Maintainer: T <t@example.org>\nDescription: test\n", encoding="utf-8")
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(debs / "fortunes_1%3a9.9-1_all.deb")],
                   check=True, capture_output=True)
    folder = build_english_pool(["fortunes", "wordnet"], debs=debs, home=tmp_path / "home", show_progress=False,
                                reference=tmp_path)
    m = read_manifest(folder)
    assert m["sources"]["fortunes"]["version"] == "1:9.9-1"
    assert "wordnet-base" in m["missing"] and "wordnet" not in m["sources"]
    assert load_english_pool(home=tmp_path / "home") == ["Never trust a man who says he is honest."]


def test_refuses_foreign_folder_and_bad_arguments(tmp_path):
    ref, home = _reference(tmp_path / "ref"), tmp_path / "home"
    foreign = home / "corpora" / "english-pool"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match="did not write"):
        build_english_pool(["sib200-train"], reference=ref, home=home, force=True)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(ValueError, match="unknown source"):
        build_english_pool(["tatoeba"], reference=ref, home=tmp_path / "h2")
    with pytest.raises(ValueError, match="max_per_source"):
        build_english_pool(["sib200-train"], reference=ref, home=tmp_path / "h2", max_per_source=0)
    with pytest.raises(DataError, match="langalign data build english-pool"):
        load_english_pool(home=tmp_path / "h3")
    # the reference data is checked data: a missing or broken training file is an error, not a skip
    with pytest.raises(DataError, match="not found in the reference data"):
        build_english_pool(["snli-dev"], reference=ref, home=tmp_path / "h4")
    (ref / "sib200/eng_Latn/train.tsv").write_bytes(b"index_id\tcategory\ttext\n1\tx\t\xff\xfe bad\n")
    with pytest.raises(DataError, match="UTF-8|utf-8"):
        build_english_pool(["sib200-train"], reference=ref, home=tmp_path / "h4")


def test_no_test_split_is_a_source():
    from langalign.data.pool_sources import SOURCES
    for src in SOURCES:
        for pattern in src.patterns:
            assert "tatoeba" not in pattern and "test" not in pattern and "xnli" not in pattern, (src.name, pattern)
            if src.package is None:
                assert "train" in pattern or pattern.endswith(".dev"), (src.name, pattern)


def test_cli_build(tmp_path):
    ref, tree = _reference(tmp_path / "ref"), _tree(tmp_path / "tree")
    env = dict(os.environ, LANGALIGN_NO_PROGRESS="1")
    r = subprocess.run([sys.executable, "-m", "langalign.cli", "data", "build", "english-pool", "--sources",
                        "sib200-train,fortunes", "--debs", str(tree), "--reference", str(ref), "--home",
                        str(tmp_path / "home"), "--max-per-source", "5", "--json"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["counts"]["per_source"] == {"sib200-train": 2, "fortunes": 2}
    r = subprocess.run([sys.executable, "-m", "langalign.cli", "data", "list", "--json"], capture_output=True,
                       text=True, env=dict(env, LANGALIGN_DATA_HOME=str(tmp_path / "home")), timeout=300)
    assert r.returncode == 0, r.stderr
    assert [(c["name"], c["total"]) for c in json.loads(r.stdout)["corpora"]] == [("english-pool", 4)]
    r = subprocess.run([sys.executable, "-m", "langalign.cli", "data", "build", "english-pool", "--langs", "ko"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0 and "--langs applies to libreoffice-help only" in r.stderr


# ---------------------------------------------------------------- the real pool (apt-get download)

@pytest.mark.integration
@pytest.mark.network_apt
def test_real_pool(tmp_path_factory):
    if not shutil.which("apt-get"):
        pytest.skip("apt-get not available")
    from langalign.data import find_reference_data
    try:
        find_reference_data()
    except DataError:
        pytest.skip("shared reference data not available")
    home = tmp_path_factory.mktemp("pool-home")
    try:
        folder = build_english_pool(home=home, show_progress=False)
    except Exception as e:  # noqa: BLE001 - no apt access here is a reason to skip, not a failure
        if "apt-get" in str(e):
            pytest.skip(f"apt-get download does not work here: {e}")
        raise
    m = read_manifest(folder)
    if not any("package" in st for st in m["sources"].values()):
        pytest.skip(f"no Debian package could be downloaded: {m['missing']}")
    print(json.dumps(m["counts"], indent=1))
    texts = load_english_pool(home=home)
    assert len(texts) == m["counts"]["sentences"] >= 100_000
    assert len({dedupe_key(t) for t in texts}) == len(texts)
    assert all(4 <= len(t.split()) <= 40 for t in texts)
    tatoeba = find_reference_data() / "tatoeba"
    evaluation = {dedupe_key(x) for f in tatoeba.glob("*.eng") for x in f.read_text(encoding="utf-8").splitlines()}
    assert not evaluation & {dedupe_key(t) for t in texts}
