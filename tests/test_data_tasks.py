"""Task loaders over the shared reference data: counts from the README/SOURCE.md, normalised labels."""
from __future__ import annotations

import pytest

from langalign.data import find_reference_data
from langalign.data.tasks import (NLI_LABELS, SENTIMENT_LABELS, load_nli, load_sentiment, load_sts,
                                  load_xnli_dev_parallel)
from langalign.errors import DataError


@pytest.fixture(scope="module", autouse=True)
def reference():
    try:
        return find_reference_data()
    except DataError:
        pytest.skip("shared reference data not available")


@pytest.mark.parametrize("lang,split,n", [("en", "train", 19_666), ("en", "dev", 2_490), ("ko", "test", 5_010),
                                          ("ko", "dev", 2_490), ("ja", "test", 2_508), ("ja", "dev", 2_434),
                                          ("zh", "test", 5_010), ("zh", "dev", 2_490)])
def test_nli_counts_and_labels(lang, split, n):
    ds = load_nli(lang, split)
    assert len(ds) == n and ds.summary.total_dropped == 0
    assert ds.text_pairs is not None and len(ds.text_pairs) == n
    assert set(ds.labels) == set(NLI_LABELS)
    assert ds.meta["task"] == "nli" and ds.meta["lang"] == lang


def test_nli_known_label_counts():
    assert load_nli("ja", "test").label_counts() == {"contradiction": 776, "entailment": 367, "neutral": 1365}
    assert load_nli("zh", "test").label_counts() == {"contradiction": 1670, "entailment": 1670, "neutral": 1670}
    # KorNLI test and XNLI-zh test are row-aligned: identical label sequence
    assert load_nli("ko", "test").labels == load_nli("zh", "test").labels


def test_nli_subsample_is_seeded():
    a = load_nli("ko", "test", max_examples=100, seed=3)
    assert len(a) == 100 and a.texts == load_nli("ko", "test", max_examples=100, seed=3).texts
    assert a.texts != load_nli("ko", "test", max_examples=100, seed=4).texts


def test_nli_unknown_split_lists_available():
    with pytest.raises(DataError, match=r"no NLI data for language 'ja' split 'train'.*ko/test"):
        load_nli("ja", "train")


@pytest.mark.parametrize("lang", ["ko", "zh"])
def test_xnli_dev_parallel_is_row_aligned(lang):
    corpus = load_xnli_dev_parallel(lang)
    s = corpus.summary
    assert s.rows_read == 2 * 2_490 and s.kept + s.total_dropped == s.rows_read
    # each premise occurs on three rows: kept once, the repeats counted as duplicates
    assert s.dropped.get("duplicate", 0) >= 1_600
    assert set(corpus.meta["field"]) == {"premise", "hypothesis"}
    first = corpus.source.index("And he said, Mama, I'm home.")
    assert corpus.meta["row"][first] == 0
    assert len(corpus) == len(corpus.meta["label"])
    with pytest.raises(DataError, match="no XNLI dev translation for 'ja'"):
        load_xnli_dev_parallel("ja")


def test_xnli_dev_misalignment_is_detected(tmp_path):
    (tmp_path / "nli/xnli_xtreme").mkdir(parents=True)
    (tmp_path / "nli/xnli_xtreme/dev-en.tsv").write_text("A b.\tC d.\tneutral\nE f.\tG h.\tentailment\n",
                                                          encoding="utf-8")
    (tmp_path / "nli/xnli_xtreme/dev-zh.tsv").write_text("甲。\t乙。\tentailment\n丙。\t丁。\tneutral\n",
                                                          encoding="utf-8")
    with pytest.raises(DataError, match="not row-aligned"):
        load_xnli_dev_parallel("zh", root=tmp_path)


@pytest.mark.parametrize("lang,split,n", [("en", "test", 872), ("ko", "test", 49_997), ("ja", "test", 414),
                                          ("ja", "all", 4_224), ("zh", "test", 1_200), ("zh", "train", 9_600)])
def test_sentiment_counts_and_labels(lang, split, n):
    ds = load_sentiment(lang, split)
    assert len(ds) == n
    assert set(ds.labels) == set(SENTIMENT_LABELS)
    assert ds.summary.kept == n and ds.summary.kept + ds.summary.total_dropped == ds.summary.rows_read


def test_sentiment_drops_are_counted():
    assert load_sentiment("ko", "test").summary.dropped == {"empty text": 3}  # 3 NSMC reviews are empty
    ja = load_sentiment("ja", "test")
    assert ja.label_counts() == {"negative": 78, "positive": 336}
    assert ja.summary.dropped["neutral (binary task)"] == 139
    en = load_sentiment("en", "train")
    assert all(len(t.split()) >= 6 for t in en.texts)
    assert en.summary.rows_read == 60_614 and en.summary.dropped["too short (< 6 words)"] > 0


@pytest.mark.parametrize("lang", ["en", "ko", "ja", "zh"])
@pytest.mark.parametrize("split,n", [("train", 5_749), ("dev", 1_500), ("test", 1_379)])
def test_sts_counts_and_float_scores(lang, split, n):
    ds = load_sts(lang, split)
    assert len(ds) == n and ds.text_pairs is not None
    assert all(isinstance(x, float) and 0.0 <= x <= 5.0 for x in ds.labels)


def test_sts_is_row_parallel_across_languages():
    assert load_sts("en", "test").labels == pytest.approx(load_sts("ko", "test").labels)
    assert load_sts("ja", "dev").labels == load_sts("zh", "dev").labels
