"""The answers a new user saw go wrong on the demo posts, asked again with the real
encoder and the bundled SmolLM2 on the default style: each is cited by a post that
supports it, in the question's language, or says honestly that nothing was found."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from ml.answer_compose import NOTHING_FOUND_IN
from ml.bm25 import fold
from ml.language import detect_language
from ml.support import support
from search.chain import answer_stream
from search.management.commands.evaluate_answers import example_leaks, independently_supported
from search.services import index_sync

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

DEMO = Path(settings.BASE_DIR) / "posts" / "demo" / "posts.jsonl"


@pytest.fixture
def demo_posts(index_dir):
    call_command("import_posts", str(DEMO), "--source", "demo", "--no-progress", stdout=StringIO())
    index_sync.index_flush()


def check(question: str, language: str):
    """The answer, after asserting what every answer must be."""
    result = list(answer_stream(question=question))[-1].result
    read = [source.text for source in result.sources]
    if result.text == NOTHING_FOUND_IN[language]:
        assert not result.citations
        return result
    assert result.sentences and result.citations, result.text
    for sentence in result.sentences:
        (n,) = sentence.sources
        post = read[n - 1]
        assert support(sentence.claim, post).supported, (sentence.text, post)
        assert independently_supported(sentence.text, post), (sentence.text, post)
    plain = re.sub(r"\[\d+\]|[“”«»]", " ", result.text)
    assert detect_language(plain) == language, result.text
    assert example_leaks(result.text, read) == [], result.text
    return result


def test_a_spanish_keyword_query_is_answered_in_spanish_with_no_bare_markers(demo_posts):
    """`vacuna covid` once gave "The bakery opened on [1] [2] [3]": English, the worked
    example's words, markers with no claim."""
    result = check("vacuna covid", "es")
    assert "bakery" not in fold(result.text) and "panaderia" not in fold(result.text)
    assert not re.search(r"\]\s*\[", result.text)  # no run of bare markers
    assert all(len(s.claim.split()) >= 3 for s in result.sentences)


def test_a_health_question_gets_no_claim_that_no_post_makes(demo_posts):
    """ "Is the flu shot safe with the covid vaccine?" once got "The flu shot is safe with
    the covid vaccine.", uncited: no post says it is safe."""
    result = check("Is the flu shot safe with the covid vaccine?", "en")
    assert "safe" not in fold(result.text)
    assert any("flu" in fold(s.claim) and "covid" in fold(s.claim) for s in result.sentences)


def test_the_spanish_question_gets_the_posts_own_yes(demo_posts):
    """ "¿Puedo ponerme la vacuna de la gripe y la del COVID el mismo día?" once got
    "Puedes poner la vacuna de la gripe.", uncited, while a post says it word for word."""
    result = check("¿Puedo ponerme la vacuna de la gripe y la del COVID el mismo día?", "es")
    assert "puedes ponerte la vacuna de la gripe y la de covid el mismo dia" in fold(result.text)
    cited = result.hits[result.citations[0] - 1].post
    assert cited.external_id == "demo-0381"
