"""The support check behind every citation (ml.support) and the extractive answer
(ml.extract): plain text in, verdicts out; no models."""

from __future__ import annotations

import numpy as np
import pytest

from ml.extract import best_sentences, fit
from ml.support import check_sentences, makes_claim, support

FLU_EN = (
    "Fall vaccine campaign opens: health officials urge adults over 65 and people with "
    "chronic conditions to get their flu and COVID shots."
)
FLU_ES = (
    "Una semana de campaña y me llegan muchas dudas, así que resumo: sí, puedes ponerte "
    "la vacuna de la gripe y la de COVID el mismo día, en brazos distintos; no, no hace "
    "falta ir en ayunas; y si tienes fiebre, espera a encontrarte bien. #vacunación"
)


@pytest.mark.parametrize(
    "text",
    ["[1] [2] [3]", "Yes [1].", "The answer is [2].", "   [", "Sí [1].", "The answer is 2. [2]"],
)
def test_markers_and_filler_make_no_claim_and_never_pass(text):
    """A sentence of markers, a yes or filler claims nothing, so no post supports it."""
    assert not makes_claim(text)
    verdict = support(text, "Yes, the answer is in post 1 and 2.")
    assert not verdict.supported and verdict.reason.startswith("no claim")


def test_a_claim_no_post_makes_is_unsupported_with_its_reason():
    """The issue's health claim: the post urges both shots but never says "safe"."""
    verdict = support("The flu shot is safe with the covid vaccine.", FLU_EN)
    assert not verdict.supported and verdict.missing == ["safe"]
    assert "'safe' is not in the post" in verdict.reason


def test_a_worked_examples_words_are_unsupported():
    """The leaked example ("The bakery opened on [1] [2] [3]") rests on no read post."""
    checked = check_sentences("The bakery opened on [1] [2] [3]", sources=[FLU_ES, FLU_EN])
    assert len(checked) == 1 and not checked[0].supported
    assert "no read post supports it" in checked[0].reason and "bakery" in checked[0].reason


def test_a_sentence_in_a_posts_words_is_supported_and_recited_to_that_post():
    """A citation stands only on the post that supports it: a wrong [n] is moved to the
    read post that does, and an uncited sentence is credited to it."""
    text = (
        "Sí, puedes ponerte la vacuna de la gripe y la de COVID el mismo día [2]. "
        "Officials urge adults over 65 to get flu and COVID shots."
    )
    checked = check_sentences(text, sources=[FLU_EN, FLU_ES])
    assert [c.sources for c in checked] == [[2], [1]]
    assert checked[0].text.endswith("[2]") and checked[0].written == [2]
    assert checked[1].text.endswith("[1]") and checked[1].written == []
    assert "brazos distintos" in checked[0].evidence and checked[1].evidence == FLU_EN


def test_numbers_and_names_must_be_in_the_post():
    """A number or a name the post lacks fails the sentence, whatever else matches."""
    post = "The Panthers defense gave up just 308 points in 2015."
    assert support("The Panthers defense gave up 308 points.", post).supported
    assert not support("The Panthers defense gave up 310 points.", post).supported
    assert not support("The Broncos defense gave up 308 points.", post).supported
    assert support("Panthers defenses gave up points.", post).supported  # plural folded


def test_one_missing_word_passes_only_a_long_close_paraphrase():
    """Eight or more content words, one missing that is no number or name, and close in
    meaning (the caller's cosine): supported; short, far, or missing a name: not."""
    post = "Health officials urge adults over 65 and people with chronic conditions to get shots."
    long = "Health officials strongly urge adults over 65 and people with chronic conditions."
    assert support(long, post, cosine=0.7).supported
    assert not support(long, post, cosine=0.3).supported
    assert not support("Officials strongly urge shots.", post, cosine=0.9).supported
    named = "Health officials in Ohio urge adults over 65 and people with chronic conditions."
    assert not support(named, post, cosine=0.9).supported


def test_the_paraphrase_cosine_comes_from_the_encoder_only_when_given():
    """check_sentences asks `encode` (unit vectors) for the cosine; without it, none."""
    post = "Health officials urge adults over 65 and people with chronic conditions to get shots."
    long = "Health officials strongly urge adults over 65 and people with chronic conditions."

    def same(texts):  # every text the same unit vector: cosine 1 (unit test only)
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    assert check_sentences(long, sources=[post], encode=same)[0].supported
    assert not check_sentences(long, sources=[post])[0].supported


def test_the_best_sentence_answers_in_the_posts_words_within_the_limit():
    """The sentence holding the question's rare words wins, across posts; a "[k]" in a
    post reads "(k)"; the whole answer fits the limit."""
    sources = [
        "Rain is expected all week. The bakery opened in 1998 [3] on Main St.",
        FLU_ES,
    ]
    (pick,) = best_sentences("When did the bakery open?", sources, count=1)
    assert pick.n == 1 and pick.text == "The bakery opened in 1998 (3) on Main St."
    picks = best_sentences("¿Puedo ponerme la vacuna de la gripe y la del COVID el mismo día?",
                           sources, limit_chars=120)  # fmt: skip
    assert picks[0].n == 2 and "el mismo día" in picks[0].text
    assert sum(len(p.text) for p in picks) <= 120 and "…" in picks[0].text


def test_a_long_sentence_is_cut_to_its_clauses_with_the_question_words():
    """Too long for the room: the run of clauses holding most question words, "…" where
    cut, never mid-word; nothing when not even a clause fits."""
    text = fit(FLU_ES, {"vacuna", "gripe", "covid", "dia"}, 120)
    assert text is not None and len(text) <= 120 and "…" in text
    assert "mismo día" in text and all(part in FLU_ES for part in text.strip("… ").split(" … "))
    assert fit(FLU_ES, {"vacuna"}, 30) is None
    start = fit(FLU_ES, {"nada"}, 60)
    assert start.endswith(" …") and FLU_ES.startswith(start[:-2]) and FLU_ES[len(start) - 2] == " "
    assert fit(FLU_ES, {"nada"}, 60, start=False) is None  # a later pick is never a bare start
