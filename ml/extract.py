"""The read posts' own sentences that best answer a question: the extractive answer.

    picks = best_sentences(question, ["post one text", "post two text"], encode=encode)
    picks[0].n, picks[0].text      # the post (1-based) and its words, cut to fit

A small model answers best in the posts' own words (measured with SmolLM2-135M on
XQuAD: its own text held the gold answer in 32% (en) and 16% (es) of answers, the posts'
closest sentence in far more). A candidate is a sentence of a read post; its score is the
share of the question's content words it holds, each weighted by how rare it is among the
candidates (a word every sentence has tells nothing), plus its cosine to the question
where the encoder knows the question's language, plus a little for the post's rank.
A sentence longer than the room left is cut to its clauses that hold the most question
words ("…" marks the cut), never mid-word. A "[k]" inside a post is written "(k)" so it
never reads as a citation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ml.citations import split_sentences
from ml.support import FILLER, content_words, word_key

RANK_PRIOR = 0.05  # added for the best-ranked post, less for later ones (score units)
MIN_PIECE_CHARS = 40  # a cut shorter than this says too little to quote
_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=[—–-]\s)")
_INTERROGATIVE = frozenset(
    {"how", "many", "much", "why", "whom", "cuanto", "cuantos", "cuanta", "cuantas", "como"}
    | {"que", "por", "cual", "cuales", "quienes", "puedo", "puede", "can", "could", "did"}
)


@dataclass
class Pick:
    n: int  # the post, numbered from 1 in the order given
    text: str  # the post's words (cut to fit, "…" where cut)
    score: float
    sentence: str  # the whole sentence it comes from, as in the post


def question_words(question: str) -> list[str]:
    """The words of a question an answer must match (content words, no interrogatives)."""
    return [w for w in content_words(question) if w not in _INTERROGATIVE and w not in FILLER]


def inert(text: str) -> str:
    """A post's "[k]" written "(k)": only Plaza's markers are citations."""
    return re.sub(r"\[(\d+)\]", r"(\1)", text)


def best_sentences(
    question: str,
    sources: Sequence[str],
    *,
    encode: Callable[[list[str]], np.ndarray] | None = None,
    limit_chars: int = 300,
    count: int = 2,
    min_share: float = 0.5,
    overhead: int = 7,
    languages: Sequence[str] | None = None,
    prefer: str | None = None,
) -> list[Pick]:
    """Up to `count` sentences of `sources` (best first) that fit in `limit_chars`
    together, each with `overhead` characters to spare (quotation marks, its "[n]", a
    space); a later one only while its score is at least `min_share` of the best's.
    `encode` only where the encoder knows the question's language (see module doc).
    `languages` (each source's, "" where unknown) and `prefer` (the question's): when a
    source is in the question's language, sources known to be in another are passed over.
    """
    allowed = set(range(1, len(sources) + 1))
    if prefer and languages and prefer in languages:
        allowed = {n for n, lang in enumerate(languages, start=1) if lang in (prefer, "")}
    candidates = [
        (n, sentence)
        for n, source in enumerate(sources, start=1)
        if n in allowed
        for sentence in split_sentences(source) or [source]
    ]
    if not candidates:
        return []
    scores = _scores(question, candidates, encode)
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    wanted = {word_key(w) for w in question_words(question)}
    picks: list[Pick] = []
    left = limit_chars
    for i in order:
        if len(picks) == count or (picks and scores[i] < min_share * picks[0].score):
            break
        n, sentence = candidates[i]
        # Only the first may be cut to its start: a later one adds its question's words.
        text = fit(inert(sentence), wanted, left - overhead, start=not picks)
        if text is None:
            continue
        picks.append(Pick(n=n, text=text, score=float(scores[i]), sentence=sentence))
        left -= len(text) + overhead
    return picks


def _scores(question: str, candidates, encode) -> list[float]:
    wanted = [word_key(w) for w in question_words(question)]
    bags = [{word_key(w) for w in content_words(sentence)} for _, sentence in candidates]
    m = len(candidates)
    weight = {w: math.log(1 + m / (1 + sum(w in bag for bag in bags))) for w in set(wanted)}
    total = sum(weight.values()) or 1.0
    lexical = [sum(weight[w] for w in weight if w in bag) / total for bag in bags]
    cosines = [0.0] * m
    if encode is not None:
        vectors = np.asarray(encode([question, *(s for _, s in candidates)]), dtype=np.float32)
        cosines = list(vectors[1:] @ vectors[0])  # (m,)
    return [lexical[i] + float(cosines[i]) + RANK_PRIOR / candidates[i][0] for i in range(m)]


def fit(sentence: str, wanted: set[str], room: int, *, start: bool = True) -> str | None:
    """The sentence if it fits in `room` characters, else its run of clauses holding the
    most `wanted` words that fits (with "…" where cut; MIN_PIECE_CHARS at least), else
    (with `start`) its start cut at a word; None when the room is smaller than
    MIN_PIECE_CHARS or nothing else fits."""
    if len(sentence) <= room:
        return sentence
    if room < MIN_PIECE_CHARS:
        return None
    clauses = [c for c in _CLAUSE.split(sentence) if c.strip()]
    best, best_hits = None, 0
    for first in range(len(clauses)):
        for end in range(first + 1, len(clauses) + 1):
            text = " ".join(clauses[first:end]).strip().rstrip(",;:")
            text = ("… " if first else "") + text + (" …" if end < len(clauses) else "")
            if len(text) > room:
                break
            if len(text) < MIN_PIECE_CHARS:
                continue
            hits = len(wanted & {word_key(w) for w in content_words(text)})
            if hits > best_hits or (hits == best_hits and best and len(text) > len(best)):
                best, best_hits = text, hits
    if best is None and start:  # no clause with a question word fits: the start, whole words
        best = sentence[: room - 2].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return best
