"""Readers: every format, every validation message, and round-trip properties."""
from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langalign.data import (LabelledDataset, ParallelCorpus, ReadSummary, normalize_text, read_labelled,
                            read_parallel, write_parallel, write_table)
from langalign.errors import DataError

PAIRS = [("Hello world", "안녕 세상"), ("Good morning", "おはよう"), ("Thank you", "谢谢")]


def _write(path, text: str | bytes):
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def _tsv(pairs, header="source\ttarget"):
    return header + "\n" + "".join(f"{s}\t{t}\n" for s, t in pairs)


# ---------------------------------------------------------------- each format reads

@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl", "parquet"])
def test_read_parallel_every_format(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"pairs.{fmt}"
    write_table(path, {"source": [s for s, _ in PAIRS], "target": [t for _, t in PAIRS]})
    corpus = read_parallel(path)
    assert isinstance(corpus, ParallelCorpus)
    assert list(corpus.pairs()) == PAIRS
    assert len(corpus) == 3
    assert corpus.summary.rows_read == 3 and corpus.summary.kept == 3 and corpus.summary.total_dropped == 0


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl", "parquet"])
def test_read_labelled_every_format_with_pairs(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"nli.{fmt}"
    write_table(path, {"premise": ["A man eats.", "A dog runs."], "hypothesis": ["Someone eats.", "A cat sleeps."],
                       "gold": ["entailment", "contradiction"], "id": ["1", "2"]})
    ds = read_labelled(path, text="premise", text_pair="hypothesis", label="gold", extra_columns=("id",))
    assert isinstance(ds, LabelledDataset)
    assert ds.texts == ["A man eats.", "A dog runs."]
    assert ds.text_pairs == ["Someone eats.", "A cat sleeps."]
    assert ds.labels == ["entailment", "contradiction"]
    assert ds.meta == {"id": ["1", "2"]}
    assert len(ds) == 2


def test_format_override_and_json_array(tmp_path):
    path = _write(tmp_path / "data.txt", _tsv(PAIRS))
    assert len(read_parallel(path, format="tsv")) == 3
    arr = _write(tmp_path / "data.json", json.dumps([{"source": s, "target": t} for s, t in PAIRS]))
    assert list(read_parallel(arr).pairs()) == PAIRS
    jsonl = _write(tmp_path / "lines.json", "".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in PAIRS))
    assert list(read_parallel(jsonl).pairs()) == PAIRS


def test_unknown_extension_says_what_to_do(tmp_path):
    path = _write(tmp_path / "data.txt", _tsv(PAIRS))
    with pytest.raises(DataError, match=r"data\.txt.*format="):
        read_parallel(path)
    with pytest.raises(ValueError, match="unknown format"):
        read_parallel(path, format="xlsx")


def test_tsv_quotes_are_ordinary_characters(tmp_path):
    path = _write(tmp_path / "q.tsv", 'source\ttarget\n"Quoted" start\t"인용"\nit\'s "x\tそれは"\n')
    corpus = read_parallel(path)
    assert corpus.source == ['"Quoted" start', 'it\'s "x']
    assert corpus.target == ['"인용"', 'それは"']


def test_headerless_positional_columns(tmp_path):
    path = _write(tmp_path / "p.tsv", "a b\tx y\tneutral\nc d\tz w\tentailment\n")
    ds = read_labelled(path, text=0, text_pair=1, label=2)
    assert ds.labels == ["neutral", "entailment"] and ds.text_pairs == ["x y", "z w"]
    with pytest.raises(DataError, match="column 5 requested"):
        read_labelled(path, text=0, label=5)
    with pytest.raises(ValueError, match="all names or all positions"):
        read_labelled(path, text=0, label="label")


def test_crlf_and_bom_are_handled(tmp_path):
    path = _write(tmp_path / "w.tsv", "\ufeffsource\ttarget\r\nHello there\t안녕\r\n")
    assert list(read_parallel(path).pairs()) == [("Hello there", "안녕")]


# ---------------------------------------------------------------- validation messages

def test_missing_column_names_column_and_found_columns(tmp_path):
    path = _write(tmp_path / "m.tsv", "src\ttgt\nHello\t안녕\n")
    with pytest.raises(DataError) as e:
        read_parallel(path)
    msg = str(e.value)
    assert "m.tsv" in msg and "missing column 'source'" in msg and "'src'" in msg and "'tgt'" in msg


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_missing_column_other_formats(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"m.{fmt}"
    write_table(path, {"text": ["a b"], "lab": ["x"]})
    with pytest.raises(DataError, match=r"missing column 'label'.*'text', 'lab'"):
        read_labelled(path)


def test_truncated_tsv_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "t.tsv", "source\ttarget\nHello\t안녕\nBroken line\nok\tok2\n")
    with pytest.raises(DataError, match=r"t\.tsv: line 3: expected 2 fields \(source, target\) but found 1"):
        read_parallel(path)


def test_extra_field_in_tsv(tmp_path):
    path = _write(tmp_path / "t.tsv", "source\ttarget\nHello\t안녕\tstray\n")
    with pytest.raises(DataError, match=r"line 2: expected 2 fields.*found 3"):
        read_parallel(path)


def test_csv_wrong_field_count_and_bad_quoting(tmp_path):
    path = _write(tmp_path / "c.csv", 'source,target\n"a, b",c\nonly-one\n')
    with pytest.raises(DataError, match=r"c\.csv: line 3: expected 2 fields"):
        read_parallel(path)
    path = _write(tmp_path / "q.csv", 'source,target\n"unterminated,c\n')
    with pytest.raises(DataError, match=r"q\.csv: line \d+: malformed CSV"):
        read_parallel(path)


def test_bad_bytes_name_file_line_and_offset(tmp_path):
    data = "source\ttarget\nHello\t안녕\n".encode() + b"bad \xff byte\tx\n"
    path = _write(tmp_path / "b.tsv", data)
    offset = data.index(b"\xff")
    with pytest.raises(DataError) as e:
        read_parallel(path)
    msg = str(e.value)
    assert "b.tsv" in msg and "line 3" in msg and f"byte offset {offset}" in msg and "0xff" in msg
    assert e.value.__cause__ is None  # no raw codec error chained


def test_bad_bytes_in_jsonl(tmp_path):
    path = _write(tmp_path / "b.jsonl", b'{"source": "a", "target": "b"}\n{"source": "\xc3(", "target": "x"}\n')
    with pytest.raises(DataError, match=r"b\.jsonl: line 2: invalid UTF-8 byte 0xc3 at byte offset 43 \(column 13"):
        read_parallel(path)


@pytest.mark.parametrize("name", ["e.tsv", "e.csv", "e.jsonl", "e.parquet"])
def test_empty_file(tmp_path, name):
    path = _write(tmp_path / name, b"")
    with pytest.raises(DataError, match="file is empty"):
        read_parallel(path)


def test_whitespace_only_and_header_only(tmp_path):
    with pytest.raises(DataError, match="file is empty"):
        read_parallel(_write(tmp_path / "w.tsv", "\n\n  \n"))
    with pytest.raises(DataError, match=r"no data rows \(only a header\)"):
        read_parallel(_write(tmp_path / "h.tsv", "source\ttarget\n"))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_parallel(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="is a folder"):
        read_parallel(tmp_path)


def test_invalid_json_line(tmp_path):
    path = _write(tmp_path / "j.jsonl", '{"source": "a", "target": "b"}\n{"source": "a",\n')
    with pytest.raises(DataError, match=r"j\.jsonl: line 2: invalid JSON"):
        read_parallel(path)
    path = _write(tmp_path / "k.jsonl", '["a", "b"]\n')
    with pytest.raises(DataError, match=r"line 1: expected a JSON object, found list"):
        read_parallel(path)


def test_non_text_value_in_json(tmp_path):
    path = _write(tmp_path / "n.jsonl", '{"source": 5, "target": "b"}\n')
    with pytest.raises(DataError, match=r"line 1: column 'source' holds int"):
        read_parallel(path)


def test_corrupt_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = _write(tmp_path / "x.parquet", b"not parquet at all")
    with pytest.raises(DataError, match=r"x\.parquet: not a readable Parquet file"):
        read_parallel(path)


# ---------------------------------------------------------------- drops are counted, never silent

def test_empty_cells_skipped_with_count_or_strict(tmp_path):
    path = _write(tmp_path / "e.tsv", "source\ttarget\nHello there\t안녕\n  \t비어\nOnly source\t\n")
    corpus = read_parallel(path)
    assert len(corpus) == 1
    assert corpus.summary.dropped == {"empty text": 2}
    assert corpus.summary.rows_read == 3
    with pytest.raises(DataError, match=r"e\.tsv: line 3: empty source text"):
        read_parallel(path, strict=True)


def test_empty_label_counted(tmp_path):
    path = _write(tmp_path / "l.tsv", "text\tlabel\nfine text\tpos\nno label\t\n\tneg\n")
    ds = read_labelled(path)
    assert ds.texts == ["fine text"]
    assert ds.summary.dropped == {"empty label": 1, "empty text": 1}
    with pytest.raises(DataError, match="line 3: empty label"):
        read_labelled(path, strict=True)


def test_duplicates_and_identical_dropped_and_counted(tmp_path):
    rows = [("Open file", "파일 열기"), ("Open file", "파일 열기"), ("LibreOffice", "LibreOffice"),
            ("Save file", "파일 저장")]
    path = _write(tmp_path / "d.tsv", _tsv(rows))
    corpus = read_parallel(path)
    assert corpus.source == ["Open file", "Save file"]
    assert corpus.summary.dropped == {"duplicate": 1, "identical sides": 1}
    assert corpus.summary.kept + corpus.summary.total_dropped == corpus.summary.rows_read
    kept_all = read_parallel(path, dedupe=False, drop_identical=False)
    assert len(kept_all) == 4
    assert kept_all.summary.flagged == {"duplicate": 1, "identical sides": 1}


def test_blank_lines_counted(tmp_path):
    path = _write(tmp_path / "b.tsv", "source\ttarget\nA b\tc\n\nD e\tf\n")
    corpus = read_parallel(path)
    assert len(corpus) == 2 and corpus.summary.dropped == {"blank line": 1}


def test_unicode_normalisation_configurable(tmp_path):
    decomposed = "e\u0301t\u00e9"  # e + combining acute, then precomposed é
    path = _write(tmp_path / "n.tsv", f"source\ttarget\n{decomposed}\t한글\n")
    assert read_parallel(path).source == ["\u00e9t\u00e9"]
    assert read_parallel(path, normalize="NFD").source == ["e\u0301te\u0301"]
    assert read_parallel(path, normalize=None).source == [decomposed]
    with pytest.raises(ValueError, match="normalize must be"):
        read_parallel(path, normalize="NFX")


def test_summary_str_and_logging(tmp_path, caplog):
    path = _write(tmp_path / "s.tsv", _tsv([("A b", "c"), ("A b", "c"), ("", "x")]))
    with caplog.at_level(logging.INFO, logger="langalign.data"):
        corpus = read_parallel(path)
    text = str(corpus.summary)
    assert "read 3 rows" in text and "kept 1" in text and "duplicate: 1" in text and "empty text: 1" in text
    assert any("kept 1" in r.getMessage() for r in caplog.records)
    assert str(ReadSummary(origin="x", rows_read=2, kept=2)) == "read 2 rows from x: kept 2, dropped 0"


def test_subset_and_sample_keep_meta_aligned(tmp_path):
    path = _write(tmp_path / "m.tsv", "text\tlabel\tid\n" + "".join(f"t{i} x\tl{i % 2}\t{i}\n" for i in range(10)))
    ds = read_labelled(path, extra_columns=("id",))
    sub = ds.sample(4, seed=1)
    assert len(sub) == 4 and sub.sample(10) is sub
    for t, i in zip(sub.texts, sub.meta["id"], strict=True):
        assert t == f"t{i} x"
    assert ds.sample(4, seed=1).texts == sub.texts  # seeded: reproducible


def test_tsv_writer_refuses_tabs(tmp_path):
    with pytest.raises(DataError, match="TSV cannot hold a tab"):
        write_table(tmp_path / "x.tsv", {"source": ["a\tb"], "target": ["c"]})


# ---------------------------------------------------------------- round-trip properties

# TSV has no quoting, so its texts exclude tab and line breaks (the writer refuses them);
# every other format must round-trip any text. Surrogates cannot be encoded as UTF-8 at all.
_any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
_tsv_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"),
                    min_size=1, max_size=30)


