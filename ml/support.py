"""Whether a post supports a sentence: the one check behind every citation Plaza shows.

    verdict = support("Puedes ponerte las dos vacunas el mismo día.", post_text)
    verdict.supported, verdict.reason      # False, "'dos' is not in the post"

    checked = check_sentences(model_text, sources=[post_1, post_2], question=q)
    [s.text for s in checked if s.supported]   # what may be shown, each with its [n]
    [(s.text, s.reason) for s in checked if not s.supported]   # what the log keeps

A sentence makes a claim when it has two content words (ml.bm25.tokenize: folded, no
stopwords, markers and answer filler removed); "[1] [2] [3]", "Yes [1]." and "The answer
is 2." make none and never pass. A post supports a claim when it holds every content
word of it (a plural's trailing "s" aside), numbers and names included. One word may be
missing from a long sentence (eight or more content words) only when it is neither a
number nor a name and the sentence is close in meaning to one of the post's sentences
(cosine >= PARAPHRASE_COSINE), which callers pass only where the encoder knows the
question's language: an English-only encoder finds any two Spanish texts close.

A cited sentence keeps its `[n]` only when post n supports it; otherwise, or uncited, it
is credited to the first read post that does (retrieval order), and a sentence no read
post supports is marked unsupported with its reason. Measured on the issue's examples:
"The bakery opened on [1] [2] [3]" (a worked example's words) and "The flu shot is safe
with the covid vaccine." (no post says "safe") are unsupported; a sentence copied from a
post is supported by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.bm25 import fold, tokenize
from ml.citations import CITATION, split_sentences

PARAPHRASE_COSINE = 0.6  # a long sentence one word short of its post, close in meaning
LONG_SENTENCE_WORDS = 8  # content words from which one may be missing (see above)
# Words an answer wraps its content in, which no post needs to contain (folded).
FILLER = frozenset(
    {"answer", "called", "named", "known", "who", "which", "what", "when", "where", "whose"}
    | {"post", "posts", "says", "said", "according"}
    | {"respuesta", "llama", "llamado", "llamada", "quien", "cual", "cuando", "donde"}
    | {"dice", "segun", "publicacion"}
)
_QUOTES = str.maketrans("", "", '“”«»"')
_NAME = re.compile(r"(?<=[\w,;:)] )[^\W\d_][\w'-]*", re.UNICODE)  # a word after another


@dataclass
class Verdict:
    supported: bool
    reason: str = ""  # why not, in words a log reader acts on
    missing: list[str] = field(default_factory=list)


@dataclass
class CheckedSentence:
    """A sentence of an answer and what stands behind it."""

    text: str  # as shown, its citation markers rewritten to the supporting post
    claim: str  # the text without markers
    sources: list[int] = field(default_factory=list)  # posts (1-based) that support it
    written: list[int] = field(default_factory=list)  # the numbers the writer put on it
    reason: str = ""  # why it is unsupported ("" when supported)
    origin: str = "model"  # "model" (written) or "post" (a post's own sentence)
    evidence: str = ""  # the supporting post's sentence that holds the claim most

    @property
    def supported(self) -> bool:
        return bool(self.sources)


def word_key(word: str) -> str:
    """The form words are matched in: a plural's trailing s dropped ("shots" ~ "shot")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.isdigit() else word


def claim_of(sentence: str) -> str:
    """The sentence without its citation markers and quotation marks."""
    text = re.sub(r"\s+", " ", CITATION.sub(" ", sentence).translate(_QUOTES))
    return re.sub(r" ([.,;:!?…])", r"\1", text).strip()


def content_words(text: str) -> list[str]:
    """The words a claim is checked on, in order, each once (folded, matched by word_key)."""
    return list(dict.fromkeys(w for w in tokenize(claim_of(text)) if w not in FILLER))


def key_words(text: str) -> list[str]:
    """The numbers and names of a claim (folded): never allowed to be missing."""
    claim = claim_of(text)
    numbers = [w for w in tokenize(claim) if any(c.isdigit() for c in w)]
    names = [fold(m) for m in _NAME.findall(claim) if m[0].isupper()]
    return list(dict.fromkeys(w for w in numbers + names if w in set(tokenize(claim))))


