"""ml.language: language detection for queries and posts, with None when unsure."""

from __future__ import annotations

import pytest

from ml.language import detect_language, detect_language_among, detect_languages


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("¿Quién ganó el partido de fútbol ayer por la noche?", "es"),
        ("Las vacunas contra la gripe llegan a las farmacias de Madrid", "es"),
        ("Who won the football match last night?", "en"),
        ("Heavy rain floods the streets of London again this morning", "en"),
    ],
)
def test_clear_sentences_get_their_language(text, lang):
    """A plain Spanish or English sentence is detected as es or en."""
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["ok", "", "12345 678", "!!! ??? 2022-01-31", "😀😀😀"])
def test_too_little_text_is_unknown(text):
    """Fewer than three letters (digits and symbols do not count) gives None, not a guess."""
    assert detect_language(text) is None


def test_thresholds_are_the_callers():
    """min_letters and min_confidence decide when a guess is made at all."""
    text = "Who won the football match last night?"
    assert detect_language(text, min_letters=100) is None
    assert detect_language(text, min_confidence=1.01) is None
    assert detect_language("ok", min_letters=1, min_confidence=0.0) is not None


def test_detect_languages_uses_empty_string_for_unknown():
    """detect_languages maps each text, with "" (BM25Index's unknown) where None."""
    texts = ["Lluvias torrenciales inundan las calles de Valencia", "ok", "The bread is warm"]
    assert detect_languages(texts) == ["es", "", "en"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("vacuna covid", "es"), ("lluvia Valencia", "es"), ("bread recipe", None), ("ok", None)],
)
def test_a_short_query_is_placed_among_the_given_languages(text, expected):
    """Too short for detect_language, a query is told between English and Spanish when
    the guess is sure (0.8); otherwise, and with too few letters, None."""
    assert detect_language(text) is None
    assert detect_language_among(text, ("en", "es")) == expected
