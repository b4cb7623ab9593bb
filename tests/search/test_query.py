"""search.query.parse_query: X-style operators, their errors, and the filters they make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from search.query import MAX_QUERY_CHARS, ParsedQuery, QueryError, parse_query


def day(year: int, month: int, dom: int) -> datetime:
    return datetime(year, month, dom, tzinfo=UTC)


def test_every_operator_in_one_query():
    """Words, a phrase, -word, -"phrase", from:, lang:, since: and until: all parse at once."""
    parsed = parse_query(
        'vacunas "tercera dosis" -covid -"efectos adversos" from:el_pais lang:es '
        "since:2021-06-01 until:2021-07-01 madrid"
    )
    assert parsed.text == "vacunas tercera dosis madrid"
    assert parsed.phrases == ["tercera dosis"]
    assert parsed.excluded == ["covid", "efectos adversos"]
    assert parsed.authors == ["el_pais"]
    assert parsed.lang == "es"
    assert parsed.since == day(2021, 6, 1) and parsed.until == day(2021, 7, 1)
    assert parsed.has_filters


def test_plain_words_are_text_without_filters():
    """A query of plain words is all text and has no filters."""
    parsed = parse_query("  vacunas   en  Madrid ")
    assert parsed == ParsedQuery(text="vacunas en Madrid")
    assert not parsed.has_filters
    assert parse_query("") == ParsedQuery()


def test_operator_names_are_case_insensitive():
    """FROM:, Lang:, SINCE: and Until: work like their lower-case forms; lang is lowered."""
    parsed = parse_query("FROM:Ana Lang:ES-mx SINCE:2022-01-01 Until:2022-02-01")
    assert parsed.authors == ["Ana"]  # the handle keeps its case
    assert parsed.lang == "es-mx"
    assert parsed.since == day(2022, 1, 1) and parsed.until == day(2022, 2, 1)
    assert parsed.text == ""


def test_from_takes_an_optional_at_and_several_mean_any():
    """from:@handle drops the @, and each from: adds an author."""
    parsed = parse_query("from:@ana from:ben from:@cleo_99 pan")
    assert parsed.authors == ["ana", "ben", "cleo_99"]
    assert parsed.text == "pan"


def test_unclosed_quote_runs_to_the_end():
    """An unclosed quote makes a phrase of the rest of the query."""
    parsed = parse_query('vacuna "tercera   dosis en')
    assert parsed.phrases == ["tercera dosis en"]
    assert parsed.text == "vacuna tercera dosis en"
    assert parse_query('-"efectos adversos').excluded == ["efectos adversos"]


def test_phrases_are_whitespace_normalised_and_empty_ones_dropped():
    """Runs of spaces inside quotes collapse; "" and "   " add nothing."""
    parsed = parse_query('"  la   tercera dosis " "" "   " -"  "')
    assert parsed.phrases == ["la tercera dosis"]
    assert parsed.excluded == []
    assert parsed.text == "la tercera dosis"


def test_colons_that_are_not_operators_stay_text():
    """URLs, times, "re:" and unknown name: words are text, not operators or errors."""
    parsed = parse_query("https://x.y re: 10:30 to:ana")
    assert parsed.text == "https://x.y re: 10:30 to:ana"
    assert not parsed.has_filters


def test_a_lone_minus_is_text_and_quoted_operators_are_phrases():
    """ "-" alone is a word; an operator inside quotes is phrase text, not a filter."""
    parsed = parse_query('a - b "from:ana"')
    assert parsed.text == "a - b from:ana"
    assert parsed.phrases == ["from:ana"] and parsed.authors == []


def test_keyword_filters_combine_with_operators():
    """Keyword arguments (the form's fields) hold unless an operator sets the same filter;
    from: adds to the keyword authors."""
    parsed = parse_query(
        "pan from:ben",
        since=day(2022, 1, 1),
        until=day(2022, 3, 1),
        lang="en",
        authors=["ana"],
    )
    assert parsed.authors == ["ana", "ben"]
    assert parsed.since == day(2022, 1, 1) and parsed.until == day(2022, 3, 1)
    assert parsed.lang == "en"
    overridden = parse_query("pan lang:es since:2022-02-01", since=day(2022, 1, 1), lang="en")
    assert overridden.lang == "es" and overridden.since == day(2022, 2, 1)


def test_keyword_authors_list_is_not_mutated():
    """The authors list passed in is copied, not appended to."""
    authors = ["ana"]
    parse_query("from:ben", authors=authors)
    assert authors == ["ana"]


def test_filters_dict_is_plain_values():
    """.filters gives lists, the language and ISO dates (None where unset)."""
    parsed = parse_query('"tercera dosis" -covid from:ana lang:es since:2022-01-31')
    assert parsed.filters == {
        "phrases": ["tercera dosis"],
        "excluded": ["covid"],
        "authors": ["ana"],
        "lang": "es",
        "since": "2022-01-31",
        "until": None,
    }
    assert parse_query("pan").filters == {
        "phrases": [],
        "excluded": [],
        "authors": [],
        "lang": None,
        "since": None,
        "until": None,
    }


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ("pan since:2022-13-01", ["since:2022-13-01", "not a date", "YYYY-MM-DD"]),
        ("pan until:yesterday", ["until:yesterday", "not a date"]),
        ("since:31/01/2022", ["since:31/01/2022", "not a date"]),
        ("lang:english", ["lang:english", "not a language code"]),
        ("lang:e1", ["lang:e1", "not a language code"]),
        ("pan from:", ["from:", "needs a value", "from:el_pais"]),
        ("LANG: pan", ["lang:", "needs a value"]),
        ("since:", ["since:", "needs a value"]),
        ("until:", ["until:", "needs a value"]),
        ("from:@", ["from:@", "not an author handle"]),
        ("from:ana@x", ["from:ana@x", "not an author handle"]),
        ("from:" + "a" * 65, ["from:", "not an author handle"]),
        (
            "since:2022-02-01 until:2022-01-01",
            ["since:2022-02-01", "until:2022-01-01", "no post can match"],
        ),
        ("since:2022-02-01 until:2022-02-01", ["since:2022-02-01", "not before"]),
    ],
)
def test_bad_operator_values_name_the_operator(query, fragments):
    """A bad operator value raises QueryError (a ValueError) whose message names it."""
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert isinstance(caught.value, ValueError)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_since_not_before_until_is_checked_across_keywords_and_operators():
    """A keyword since and an operator until that leave no time between them are refused."""
    with pytest.raises(QueryError, match="not before until:2022-01-05"):
        parse_query("pan until:2022-01-05", since=day(2022, 1, 10))


def test_query_length_limit():
    """MAX_QUERY_CHARS characters parse; one more raises QueryError naming q and the limit."""
    parse_query("a" * MAX_QUERY_CHARS)
    with pytest.raises(QueryError, match=f"q: at most {MAX_QUERY_CHARS} characters"):
        parse_query("a" * (MAX_QUERY_CHARS + 1))


def test_the_longest_handle_is_accepted():
    """A 64-character handle is a valid from: value."""
    assert parse_query("from:" + "a" * 64).authors == ["a" * 64]
