"""The English pool's cleaning filters: sentence splitting, tidying, and the test each sentence must pass.

Prose is split into sentences by a regex splitter (abbreviations and initials protected, quotations
kept whole), typographic quotes are straightened, whitespace collapsed, list numbers stripped; a sentence
is kept if it has ``min_words``..``max_words`` words, mostly letters, mostly ASCII, no URL / path / code /
markup (inline ``<code>`` drops its sentence), no gap left by a removed link, balanced quotes and brackets,
and (for prose) starts like a sentence and ends with ``.``, ``!`` or ``?`` (:func:`drop_reason` names the
first test a sentence fails). WordNet's lower-case, unpunctuated examples and SST-2's tokenised lower-case
text are capitalised and detokenised first. Duplicates are compared by :func:`dedupe_key` (case,
punctuation and whitespace ignored). The builder is :mod:`langalign.data.english_pool`.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .corpus import EMPTY, TOO_SHORT


TOO_LONG = "too long"
FEW_LETTERS = "too few letters"
NON_ASCII = "not mostly ASCII"
CODE = "code, URL, path or markup"
NO_START = "no sentence start"
NO_END = "no sentence end"
SHOUTING = "all capitals"
DANGLING = "dangling word (removed link or markup)"
UNBALANCED = "unbalanced quotes or brackets"

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "fig", "no",
    "vol", "ch", "sec", "approx", "inc", "ltd", "co", "corp", "dept", "gen", "col", "lt", "capt", "sgt", "rev",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m",
    "p.m", "ph.d", "b.c", "a.d", "al", "esp", "viz", "ca", "op", "ed", "eds", "pp", "resp",
}
# A candidate boundary: end punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"([.!?]+[\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")
_WS = re.compile(r"\s+")
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                            "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"',
                            "\u00bb": '"', "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
                            "\u2013": "-", "\u2014": " - ", "\u2212": "-", "\u00ad": "", "\u200b": ""})
_CODE = re.compile(
    r"https?://|ftp://|www\.|//|(?:^|\s)/|\S@\S+\.\w|::|[{}<>\\|~^`_=]|[$#](?!\d)|\[\w*\]|"  # URLs, mail, markup
    r"(?:^|\s)[./~]?[\w.-]+/[\w.-]+/|\w\.(?:html?|txt|py|cfg|conf|sh|deb|xml|so|c|h|png|jpg|svg)\b|"  # paths
    r"\w\(\)|\w\.\w+\(|--\w|\s-\w\b|\.\./|\w_\w|[a-z][A-Z][a-z]+[A-Z]|"  # calls, options, identifiers
    r"\b[A-Z]{1,3}\d+:[A-Z]{1,3}\d+\b|"  # spreadsheet ranges
    r"(?<=[a-z,] )(?:None|True|False)\b")  # Python constants mid-sentence ("returns None"), not "None of us"
_ENUMERATOR = re.compile(r"^(?:\(?\d{1,3}[.)]|[-*+\u2022])\s+(?=[\"'(]?[A-Z])")
_SPACE_PUNCT = re.compile(r"\s+([.,;:!?])(?=[\s\"')]|$)")
# A function word right before punctuation: a link or code sample was removed from the sentence.
_DANGLING = re.compile(r"\b(?:see|in|on|at|from|to|the|a|an|and|or|of|with|by|for|into|under|click|choose|"
                       r"select|press|use|is|are)\s+[.,;:!?]", re.I)
_START = re.compile(r"^[\"'(]?[A-Z0-9]")
_END = re.compile(r"[.!?][\"')]*$")
# SST-2 (PTB tokenised, lower-cased) back to plain text.
_DETOK = [(re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"), (re.compile(r" ([.,!?;:%)])"), r"\1"),
          (re.compile(r"([($]) "), r"\1"), (re.compile(r"-lrb- ?"), "("), (re.compile(r" ?-rrb-"), ")"),
          (re.compile(r"``\s*|\s*''"), '"'), (re.compile(r" ` ?| ' ?(?=\w)"), " '"), (re.compile(r"\bi\b"), "I"),
          (re.compile(r" ca n't"), " can't"), (re.compile(r"\bwo n't"), "won't")]


def clean_text(text: str) -> str:
    """NFC, typographic quotes/dashes made ASCII, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    return _WS.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences on ``.``/``!``/``?`` + space + capital, keeping abbreviations and initials."""
    text = clean_text(text)
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        before = text[start:m.start(1)]
        last = before.rsplit(" ", 1)[-1].lstrip("\"'([").lower()
        if m.group(1).startswith(".") and len(m.group(1).rstrip("\"')]")) == 1 and (
                last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()) or last.isdigit()):
            continue  # "Dr. Smith", "J. R. R. Tolkien", "No. 5", "3. Open the file"
        out.append(text[start:m.end(1)].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    # A boundary inside a quotation ('He said, "Stop. Go home."') is no boundary: rejoin
    # pieces until the double quotes balance.
    merged: list[str] = []
    for piece in out:
        if merged and merged[-1].count('"') % 2 == 1:
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return merged


def tidy(sentence: str) -> str:
    """A leading list number or bullet removed, spaces before punctuation (left by removed markup) closed."""
    sentence = _ENUMERATOR.sub("", sentence)
    return _SPACE_PUNCT.sub(r"\1", sentence)


def detokenize_ptb(text: str) -> str:
    """``"it 's a charming , often affecting journey ."`` -> ``"It's a charming, often affecting journey."``."""
    for pat, rep in _DETOK:
        text = pat.sub(rep, text)
    return capitalize_first(clean_text(text))


def capitalize_first(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
        if ch not in "\"'(":
            break
    return text


def as_sentence(text: str) -> str:
    """A sentence-like item (a WordNet example) made to look like one: capital first, a final period."""
    text = capitalize_first(clean_text(text))
    if text and not _END.search(text):
        text += "."
    return text


def drop_reason(sentence: str, *, min_words: int = 4, max_words: int = 40, prose: bool = True) -> str | None:
    """Why ``sentence`` is not kept (a reason name), or None to keep it.

    ``prose=False`` (items that are sentences already) skips the start/end test.
    """
    if not sentence:
        return EMPTY
    n = len(sentence.split())
    if n < min_words:
        return TOO_SHORT
    if n > max_words:
        return TOO_LONG
    chars = sentence.replace(" ", "")
    if sum(ord(c) > 127 for c in chars) > 0.02 * len(chars) + 1:
        return NON_ASCII
    if sum(c.isalpha() for c in chars) < 0.8 * len(chars):
        return FEW_LETTERS
    if _CODE.search(sentence):
        return CODE
    if _DANGLING.search(sentence):
        return DANGLING
    if sentence.count('"') % 2 or sentence.count("(") != sentence.count(")"):
        return UNBALANCED
    letters = [c for c in sentence if c.isalpha()]
    if sum(c.isupper() for c in letters) > 0.5 * len(letters):
        return SHOUTING
    if prose:
        if not _START.match(sentence):
            return NO_START
        if not _END.search(sentence):
            return NO_END
    return None


def dedupe_key(sentence: str) -> str:
    """Case, punctuation and whitespace ignored: ``"Hello,  world!"`` and ``"hello world"`` are one sentence."""
    return " ".join(re.sub(r"[^\w\s]", " ", sentence.casefold()).split())


def dedupe(sentences: Iterable[str]) -> list[str]:
    """The first occurrence of each sentence (by :func:`dedupe_key`), order kept."""
    seen: set[str] = set()
    out = []
    for s in sentences:
        k = dedupe_key(s)
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out


__all__ = ["split_sentences", "clean_text", "tidy", "as_sentence", "drop_reason", "dedupe", "dedupe_key",
           "detokenize_ptb", "capitalize_first"]