def _expected(pairs):
    """What read_parallel should return: normalised pairs, empties/identical/duplicates dropped."""
    out, seen = [], set()
    for s, t in pairs:
        s, t = normalize_text(s), normalize_text(t)
        if s and t and s != t and (s, t) not in seen:
            seen.add((s, t))
            out.append((s, t))
    return out


def _roundtrip(tmp_path, fmt, pairs):
    path = tmp_path / f"rt.{fmt}"
    if not pairs:
        return
    write_table(path, {"source": [s for s, _ in pairs], "target": [t for _, t in pairs]})
    exp = _expected(pairs)
    corpus = read_parallel(path)
    assert list(corpus.pairs()) == exp
    assert corpus.summary.kept + corpus.summary.total_dropped == corpus.summary.rows_read == len(pairs)


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(st.lists(st.tuples(_tsv_text, _tsv_text), min_size=1, max_size=8))
def test_roundtrip_tsv(tmp_path, pairs):
    _roundtrip(tmp_path, "tsv", pairs)


@_SETTINGS
@given(st.lists(st.tuples(_any_text, _any_text), min_size=1, max_size=8))
def test_roundtrip_csv(tmp_path, pairs):
    _roundtrip(tmp_path, "csv", pairs)


@_SETTINGS
@given(st.lists(st.tuples(_any_text, _any_text), min_size=1, max_size=8))
def test_roundtrip_jsonl(tmp_path, pairs):
    _roundtrip(tmp_path, "jsonl", pairs)


@_SETTINGS
@given(st.lists(st.tuples(_any_text, _any_text), min_size=1, max_size=8))
def test_roundtrip_parquet(tmp_path, pairs):
    pytest.importorskip("pyarrow")
    _roundtrip(tmp_path, "parquet", pairs)


@_SETTINGS
@given(st.lists(st.tuples(_any_text, _any_text), min_size=1, max_size=8))
def test_write_parallel_roundtrip_without_cleaning(tmp_path, pairs):
    clean = [(normalize_text(s), normalize_text(t)) for s, t in pairs]
    clean = [p for p in clean if p[0] and p[1]]
    if not clean:
        return
    corpus = ParallelCorpus([s for s, _ in clean], [t for _, t in clean], {"n": list(range(len(clean)))})
    path = write_parallel(corpus, tmp_path / "wp.jsonl")
    back = read_parallel(path, dedupe=False, drop_identical=False, extra_columns=("n",))
    assert back.source == corpus.source and back.target == corpus.target
    assert back.meta == {"n": list(range(len(clean)))}
