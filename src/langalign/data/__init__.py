"""The data layer: readers, the data home, language codes, benchmark sets and corpus builders.

Everything a user loads comes back as a :class:`ParallelCorpus` or a
:class:`LabelledDataset` with a :class:`ReadSummary` saying what was read,
kept and dropped (and why).
"""
from .benchmarks import (download_sib200, import_sib200, import_tatoeba, load_sib200,
                         load_sib200_parallel, load_tatoeba)
from .corpus import LabelledDataset, ParallelCorpus, ReadSummary
from .home import (corpus_dir, data_home, find_reference_data, list_corpora, read_manifest,
                   verify_corpus)
from .libreoffice import build_libreoffice_help, load_libreoffice_help
from .english_pool import build_english_pool, load_english_pool, load_english_pool_table
from .langcodes import normalize_lang, parse_langs, sib200_code, supported_languages, tatoeba_code
from .tasks import load_nli, load_sentiment, load_sts, load_xnli_dev_parallel
from .readers import read_labelled, read_parallel, write_parallel, write_table
from .records import normalize_text

__all__ = [
    "ParallelCorpus", "LabelledDataset", "ReadSummary",
    "read_parallel", "read_labelled", "write_parallel", "write_table", "normalize_text",
    "data_home", "corpus_dir", "find_reference_data", "list_corpora", "read_manifest", "verify_corpus",
    "normalize_lang", "parse_langs", "sib200_code", "tatoeba_code", "supported_languages",
    "import_sib200", "import_tatoeba", "download_sib200", "load_sib200", "load_sib200_parallel",
    "load_tatoeba", "build_libreoffice_help", "load_libreoffice_help",
    "build_english_pool", "load_english_pool", "load_english_pool_table",
    "load_nli", "load_xnli_dev_parallel", "load_sentiment", "load_sts",
]
