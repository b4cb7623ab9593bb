"""ml.citations: citations checked as tokens arrive; sentences split."""

from __future__ import annotations

import pytest

from ml.citations import CitationTracker, split_sentences


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
