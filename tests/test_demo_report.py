"""The demo's table and summary are computed from its numbers (fast; no encoders)."""
from __future__ import annotations

from langalign import demo


def _results(bridge_sib: float, alt_sib: float) -> dict:
    b, s = demo.BRIDGE_TITLE, demo.SAME_TITLE
    tables = {b: {
        "SIB-200 topic | MiniLM English head | target text as is (no map)": {"ko": 0.25},
        "SIB-200 topic | MiniLM English head | + Rev-LangAlign English-only bridge": {"ko": bridge_sib},
        "SIB-200 topic | use-multilingual head | re-embed everything, zero-shot": {"ko": alt_sib},
        "Sentiment | MiniLM English head | + Rev-LangAlign English-only bridge": {"ko": 0.74},
        "Sentiment | use-multilingual head | re-embed everything, zero-shot": {"ko": 0.70},
    }, s: {f"{name} | {m}": {"ko": 0.5} for name in ("LibreOffice module (in domain)",
                                                     "SIB-200 topic (out of domain)")
           for m in ("zero-shot", "reverse", "reverse + adapt")}}
    from langalign.evaluation import like_for_like_retention

    ret = like_for_like_retention({"cosine": 0.72, "csls": 0.81},
                                  {"use-multilingual": {"cosine": 0.85, "csls": 0.88},
                                   "e5-small": {"cosine": 0.80, "csls": 0.90}})
    return {"tables": tables, "tatoeba_retention": {"ko": ret}}


def test_summary_says_wins_and_losses_from_the_numbers():
    lines = demo._summary(_results(bridge_sib=0.70, alt_sib=0.80))
    assert "beats" in lines[0] and "as is" not in lines[0]  # sentiment first; it has no no-map row
    assert "25.0% as is" in lines[1] and "trails" in lines[1] and "by 10.0 points" in lines[1]
    # like for like: CSLS by the best CSLS reference (e5-small, 0.90), cosine by the best cosine one (use, 0.85)
    assert "CSLS on both sides" in lines[2] and "ko 0.900" in lines[2] and "e5-small" in lines[2]
    assert "cosine on both sides" in lines[3] and "ko 0.847" in lines[3] and "use-multilingual" in lines[3]
    assert "beats" in demo._summary(_results(bridge_sib=0.85, alt_sib=0.80))[1]


def test_table_pads_rows_with_fewer_parts():
    table = demo._table({"a | b | c": {"ko": 0.5, "ja": 0.6}, "x | y": {"ko": 0.1}}, ["ko", "ja"])
    lines = table.splitlines()
    assert lines[0] == "| task | encoder | method | ko | ja | mean |"
    assert lines[2] == "| a | b | c | 50.0 | 60.0 | 55.0 |"
    assert lines[3] == "| x | y |  | 10.0 | nan | 10.0 |"


def test_a_zero_difference_is_a_tie_never_a_win():
    """Issue 21 item 16: the demo once said "beats re-embedding (72.8%) by 0.0 points"."""
    r = _results(bridge_sib=0.80, alt_sib=0.80)
    r["tables"][demo.BRIDGE_TITLE]["Sentiment | MiniLM English head | + Rev-LangAlign English-only bridge"] = \
        {"ko": 0.72804}
    r["tables"][demo.BRIDGE_TITLE]["Sentiment | use-multilingual head | re-embed everything, zero-shot"] = \
        {"ko": 0.72799}
    lines = demo._summary(r)
    assert "ties with re-embedding with use-multilingual (72.8%)" in lines[0] and "beats" not in lines[0]
    assert "ties with" in lines[1] and "by 0.0 points" not in " ".join(lines)


def test_the_summary_says_whether_a_difference_is_significant():
    r = _results(bridge_sib=0.70, alt_sib=0.80)
    r["paired"] = {"Sentiment": {"n": 1000, "bridge_only": 60, "reembed_only": 20},
                   "SIB-200 topic": {"n": 600, "bridge_only": 10, "reembed_only": 14}}
    lines = demo._summary(r)
    assert "beats" in lines[0] and "(significant: McNemar p = " in lines[0] and "over 1,000 paired" in lines[0]
    assert "trails" in lines[1] and "(not significant: McNemar p = " in lines[1]


def test_paired_counts_add_up_over_languages():
    r: dict = {}
    demo._paired(r, "T", ["a", "b", "c"], ["a", "x", "c"], ["a", "b", "x"])
    demo._paired(r, "T", [1, 2], [1, 1], [2, 2])
    assert r["paired"]["T"] == {"n": 5, "bridge_only": 2, "reembed_only": 2}


def test_demo_refuses_a_backend_that_changes_its_vectors(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="not 'onnx-int8'"):
        demo.run_demo(out_dir=tmp_path, backend="onnx-int8")
    assert not any(tmp_path.iterdir())  # refused before any work
