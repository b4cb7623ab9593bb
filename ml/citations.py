"""Citations in a generated answer: checked as the tokens arrive, and filled in after.

    tracker = CitationTracker(n_sources=3)
    for piece in stream:
        shown = tracker.feed(piece)        # "[2]" passes, "[7]" (no such post) is dropped,
                                           # an unfinished "[1" waits for its "]"
    shown += tracker.flush()
    tracker.cited                          # [2, 1]: valid numbers, in order of first use

    sentences = attribute(text, source_vectors, encode, threshold=0.5)

A citation is `[n]` or `[n, m]` with 1 <= n <= the number of sources; anything else in
brackets that is not a number list ("[sic]") is ordinary text. Small models rarely cite,
so `attribute` splits the answer into sentences, keeps the citations a sentence has, and
gives an uncited sentence the source most similar to it (cosine of the encoder's vectors)
when that similarity reaches `threshold`; a sentence no source reaches is marked
unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.bm25 import tokenize

_CITATION = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]")
_OPEN = re.compile(r"\[[\d,\s]{0,12}$")  # a citation that may still be arriving
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
# Words an answer wraps its content in, which no source needs to contain (accent-folded,
# as ml.bm25.tokenize gives them).
_FILLER = frozenset(
    {"answer", "called", "named", "known", "who", "which", "what", "when", "where", "whose"}
    | {"respuesta", "llama", "llamado", "llamada", "quien", "cual", "cuando", "donde"}
)


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

        return _CITATION.sub(replace, text)

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


@dataclass
class Sentence:
    text: str
    cited: list[int] = field(default_factory=list)  # numbers the model wrote
    attributed: int | None = None  # the source Plaza found for an uncited sentence
    similarity: float = 0.0

    @property
    def sources(self) -> list[int]:
        return self.cited or ([self.attributed] if self.attributed else [])

    @property
    def supported(self) -> bool:
        return bool(self.sources)


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE.split(text) if part and part.strip()]


def attribute(
    text: str,
    source_vectors: np.ndarray,
    encode: Callable[[list[str]], np.ndarray],
    *,
    threshold: float = 0.5,
    source_texts: Sequence[str] | None = None,
    overlap: float = 0.6,
    question: str = "",
) -> list[Sentence]:
    """The answer's sentences with their sources (see the module docstring).

    source_vectors: (n_sources, d) unit vectors of the numbered sources, in order. With
    `source_texts`, two lexical rules attribute what embeddings miss (a short sentence
    embeds far from a long paragraph):
    - a sentence whose content words (ml.bm25.tokenize, two or more) are at least `overlap`
      found in one source ("It gave up 308 points.");
    - with the `question`, a sentence whose new words (content words the question does not
      have) are all found in one source: "The player who scored was Anderson." adds only
      "anderson", which the source names. A sentence that adds a word no source has
      ("... was Katy Lawless.") stays unsupported.
    The first source (in retrieval order) that qualifies is chosen.
    """
    sentences = []
    for part in split_sentences(text):
        numbers = [int(x) for m in _CITATION.finditer(part) for x in re.findall(r"\d+", m[1])]
        sentences.append(Sentence(text=part, cited=list(dict.fromkeys(numbers))))
    uncited = [s for s in sentences if not s.cited and _CITATION.sub("", s.text).strip()]
    if uncited and len(source_vectors):
        vectors = encode([_CITATION.sub("", s.text) for s in uncited])  # (m, d)
        similarity = vectors @ np.asarray(source_vectors, dtype=np.float32).T  # (m, n)
        source_words = [set(tokenize(text)) for text in source_texts or []]
        question_words = set(tokenize(question))
        for sentence, row in zip(uncited, similarity, strict=True):
            best = int(np.argmax(row))
            sentence.similarity = float(row[best])
            if row[best] >= threshold:
                sentence.attributed = best + 1
                continue
            words = set(tokenize(_CITATION.sub("", sentence.text)))
            if len(words) >= 2 and source_words:
                shares = [len(words & found) / len(words) for found in source_words]
                best = int(np.argmax(shares))
                if shares[best] >= overlap:
                    sentence.attributed = best + 1
                    continue
            new_words = words - question_words - _FILLER
            if question_words and new_words and source_words:
                for n, found in enumerate(source_words, start=1):
                    if new_words <= found:
                        sentence.attributed = n
                        break
    return sentences


def cited_sources(sentences: Sequence[Sentence]) -> list[int]:
    """Every source the answer rests on, in order of first use."""
    order: list[int] = []
    for sentence in sentences:
        for n in sentence.sources:
            if n not in order:
                order.append(n)
    return order
