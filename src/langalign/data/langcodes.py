"""Language codes: one canonical code per language, and the names each data set uses.

Users type ``ko``, ``kor``, ``kor_Hang`` or ``KO``; SIB-200 folders are named
``kor_Hang``, Tatoeba files ``kor``, Debian's LibreOffice help packages ``ko``.
This table is the single place that knows all of them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str            # canonical, ISO 639-1 where one exists
    name: str
    sib200: str          # SIB-200 / FLORES-200 folder
    tatoeba: str         # Tatoeba (LASER) file code
    help_dir: str        # folder under usr/share/libreoffice/help/
    help_package: str    # Debian package with the LibreOffice help
    aliases: tuple[str, ...] = ()


LANGUAGES: dict[str, Language] = {lang.code: lang for lang in [
    Language("en", "English", "eng_Latn", "eng", "en-US", "libreoffice-help-en-us", ("eng", "en-us", "en-gb")),
    Language("ko", "Korean", "kor_Hang", "kor", "ko", "libreoffice-help-ko", ("kor", "ko-kr")),
    Language("ja", "Japanese", "jpn_Jpan", "jpn", "ja", "libreoffice-help-ja", ("jpn", "ja-jp")),
    # Chinese here means Simplified (zho_Hans, zh-CN); Tatoeba's "cmn" set mixes scripts.
    Language("zh", "Chinese (Simplified)", "zho_Hans", "cmn", "zh-CN", "libreoffice-help-zh-cn",
             ("zho", "chi", "cmn", "zh-cn", "zh-hans", "cmn-hans")),
    Language("de", "German", "deu_Latn", "deu", "de", "libreoffice-help-de", ("deu", "ger")),
    Language("fr", "French", "fra_Latn", "fra", "fr", "libreoffice-help-fr", ("fra", "fre")),
    Language("es", "Spanish", "spa_Latn", "spa", "es", "libreoffice-help-es", ("spa",)),
]}


def _key(code: str) -> str:
    return code.strip().lower().replace("_", "-")


_ALIASES: dict[str, str] = {}
for _lang in LANGUAGES.values():
    for _alias in (_lang.code, _lang.sib200, _lang.tatoeba, _lang.help_dir, *_lang.aliases):
        _ALIASES[_key(_alias)] = _lang.code


def supported_languages() -> list[str]:
    return list(LANGUAGES)


def normalize_lang(code: str) -> str:
    """The canonical code for any known spelling: ``"kor_Hang"`` -> ``"ko"``.

    Raises ValueError listing the supported languages for an unknown code.
    """
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"language code must be a non-empty string, got {code!r}")
    try:
        return _ALIASES[_key(code)]
    except KeyError:
        supported = ", ".join(f"{c} ({l.name})" for c, l in LANGUAGES.items())
        raise ValueError(f"unknown language {code!r}; supported: {supported}") from None


def language(code: str) -> Language:
    return LANGUAGES[normalize_lang(code)]


def sib200_code(code: str) -> str:
    """SIB-200 folder name: ``"ko"`` -> ``"kor_Hang"``."""
    return language(code).sib200


def tatoeba_code(code: str) -> str:
    """Tatoeba file code: ``"zh"`` -> ``"cmn"``."""
    return language(code).tatoeba


def parse_langs(spec: str | Sequence[str]) -> list[str]:
    """``"ko,ja, zh"`` or a list -> canonical codes, order kept, duplicates removed."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        code = normalize_lang(item)
        if code not in out:
            out.append(code)
    if not out:
        raise ValueError(f"no languages given in {spec!r}")
    return out
