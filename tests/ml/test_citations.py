"""ml.citations: citations checked as tokens arrive, and sentences attributed after."""

from __future__ import annotations

import numpy as np
import pytest

from ml.citations import CitationTracker, attribute, cited_sources, split_sentences


def run(pieces, n_sources):
    tracker = CitationTracker(n_sources)
    shown = "".join(tracker.feed(p) for p in pieces) + tracker.flush()
    return shown, tracker


@pytest.mark.parametrize(
    ("pieces", "shown", "cited", "dropped"),
    [
        (["Paris is the capital [1]."], "Paris is the capital [1].", [1], []),
        (["It rained [", "2", "] and [1", "]."], "It rained [2] and [1].", [2, 1], []),
        (["Made up [7]."], "Made up .", [], [7]),
        (["Both [1, 3]", " agree [3]."], "Both [1][3] agree [3].", [1, 3], []),
        (["Mixed [2, 9]."], "Mixed [2].", [2], [9]),
        (["A [sic] quote."], "A [sic] quote.", [], []),
        (["Ends open [1"], "Ends open [1", [], []),  # never closed: text, not a citation
        (["[0] and [3]"], " and [3]", [3], [0]),
    ],
)
def test_citations_are_checked_as_they_stream(pieces, shown, cited, dropped):
    """Only numbers that point at a source survive, whatever the piece boundaries."""
    out, tracker = run(pieces, 3)
    assert out == shown and tracker.cited == cited and tracker.dropped == dropped


def test_text_is_released_as_soon_as_it_cannot_be_a_citation():
    """Only an unfinished bracket of digits is held back."""
    tracker = CitationTracker(2)
    assert tracker.feed("See [") == "See "
    assert tracker.feed("1") == ""
    assert tracker.feed("] now") == "[1] now"
    assert tracker.feed(" [a") == " [a"


def test_sentences_split_on_ends_and_lines():
    assert split_sentences("One. Two!\nThree? Four") == ["One.", "Two!", "Three?", "Four"]


def encode_words(texts):
    """A bag-of-words unit vector over a tiny vocabulary (unit test only: the real encoder
    path is exercised by the answer tests)."""
    vocab = ["paris", "capital", "rain", "madrid", "flood", "coffee"]
    rows = np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def test_uncited_sentences_are_attributed_or_marked_unsupported():
    """A cited sentence keeps its citation; an uncited one gets the most similar source
    above the threshold; one no source supports has none."""
    sources = encode_words(["Paris is the capital", "Rain floods Madrid"])
    text = "The capital is Paris [2]. Madrid had a flood of rain. Coffee is nice."
    sentences = attribute(text, sources, encode_words, threshold=0.5)
    assert [s.cited for s in sentences] == [[2], [], []]
    assert sentences[1].attributed == 2 and sentences[1].supported
    assert sentences[2].attributed is None and not sentences[2].supported
    assert cited_sources(sentences) == [2]


def test_a_sentence_that_copies_a_sources_words_is_attributed_to_it():
    """Low cosine (a short sentence against a long source) but the source's own words:
    attributed by overlap; too few words, or words from nowhere, stay unsupported."""
    sources = encode_words(["rain", "coffee"])  # vectors unrelated to the sentences below
    texts = ["The Panthers defense gave up just 308 points", "Coffee grows in Brazil"]
    sentences = attribute(
        "It gave up 308 points. Points. Zebras sing.",
        sources,
        encode_words,
        threshold=0.99,
        source_texts=texts,
    )
    assert [s.attributed for s in sentences] == [1, None, None]


def test_a_sentence_that_adds_only_source_words_to_the_question_is_attributed():
    """With the question: a sentence that restates it and adds only words one source has
    is attributed to the first such source; a sentence that adds a name no source has, or
    adds nothing to the question, stays unsupported."""
    sources = encode_words(["rain", "coffee"])  # vectors unrelated to the sentences below
    texts = ["Coffee grows in Brazil", "Anderson scored a 2-yard touchdown late in the game"]
    question = "Which player scored a 2-yard touchdown in the fourth quarter?"
    sentences = attribute(
        "The player who scored a 2-yard touchdown in the fourth quarter was Anderson. "
        "The player who scored was Katy Lawless. "
        "A player scored a touchdown in the fourth quarter.",
        sources,
        encode_words,
        threshold=0.99,
        source_texts=texts,
        question=question,
    )
    assert [s.attributed for s in sentences] == [2, None, None]
    no_question = attribute(sentences[0].text, sources, encode_words, threshold=0.99,
                            source_texts=texts)  # fmt: skip
    assert no_question[0].attributed is None
