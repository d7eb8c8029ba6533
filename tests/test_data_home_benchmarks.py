"""Data home, language codes, SIB-200 and Tatoeba import/load (on the shared reference data)."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from langalign.data import (data_home, download_sib200, find_reference_data, import_sib200, import_tatoeba,
                            list_corpora, load_sib200, load_sib200_parallel, load_tatoeba, normalize_lang,
                            parse_langs, read_manifest, sib200_code, tatoeba_code, verify_corpus)
from langalign.data.home import sha256_file
from langalign.errors import DataError, LangAlignError

LANGS = ["en", "ko", "ja", "zh"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGALIGN_DATA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def reference() -> Path:
    try:
        return find_reference_data()
    except DataError:
        pytest.skip("shared reference data not available")


# ---------------------------------------------------------------- home

def test_data_home_from_env(home):
    assert data_home() == home


def test_data_home_default_is_user_cache(monkeypatch):
    import platformdirs

    monkeypatch.delenv("LANGALIGN_DATA_HOME", raising=False)
    assert data_home() == Path(platformdirs.user_cache_dir("langalign"))


def test_reference_data_env_and_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGALIGN_REFERENCE_DATA", str(tmp_path))
    assert find_reference_data() == tmp_path
    monkeypatch.setenv("LANGALIGN_REFERENCE_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="LANGALIGN_REFERENCE_DATA"):
        find_reference_data()


def test_reference_data_found_next_to_repo(monkeypatch):
    monkeypatch.delenv("LANGALIGN_REFERENCE_DATA", raising=False)
    repo = Path(__file__).resolve().parents[1]
    if not (repo.parent / "shared" / "data").is_dir():
        pytest.skip("no ../shared/data next to this checkout")
    assert find_reference_data() == repo.parent / "shared" / "data"


# ---------------------------------------------------------------- language codes

@pytest.mark.parametrize("spelling", ["ko", "kor", "kor_Hang", "KO", "ko-KR", " Ko "])
def test_normalize_lang_korean(spelling):
    assert normalize_lang(spelling) == "ko"


@pytest.mark.parametrize("spelling,code", [("zh", "zh"), ("zho_Hans", "zh"), ("cmn", "zh"), ("zh_CN", "zh"),
                                           ("jpn_Jpan", "ja"), ("eng", "en"), ("en-US", "en")])
def test_normalize_lang_others(spelling, code):
    assert normalize_lang(spelling) == code


def test_dataset_codes():
    assert [sib200_code(c) for c in LANGS] == ["eng_Latn", "kor_Hang", "jpn_Jpan", "zho_Hans"]
    assert [tatoeba_code(c) for c in ["ko", "ja", "zh"]] == ["kor", "jpn", "cmn"]
    assert parse_langs("ko, kor_Hang,ja") == ["ko", "ja"]


def test_unknown_language_lists_supported():
    with pytest.raises(ValueError, match=r"unknown language 'xx'.*ko \(Korean\).*zh"):
        normalize_lang("xx")


# ---------------------------------------------------------------- SIB-200

def test_sib200_reference_counts_and_parallel_ids(reference):
    for split, n in {"train": 701, "dev": 99, "test": 204}.items():
        ids = None
        for lang in LANGS:
            ds = load_sib200(lang, split, root=reference / "sib200")
            assert len(ds) == n
            assert len(set(ds.labels)) == 7
            if ids is None:
                ids = set(ds.meta["index_id"])
            assert set(ds.meta["index_id"]) == ids


def test_import_sib200_then_load_from_home(home, reference):
    folder = import_sib200(reference / "sib200")
    m = read_manifest(folder)
    assert m["name"] == "sib200" and m["licence"] and m["created"]
    assert set(m["languages"]) >= {"eng_Latn", "kor_Hang", "jpn_Jpan", "zho_Hans"}
    for code in ("eng_Latn", "kor_Hang", "jpn_Jpan", "zho_Hans"):
        assert m["counts"][code] == {"train": 701, "dev": 99, "test": 204}
    entry = next(e for e in m["files"] if e["path"] == "kor_Hang/test.tsv")
    assert entry["sha256"] == sha256_file(folder / "kor_Hang/test.tsv")
    assert verify_corpus(folder) == []
    ds = load_sib200("ko", "test")
    assert str(folder) in ds.summary.origin  # the data home copy wins over the reference data
    ids = {lang: set(load_sib200(lang, "train").meta["index_id"]) for lang in LANGS}
    assert len({frozenset(v) for v in ids.values()}) == 1
    assert [c["name"] for c in list_corpora()] == ["sib200"]


def test_verify_detects_changed_file(home, reference):
    folder = import_sib200(reference / "sib200", langs=["ko"])
    (folder / "kor_Hang" / "dev.tsv").write_text("index_id\tcategory\ttext\n1\tx\ty\n", encoding="utf-8")
    assert verify_corpus(folder) == ["kor_Hang/dev.tsv: changed since it was written"]


def test_sib200_parallel_join(reference):
    corpus = load_sib200_parallel("en", "ko", "test", root=reference / "sib200")
    en = load_sib200("en", "test", root=reference / "sib200")
    s = corpus.summary
    assert s.rows_read == 204 and s.kept + s.total_dropped == 204
    assert len(corpus) == s.kept
    # the join is by index_id: each pair's English side is the English text with that id
    by_id = dict(zip(en.meta["index_id"], en.texts, strict=True))
    assert all(by_id[i] == src for i, src in zip(corpus.meta["index_id"], corpus.source, strict=True))
    assert len(corpus.meta["label"]) == len(corpus)


def test_sib200_parallel_identical_pairs_are_counted(tmp_path):
    for code, texts in {"eng_Latn": ["Hello there", "2024"], "kor_Hang": ["안녕", "2024"]}.items():
        (tmp_path / code).mkdir()
        for split in ("train", "dev", "test"):
            rows = "".join(f"{i}\ttravel\t{t}\n" for i, t in enumerate(texts))
            (tmp_path / code / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + rows, encoding="utf-8")
    dropped = load_sib200_parallel("en", "ko", "dev", root=tmp_path)
    assert len(dropped) == 1 and dropped.summary.dropped == {"identical sides": 1}
    kept = load_sib200_parallel("en", "ko", "dev", root=tmp_path, drop_identical=False)
    assert len(kept) == 2 and kept.summary.flagged == {"identical sides": 1}


def test_sib200_missing_language_folder_is_clear(tmp_path):
    with pytest.raises(DataError, match=r"kor_Hang/test\.tsv not found.*langalign data import sib200"):
        load_sib200("ko", "test", root=tmp_path)
    with pytest.raises(ValueError, match="unknown SIB-200 split"):
        load_sib200("ko", "validation", root=tmp_path)


def test_import_sib200_rejects_folder_without_data(home, tmp_path):
    with pytest.raises(DataError, match="no SIB-200 language folders"):
        import_sib200(tmp_path)


def test_download_sib200_offline_fails_cleanly(home, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(LangAlignError, match=r"could not download SIB-200.*langalign data import sib200 DIR"):
        download_sib200(["ko"], timeout=1)


# ---------------------------------------------------------------- Tatoeba

def test_tatoeba_reference(reference):
    for lang in ("ko", "ja", "zh"):
        corpus = load_tatoeba(lang, root=reference / "tatoeba")
        assert len(corpus) == 1000 and corpus.summary.rows_read == 1000
        assert corpus.source[0].isascii()  # English is the source side
        assert not corpus.target[0].isascii()


def test_import_tatoeba_then_load(home, reference):
    folder = import_tatoeba(reference / "tatoeba")
    m = read_manifest(folder)
    assert m["counts"] == {"cmn": 1000, "jpn": 1000, "kor": 1000}
    assert str(folder) in load_tatoeba("ko").summary.origin


def test_tatoeba_misaligned_files(home, tmp_path):
    (tmp_path / "tatoeba.kor-eng.eng").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "tatoeba.kor-eng.kor").write_text("가\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 1 lines but .* has 2; Tatoeba files must be line-aligned"):
        import_tatoeba(tmp_path)
    with pytest.raises(ValueError, match="pairs each language with English"):
        load_tatoeba("en", root=tmp_path)


def test_manifest_is_json_with_files(home, reference):
    folder = import_tatoeba(reference / "tatoeba")
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert {e["path"] for e in data["files"]} == {f"tatoeba.{c}-eng.{s}" for c in ("kor", "jpn", "cmn")
                                                  for s in (c, "eng")}
