"""Repairs that do not change what an ad says, then the checks again.

`prepare_creative` normalises the model's output and mends what can be mended: a CTA in
the wrong case (or else the objective's), links off the landing site, hashtags' `#`,
emoji past the limit, a headline or body shortened at a word boundary (`repair`). Banned
terms, markup and blocked categories are never repaired: such a candidate is dropped and
regenerated.

    creative, report, repairs = prepare_creative(
        {"headline": ..., "body": ..., "cta": ...},
        limits=limits, banned_terms=campaign.banned_terms, landing_url=campaign.landing_url,
    )
    if creative is None:
        ...  # regenerate; report.as_dict() says why

Plain Python, no Django.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ads.creative.categories import CategoryDecision
from ads.creative.check import CheckReport, Creative, as_creative, check_creative
from ads.creative.limits import DEFAULT_LIMITS, CreativeLimits
from ads.creative.rank import cta_for_objective
from ads.creative.text import (
    EMOJI_IN_CLUSTER,
    GRAPHEME,
    HASHTAG,
    SPACED_URL,
    URL_TRAILING,
    body_length,
    find_hashtags,
    mask_urls,
    normalize_text,
    same_site,
    text_length,
)

# Words that cannot end a shortened text: "Save 20% on your" -> "Save 20%".
_DANGLING = frozenset(
    (
        "and", "or", "nor", "but", "with", "without", "to", "for", "of", "from", "on", "in",
        "at", "by", "into", "about", "as", "than", "the", "a", "an", "your", "our", "my",
        "their", "his", "her", "its", "this", "that", "these", "those", "plus", "via",
        "y", "e", "o", "u", "ni", "pero", "con", "sin", "de", "del", "al", "en", "por", "para",
        "el", "la", "los", "las", "un", "una", "unos", "unas", "tu", "tus", "su", "sus",
        "nuestro", "nuestra", "mi", "mis", "que", "como", "&", "+", "-", "–", "—", "/", "|",
    )
)  # fmt: skip
_TRAILING_JUNK = ",;:-–—/|&+([{«“‘"
_SENTENCE_END = ".!?…"
_CLOSERS = "\"'”’»)]"


def _cut(text: str) -> str:
    """`text` without dangling connectors or trailing punctuation like ',' or ':'."""
    while True:
        trimmed = text.rstrip().rstrip(_TRAILING_JUNK).rstrip()
        words = trimmed.rsplit(None, 1)
        if words and words[-1].casefold() in _DANGLING:
            trimmed = words[0] if len(words) == 2 else ""
        if trimmed == text:
            return text
        text = trimmed


def _ends_sentence(text: str) -> bool:
    return text.rstrip(_CLOSERS).endswith(tuple(_SENTENCE_END))


def repair(
    text: str,
    max_chars: int,
    *,
    min_words: int = 3,
    min_fraction: float = 0.4,
    sentence_fraction: float = 0.6,
    measure: Callable[[str], int] = text_length,
) -> str | None:
    """Shorten `text` to at most `max_chars` (as `measure` counts) without cutting a word.

    The result is a prefix of the whitespace-normalised text, ending where a word ends:
    the longest one that fits, less a dangling connector or punctuation ("and", "with",
    ",", ":", "-"). A cut at a sentence end is preferred when it keeps at least
    `sentence_fraction` of the limit. None when what is left is too short to say anything:
    fewer than `min_words` words, or shorter than `min_fraction` of the limit.
    """
    text = normalize_text(text, multiline=True)
    if measure(text) <= max_chars:
        return text
    # Ends of the words, in order: the text may be cut just after any of them.
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    fits = []
    for end in ends:  # lengths only grow word by word
        if measure(text[:end]) > max_chars:
            break
        fits.append(end)
    if not fits:
        return None
    best = _cut(text[: fits[-1]])
    for end in reversed(fits):
        prefix = text[:end]
        if measure(prefix) < sentence_fraction * max_chars:
            break
        if _ends_sentence(prefix):
            best = prefix
            break
    if len(best.split()) < min_words or measure(best) < min_fraction * max_chars:
        return None
    return best


_TAG_TAIL = re.compile(r"(?:^|\s)#(?=\w*[^\W\d_])\w+[.!?…,;:]*\s*$")


def strip_hashtags(text: str) -> str:
    """Drop a tail of hashtags only ("... today. #sale #deal"); elsewhere keep the word
    and drop the '#' ("our #summer sale" -> "our summer sale")."""
    untagged = text
    while match := _TAG_TAIL.search(untagged):
        untagged = untagged[: match.start()]
    if untagged.strip():  # a text of tags only keeps its words
        text = untagged
    starts = [m.start() for m in HASHTAG.finditer(mask_urls(text))]
    for start in reversed(starts):
        text = text[:start] + text[start + 1 :]
    return text


def keep_emoji(text: str, keep: int) -> tuple[str, int]:
    """The text with only its first `keep` emoji, and how many of them it had."""
    parts, seen = [], 0
    for cluster in GRAPHEME.findall(text):
        if EMOJI_IN_CLUSTER.search(cluster):
            seen += 1
            if seen > keep:
                while parts and parts[-1] in (" ", "\t"):  # "chat 👍." -> "chat."
                    parts.pop()
                continue
        parts.append(cluster)
    return "".join(parts), seen


def _drop_urls(text: str, keep: Callable[[str], bool]) -> tuple[str, list[str]]:
    dropped = []

    def replace(match: re.Match[str]) -> str:
        link = match.group(2)
        url = link.rstrip(URL_TRAILING)
        if keep(url):
            return match.group()
        dropped.append(url)
        return link[len(url) :]  # "Visit https://x." -> "Visit."

    return SPACED_URL.sub(replace, text), dropped


def prepare_creative(
    raw: Creative | Mapping[str, Any],
    *,
    limits: CreativeLimits = DEFAULT_LIMITS,
    banned_terms: Sequence[str] = (),
    landing_url: str = "",
    category: str | CategoryDecision = "",
    objective: str = "",
) -> tuple[Creative | None, CheckReport, list[str]]:
    """Normalise the model's output, repair what can be repaired, check again.

    Repairs: whitespace; a CTA in the wrong case, or else the objective's CTA; links off
    the landing site removed; hashtags (when not allowed); emoji past `max_emoji`; the
    headline and body shortened at a word boundary. Banned terms, markup and blocked
    categories are never repaired. Returns (the creative, or None when it still fails;
    the report on the repaired text; what was repaired, in words)."""
    original = as_creative(raw)
    headline = normalize_text(original.headline)
    body = normalize_text(original.body, multiline=True)
    cta = normalize_text(original.cta)
    repairs: list[str] = []

    if cta not in limits.allowed_ctas:
        canonical = {" ".join(c.casefold().split()): c for c in limits.allowed_ctas}
        fixed = canonical.get(" ".join(cta.casefold().strip(" .!").split()))
        fixed = fixed or cta_for_objective(objective, limits)
        repairs.append(f"CTA {cta!r} replaced by {fixed!r}")
        cta = fixed

    headline, dropped = _drop_urls(headline, lambda url: False)
    body, dropped_body = _drop_urls(
        body, lambda url: bool(landing_url) and same_site(url, landing_url)
    )
    if dropped or dropped_body:
        headline, body = normalize_text(headline), normalize_text(body, multiline=True)
        repairs.append(f"links removed: {', '.join(dropped + dropped_body)}")

    if not limits.allow_hashtags and (find_hashtags(headline) or find_hashtags(body)):
        headline = normalize_text(strip_hashtags(headline))
        body = normalize_text(strip_hashtags(body), multiline=True)
        repairs.append("hashtags removed")

    headline, in_headline = keep_emoji(headline, limits.max_emoji)
    body, in_body = keep_emoji(body, max(0, limits.max_emoji - in_headline))
    if in_headline + in_body > limits.max_emoji:
        headline, body = normalize_text(headline), normalize_text(body, multiline=True)
        repairs.append(f"emoji cut from {in_headline + in_body} to {limits.max_emoji}")

    options = {
        "min_words": limits.repair_min_words,
        "min_fraction": limits.repair_min_fraction,
        "sentence_fraction": limits.repair_sentence_fraction,
    }
    if text_length(headline) > limits.headline_max_chars:
        shorter = repair(headline, limits.headline_max_chars, **options)
        if shorter is not None:
            repairs.append(f"headline shortened from {text_length(headline)} characters")
            headline = shorter

    def measure(text: str) -> int:
        return body_length(text, landing_url=landing_url, link_chars=limits.link_chars)

    if measure(body) > limits.body_max_chars:
        shorter = repair(body, limits.body_max_chars, measure=measure, **options)
        if shorter is not None:
            repairs.append(f"body shortened from {measure(body)} characters")
            body = shorter

    creative = Creative(headline=headline, body=body, cta=cta)
    report = check_creative(
        creative,
        limits=limits,
        banned_terms=banned_terms,
        landing_url=landing_url,
        category=category,
    )
    return (creative if report.passed else None), report, repairs
