"""Which language a text is in, for queries and for posts that arrive without one.

    detect_language("¿Quién ganó el partido?")   # -> "es"
    detect_language("ok")                        # -> None: too little to tell
    detect_language_among("vacuna covid", ("en", "es"))   # -> "es"

py3langid (a maintained fork of langid.py, its model inside the wheel: nothing is
downloaded) classifies 97 languages. A guess below `min_confidence` is no guess: callers
treat None as "unknown" and fall back to behaviour that needs no language.
"""

from __future__ import annotations

import functools
import re

_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, *, min_confidence: float = 0.5, min_letters: int = 3) -> str | None:
    """ISO 639-1 code of `text`'s language, or None when unsure or there is too little text."""
    if len(_LETTERS.findall(text)) < min_letters:
        return None
    lang, confidence = _identifier().classify(text)
    return lang if confidence >= min_confidence else None


@functools.cache
def _identifier_among(languages: tuple[str, ...]):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def detect_language_among(
    text: str, languages: tuple[str, ...], *, min_confidence: float = 0.8, min_letters: int = 3
) -> str | None:
    """Which of `languages` `text` is in, or None when unsure: for a query too short for
    detect_language ("vacuna covid" is Catalan at 15% among 97 languages, Spanish at 96%
    between English and Spanish)."""
    if len(_LETTERS.findall(text)) < min_letters:
        return None
    lang, confidence = _identifier_among(tuple(sorted(languages))).classify(text)
    return lang if confidence >= min_confidence else None


def detect_languages(texts: list[str], **kwargs) -> list[str]:
    """detect_language for each text, "" where unknown (the form BM25Index keeps)."""
    return [detect_language(text, **kwargs) or "" for text in texts]