def makes_claim(text: str) -> bool:
    """Two content words or more: more than markers, filler or a lone number ("The answer
    is 2." passed on a post that holds a 2)."""
    return len(content_words(text)) >= 2


def support(
    sentence: str, post: str, *, post_words: set[str] | None = None, cosine: float = 0.0
) -> Verdict:
    """Whether `post` supports `sentence` (see the module docstring); `cosine` is the
    sentence's similarity to the post's closest sentence, 0 where it means nothing."""
    if not makes_claim(sentence):
        return Verdict(False, "no claim: only markers or filler")
    found = post_words if post_words is not None else {word_key(w) for w in tokenize(post)}
    words = content_words(sentence)
    missing = [w for w in words if word_key(w) not in found]
    if not missing:
        return Verdict(True)
    keys = set(key_words(sentence))
    if (
        len(missing) == 1
        and missing[0] not in keys
        and len(words) >= LONG_SENTENCE_WORDS
        and cosine >= PARAPHRASE_COSINE
    ):
        return Verdict(True, missing=missing)
    shown = ", ".join(f"'{w}'" for w in missing[:4])
    return Verdict(
        False, f"{shown} {'is' if len(missing) == 1 else 'are'} not in the post", missing
    )


def check_sentences(
    text: str,
    *,
    sources: Sequence[str],
    encode: Callable[[list[str]], np.ndarray] | None = None,
    origin: str = "model",
) -> list[CheckedSentence]:
    """Each sentence of `text` with the read post(s) that support it (see the module
    docstring). `sources` are the read posts' texts, numbered from 1; `encode` (unit
    vectors) only where the encoder knows the language, for the paraphrase allowance."""
    parts = split_sentences(text)
    post_words = [{word_key(w) for w in tokenize(source)} for source in sources]
    cosines = _cosines(parts, sources, encode)  # (m, n) or None
    checked = []
    for i, part in enumerate(parts):
        written = [int(x) for m in CITATION.finditer(part) for x in re.findall(r"\d+", m[1])]
        written = list(dict.fromkeys(written))
        claim = claim_of(part)
        order = [n for n in written if 1 <= n <= len(sources)]
        order += [n for n in range(1, len(sources) + 1) if n not in order]
        reasons, backers = [], []
        for n in order:
            cosine = float(cosines[i, n - 1]) if cosines is not None else 0.0
            verdict = support(claim, sources[n - 1], post_words=post_words[n - 1], cosine=cosine)
            if verdict.supported:
                backers = [n]
                break
            reasons.append((n, verdict.reason))
        sentence = CheckedSentence(
            text=f"{claim} [{backers[0]}]" if backers else claim,
            claim=claim,
            sources=backers,
            written=written,
            origin=origin,
        )
        if backers:
            sentence.evidence = evidence_in(claim, sources[backers[0] - 1])
        else:
            sentence.reason = _why(claim, reasons)
        checked.append(sentence)
    return checked


def evidence_in(claim: str, post: str) -> str:
    """The post's sentence holding most of the claim's words (the first on a tie): what
    the page highlights under the answer."""
    wanted = {word_key(w) for w in content_words(claim)}
    sentences = split_sentences(post) or [post]
    return max(sentences, key=lambda s: len(wanted & {word_key(w) for w in tokenize(s)}))


def _why(claim: str, reasons: list[tuple[int, str]]) -> str:
    if not makes_claim(claim):
        return "no claim: only markers or filler"
    if not reasons:
        return "no post was read"
    n, reason = reasons[0]
    return f"no read post supports it (post {n}: {reason})"


def _cosines(parts: list[str], sources: Sequence[str], encode) -> np.ndarray | None:
    """(m, n): each sentence's cosine to the closest sentence of each source."""
    if encode is None or not parts or not sources:
        return None
    pieces = [split_sentences(source) or [source] for source in sources]
    flat = [piece for group in pieces for piece in group]
    vectors = np.asarray(encode([claim_of(p) for p in parts] + flat), dtype=np.float32)
    sims = vectors[: len(parts)] @ vectors[len(parts) :].T  # (m, total pieces)
    out, start = np.zeros((len(parts), len(sources)), dtype=np.float32), 0
    for j, group in enumerate(pieces):
        out[:, j] = sims[:, start : start + len(group)].max(axis=1)
        start += len(group)
    return out
