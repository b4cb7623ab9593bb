"""Citations in a generated answer, checked as the tokens arrive; sentences split.

    tracker = CitationTracker(n_sources=3)
    for piece in stream:
        shown = tracker.feed(piece)        # "[2]" passes, "[7]" (no such post) is dropped,
                                           # an unfinished "[1" waits for its "]"
    shown += tracker.flush()
    tracker.cited                          # [2, 1]: valid numbers, in order of first use

    split_sentences("One. Two!")           # ["One.", "Two!"]

A citation is `[n]` or `[n, m]` with 1 <= n <= the number of sources; anything else in
brackets that is not a number list ("[sic]") is ordinary text. Whether the post a
sentence cites supports it is ml.support's question.
"""

from __future__ import annotations

import re

CITATION = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]")
_OPEN = re.compile(r"\[[\d,\s]{0,12}$")  # a citation that may still be arriving
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")


class CitationTracker:
    """See the module docstring."""

    def __init__(self, n_sources: int):
        self.n_sources = n_sources
        self.cited: list[int] = []
        self.dropped: list[int] = []
        self._pending = ""

    def _clean(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
            valid = [n for n in numbers if 1 <= n <= self.n_sources]
            self.dropped += [n for n in numbers if n not in valid]
            for n in valid:
                if n not in self.cited:
                    self.cited.append(n)
            return "".join(f"[{n}]" for n in valid)

        return CITATION.sub(replace, text)

    def feed(self, piece: str) -> str:
        """Text safe to show now: complete citations checked, a partial one held back."""
        self._pending += piece
        held = _OPEN.search(self._pending)
        cut = held.start() if held else len(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._clean(ready)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self._clean(rest)


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text) if part and part.strip()]
