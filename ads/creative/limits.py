"""What a creative must satisfy: `CreativeLimits`, one place for every limit (lengths,
CTAs, hashtags, emoji, banned terms, the regulated-category policy, how far a repair may
shorten), with Plaza's defaults.

    limits = CreativeLimits.from_mapping(settings.PLAZA_AD_LIMITS)  # unknown keys named
    limits.body_limit(carries_link=True)                            # room left for the text

Plain Python, no Django: the ads services build the limits from settings and pass them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from ads.creative.text import fold

Action = Literal["block", "review"]

# RegulatedCategory in ads/models.py, less the empty "none".
REGULATED_CATEGORIES = (
    "housing",
    "employment",
    "credit",
    "politics",
    "health",
    "pharma",
    "financial",
)

DEFAULT_CTAS = (
    "Learn more",
    "Shop now",
    "Sign up",
    "Download",
    "Book now",
    "Get offer",
    "Contact us",
    "Subscribe",
    "Apply now",
    "Watch now",
    "Get started",
)

# Phrasings that no ad may use, whatever the advertiser's own list says. Matching is
# whole-word, case-, accent-, spacing- and punctuation-insensitive ("risk free" hits
# "Risk-Free"), so one spelling per phrase is enough.
DEFAULT_BANNED_TERMS = (
    "guaranteed returns",
    "guaranteed return",
    "guaranteed income",
    "guaranteed profit",
    "guaranteed profits",
    "risk-free",
    "get rich quick",
    "double your money",
    "miracle cure",
    "no credit check",
    "free money",
    "make money fast",
    "lose weight fast",
    "dinero fácil",
    "sin riesgo",
    "rentabilidad garantizada",
    "cura milagrosa",
    "hazte rico",
)

DEFAULT_CATEGORY_POLICY: Mapping[str, Action] = MappingProxyType(
    {
        "politics": "block",
        "pharma": "block",
        "housing": "review",
        "employment": "review",
        "credit": "review",
        "health": "review",
        "financial": "review",
    }
)


@dataclass(frozen=True)
class CreativeLimits:
    """What a creative must satisfy. One place for every limit; see `from_mapping`."""

    body_max_chars: int = 280  # post text, in graphemes, links counted as link_chars
    link_chars: int = 23  # what one link costs in the body (X's t.co length)
    headline_max_chars: int = 70  # card headline, in graphemes
    allowed_ctas: tuple[str, ...] = DEFAULT_CTAS  # the CTA must be one of these
    allow_hashtags: bool = False  # whether "#word" may appear in headline or body
    max_emoji: int = 1  # emoji allowed in headline and body together
    banned_terms: tuple[str, ...] = DEFAULT_BANNED_TERMS  # global list, on top of the advertiser's
    # regulated category -> "block" (no ads) or "review" (human review); absent: no action
    category_policy: Mapping[str, Action] = field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_POLICY), hash=False
    )
    repair_min_words: int = 3  # a shortened text with fewer words is dropped instead
    repair_min_fraction: float = 0.4  # ... or one shorter than this share of the limit
    repair_sentence_fraction: float = 0.6  # cut at a sentence end if it keeps this share

    def __post_init__(self) -> None:
        for name in ("body_max_chars", "link_chars", "headline_max_chars"):
            _require_int(name, getattr(self, name), minimum=1)
        _require_int("max_emoji", self.max_emoji, minimum=0)
        _require_int("repair_min_words", self.repair_min_words, minimum=1)
        if self.link_chars >= self.body_max_chars:
            raise ValueError(
                f"CreativeLimits.link_chars ({self.link_chars}) must be below "
                f"body_max_chars ({self.body_max_chars}): a body with a link would have no room"
            )
        for name in ("repair_min_fraction", "repair_sentence_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"CreativeLimits.{name} must be a number in [0, 1), got {value!r}")
        if not isinstance(self.allow_hashtags, bool):
            raise ValueError(
                f"CreativeLimits.allow_hashtags must be true or false, got {self.allow_hashtags!r}"
            )

        ctas = _str_tuple("allowed_ctas", self.allowed_ctas)
        if not ctas or any(not cta.strip() for cta in ctas):
            raise ValueError("CreativeLimits.allowed_ctas must list at least one non-empty CTA")
        object.__setattr__(self, "allowed_ctas", ctas)

        terms = _str_tuple("banned_terms", self.banned_terms)
        for term in terms:
            if not fold(term).strip():
                raise ValueError(
                    f"CreativeLimits.banned_terms: {term!r} has no letters or digits to match"
                )
        object.__setattr__(self, "banned_terms", terms)

        if not isinstance(self.category_policy, Mapping):
            raise ValueError(
                "CreativeLimits.category_policy must map a category to 'block' or 'review', "
                f"got {type(self.category_policy).__name__}"
            )
        for category, action in self.category_policy.items():
            if category not in REGULATED_CATEGORIES:
                raise ValueError(
                    f"CreativeLimits.category_policy: unknown category {category!r}; "
                    f"use one of {', '.join(REGULATED_CATEGORIES)}"
                )
            if action not in ("block", "review"):
                raise ValueError(
                    f"CreativeLimits.category_policy[{category!r}] must be 'block' or 'review', "
                    f"got {action!r}"
                )
        object.__setattr__(self, "category_policy", MappingProxyType(dict(self.category_policy)))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> CreativeLimits:
        """Build from a settings dict; keys are field names, missing keys keep the default
        (a given `category_policy` replaces the default policy whole)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"CreativeLimits: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def body_limit(self, *, carries_link: bool) -> int:
        """Characters left for the body's own text when a link is appended to it."""
        return self.body_max_chars - (self.link_chars if carries_link else 0)


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"CreativeLimits.{name} must be an integer >= {minimum}, got {value!r}")


def _str_tuple(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"CreativeLimits.{name} must be a list of strings, got {value!r}")
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise ValueError(f"CreativeLimits.{name} must hold strings only, got {bad[0]!r}")
    return items


DEFAULT_LIMITS = CreativeLimits()
