"""Hard checks every ad creative passes before it is saved as a draft.

The ad model's output is untrusted text. This module normalises it, checks it against
`CreativeLimits` (lengths, CTA, hashtags, emoji, banned terms, regulated categories,
markup, links), repairs what can be repaired without changing what the ad says (shorten
at a word boundary, drop hashtags' `#`, extra emoji, foreign links) and ranks the
survivors with a score whose reasons are kept. Banned terms are never repaired: such a
candidate is dropped and regenerated.

Plain Python, no Django: the ads services build `CreativeLimits.from_mapping(settings...)`
and call in.

    limits = CreativeLimits()
    creative, report, repairs = prepare_creative(
        {"headline": ..., "body": ..., "cta": ...},
        limits=limits, banned_terms=campaign.banned_terms, landing_url=campaign.landing_url,
    )
    if creative is None:
        ...  # regenerate; report.as_dict() says why

Characters are counted as people see them: grapheme clusters of the NFC text (`regex`'s
`\\X`), so a ZWJ family, a flag or a thumbs-up with a skin tone is one character and one
emoji. A link in the body counts as `link_chars` (23, as X's t.co wrapping does).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import regex

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
            if not _fold(term).strip():
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


# --- text: normalising, counting ---------------------------------------------------------

# Invisible characters dropped on the way in (zero-width space, word joiner, BOM, soft
# hyphen). ZWJ (U+200D) stays: emoji sequences need it.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))
_GRAPHEME = regex.compile(r"\X")
_EMOJI_IN_CLUSTER = regex.compile(
    r"\p{Emoji_Presentation}|\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]"
    r"|\u200D\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3"
)
_TLDS = "com|net|org|io|co|es|uk|de|fr|it|eu|us|app|dev|ai|info|biz|me|shop|store|online|site"
_URL = re.compile(
    rf"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
_SPACED_URL = re.compile(rf"([ \t]*)({_URL.pattern})", re.IGNORECASE)  # to drop with its space
_URL_TRAILING = ".,;:!?)]}'\"…"
_HASHTAG = re.compile(r"(?<![\w&/#])#(?=\w*[^\W\d_])\w+")


def normalize_text(text: str, *, multiline: bool = False) -> str:
    """NFC, invisible characters dropped, whitespace collapsed (newlines kept if multiline)."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_length(text: str) -> int:
    """Characters as people see them: grapheme clusters of the NFC text."""
    return len(_GRAPHEME.findall(unicodedata.normalize("NFC", text)))


def find_urls(text: str) -> list[str]:
    """Links in the text (http(s)://, www. or a bare domain with a common TLD)."""
    return [match.rstrip(_URL_TRAILING) for match in _URL.findall(text)]


def body_length(body: str, *, landing_url: str = "", link_chars: int = 23) -> int:
    """The body as X counts it: every link is `link_chars`, plus the landing URL appended
    (unless the body already links to the landing URL's host)."""
    length = text_length(body)
    for url in find_urls(body):
        length += link_chars - text_length(url)
    if landing_url and not _links_to_landing(body, landing_url):
        length += link_chars
    return length


def _host(url: str) -> str:
    if "://" not in url:
        url = "http://" + url
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _same_site(url: str, landing_url: str) -> bool:
    host, landing = _host(url), _host(landing_url)
    return bool(host and landing) and (host == landing or host.endswith("." + landing))


def _links_to_landing(body: str, landing_url: str) -> bool:
    return any(_same_site(url, landing_url) for url in find_urls(body))


def find_emoji(text: str) -> list[str]:
    """Emoji as people see them: one per grapheme cluster (ZWJ sequences, flags, skin
    tones, keycaps). Text-style symbols such as ™ or ✔ without U+FE0F are not emoji."""
    return [c for c in _GRAPHEME.findall(text) if _EMOJI_IN_CLUSTER.search(c)]


def find_hashtags(text: str) -> list[str]:
    """Hashtags, "#word" (at least one letter; "#1" is not a tag), ignoring links' #fragments."""
    return _HASHTAG.findall(_mask_urls(text))


def _mask_urls(text: str) -> str:
    return _URL.sub(lambda m: " " * len(m.group()), text)


def _fold(text: str) -> str:
    """Case-, accent- and punctuation-folded words, space-separated and space-padded, so
    a phrase matches as `f" {phrase} " in folded` on word boundaries only."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " " + " ".join(re.sub(r"[\W_]+", " ", stripped).split()) + " "


def _phrase_in(folded_text: str, phrase: str) -> bool:
    folded = _fold(phrase)
    if folded.strip() and folded in folded_text:
        return True
    words = folded.split()
    return len(words) > 1 and f" {''.join(words)} " in folded_text


DEFAULT_LIMITS = CreativeLimits()


def find_banned_terms(text: str, terms: Iterable[str]) -> list[str]:
    """The terms that occur in the text as whole words or phrases, in `terms` order.
    Case, accents, spacing and punctuation are ignored: "risk free" hits "Risk-Free" and
    "riskfree", "free" does not hit "freedom"."""
    folded = _fold(text)
    found: list[str] = []
    for term in terms:
        if term not in found and _phrase_in(folded, term):
            found.append(term)
    return found


# --- regulated categories -----------------------------------------------------------------

# category -> (strong, weak) keywords, English and Spanish. One strong keyword flags the
# category; weak ones are ordinary words in other contexts ("rentals", "prescription
# lenses", "career coaching") and take two different ones. Matched like banned terms.
CATEGORY_KEYWORDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = MappingProxyType(
    {
        "housing": (
            (
                "apartment", "apartments", "for rent", "homes for sale", "house for sale",
                "houses for sale", "mortgage", "mortgages", "landlord", "landlords", "tenant",
                "tenants", "realtor", "estate agent", "real estate agency", "condo", "condos",
                "alquiler", "alquileres", "se alquila", "hipoteca", "hipotecas", "inmobiliaria",
                "piso en venta", "pisos en venta", "vivienda", "viviendas", "arrendamiento",
            ),
            ("rent", "rental", "rentals", "lease", "property", "real estate", "bedroom", "piso",
             "pisos", "casa en venta"),
        ),
        "employment": (
            (
                "hiring", "now hiring", "job opening", "job openings", "job offer", "job offers",
                "job vacancy", "vacancy", "vacancies", "recruiting", "join our team", "empleo",
                "empleos", "oferta de empleo", "ofertas de empleo", "oferta de trabajo",
                "ofertas de trabajo", "puesto de trabajo", "vacante", "vacantes", "contratando",
                "estamos contratando", "bolsa de trabajo",
            ),
            ("job", "jobs", "career", "careers", "salary", "recruit", "resume", "cv", "trabajo",
             "salario", "sueldo", "contratamos"),
        ),
        "credit": (
            (
                "loan", "loans", "credit card", "credit cards", "credit score", "line of credit",
                "payday", "buy now pay later", "lender", "lenders", "apr", "préstamo",
                "préstamos", "tarjeta de crédito", "tarjetas de crédito", "microcrédito",
                "crédito rápido", "créditos rápidos",
            ),
            ("credit", "financing", "borrow", "debt", "debts", "crédito", "créditos",
             "financiación", "deuda", "deudas"),
        ),
        "politics": (
            (
                "election", "elections", "ballot", "referendum", "political party",
                "political parties", "polling station", "senator", "congressman",
                "congresswoman", "get out the vote", "elecciones", "elección",
                "partido político", "partidos políticos", "diputado", "diputada",
            ),
            ("vote", "votes", "voting", "candidate", "candidates", "government", "voto",
             "votos", "votar", "vota", "candidato", "candidata", "gobierno"),
        ),
        "health": (
            (
                "weight loss", "lose weight", "medical", "dental", "dentist", "physiotherapy",
                "mental health", "telehealth", "diagnosis", "perder peso", "adelgazar",
                "salud mental", "médico", "dentista", "fisioterapia",
            ),
            ("diet", "clinic", "therapy", "treatment", "supplement", "supplements", "doctor",
             "symptoms", "health", "dieta", "clínica", "terapia", "tratamiento", "suplemento",
             "suplementos", "salud", "síntomas"),
        ),
        "pharma": (
            (
                "prescription drug", "prescription drugs", "prescription medication",
                "prescription medicine", "pharmacy", "pharmaceutical", "medication",
                "medications", "pills", "opioid", "opioids", "antibiotic", "antibiotics",
                "viagra", "medicamento", "medicamentos", "farmacia", "pastillas",
                "receta médica", "fármaco", "fármacos",
            ),
            ("drug", "drugs", "prescription", "dosage", "tablets", "capsules", "rx", "dosis",
             "cápsulas", "receta"),
        ),
        "financial": (
            (
                "invest", "investing", "investment", "investments", "crypto", "cryptocurrency",
                "bitcoin", "forex", "stock market", "insurance", "savings account", "brokerage",
                "wealth management", "pension", "pensions", "inversión", "inversiones",
                "invertir", "criptomonedas", "cripto", "bolsa de valores", "aseguradora",
                "plan de pensiones",
            ),
            ("trading", "stocks", "shares", "broker", "dividends", "savings", "returns",
             "ahorro", "acciones", "seguro", "seguros", "dividendos"),
        ),
    }
)  # fmt: skip


@dataclass(frozen=True)
class CategoryDecision:
    """The regulated category that governs a brief or creative, and what to do about it."""

    category: str = ""  # "" when none applies
    source: str = ""  # "declared" (the brief says so), "detected" (keywords), or ""
    action: Action | None = None  # from CreativeLimits.category_policy
    matched: tuple[str, ...] = ()  # keywords that matched for `category`
    detected: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # all

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "source": self.source,
            "action": self.action,
            "matched": list(self.matched),
            "detected": {category: list(words) for category, words in self.detected.items()},
        }


def detect_categories(text: str) -> dict[str, tuple[str, ...]]:
    """Regulated categories the text's keywords point at -> the keywords that matched."""
    folded = _fold(text)
    detected = {}
    for category, (strong, weak) in CATEGORY_KEYWORDS.items():
        strong_hits = [word for word in strong if _phrase_in(folded, word)]
        weak_hits = [word for word in weak if _phrase_in(folded, word)]
        if strong_hits or len(weak_hits) >= 2:
            detected[category] = tuple(strong_hits + weak_hits)
    return detected


_SEVERITY = {"block": 2, "review": 1, None: 0}


def brief_category(
    *, declared: str, text: str, limits: CreativeLimits = DEFAULT_LIMITS
) -> CategoryDecision:
    """The category that governs: the declared one, unless keywords in `text` point at a
    category with a stricter action (block > review > none); on a tie the declared one
    wins, then the detected one with more keyword hits."""
    if declared and declared not in REGULATED_CATEGORIES:
        raise ValueError(
            f"unknown regulated category {declared!r}; use '' or one of "
            f"{', '.join(REGULATED_CATEGORIES)}"
        )
    policy = limits.category_policy
    detected = detect_categories(text)
    options = []  # (severity, declared?, hits, category, source)
    if declared:
        options.append(
            (_SEVERITY[policy.get(declared)], 1, 0, declared, "declared"),
        )
    for category, words in detected.items():
        if category != declared:
            options.append((_SEVERITY[policy.get(category)], 0, len(words), category, "detected"))
    if not options:
        return CategoryDecision(detected=detected)
    *_, category, source = max(options, key=lambda option: option[:3])
    return CategoryDecision(
        category=category,
        source=source,
        action=policy.get(category),
        matched=detected.get(category, ()),
        detected=detected,
    )


# --- checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Creative:
    """One ad: the card headline, the post text and the call to action."""

    headline: str
    body: str
    cta: str

    def as_dict(self) -> dict[str, str]:
        return {"headline": self.headline, "body": self.body, "cta": self.cta}


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; `data` holds the check's own JSON-serialisable details."""

    ok: bool
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.data}

    def __getitem__(self, key: str) -> Any:
        """`result["ok"]` reads like the dict that `as_dict()` gives."""
        return self.as_dict()[key]


@dataclass(frozen=True)
class CheckReport:
    """Every check on one creative. `passed`: all hard checks ok; `needs_review`: the
    creative falls in a regulated category whose policy is "review"."""

    checks: Mapping[str, CheckResult]
    category: CategoryDecision

    @property
    def passed(self) -> bool:
        return all(result.ok for result in self.checks.values())

    @property
    def needs_review(self) -> bool:
        return self.category.action == "review"

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if not result.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "needs_review": self.needs_review,
            "failed": self.failed,
            "checks": {name: result.as_dict() for name, result in self.checks.items()},
        }


_TAG = re.compile(r"<\s*/?\s*[A-Za-z!?][^<>]*>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]{1,31});", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{[^{}\n]{0,60}\}|\[[^\[\]\n]{1,60}\]")
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def find_markup(text: str) -> list[str]:
    """What in the text is not plain ad copy: HTML tags or entities, template placeholders
    ("[Product]", "{name}"), control, bidi-override or private-use characters."""
    found = [f"tag {m!r}" for m in _TAG.findall(text)]
    found += [f"entity {m!r}" for m in _ENTITY.findall(text)]
    found += [f"placeholder {m!r}" for m in _PLACEHOLDER.findall(text)]
    for char in dict.fromkeys(text):
        kind = unicodedata.category(char)
        if (kind == "Cc" and char not in "\n\t") or kind in ("Co", "Cs") or char in _BIDI_CONTROLS:
            found.append(f"character U+{ord(char):04X}")
    return found


def _coerce(raw: Creative | Mapping[str, Any]) -> Creative:
    if isinstance(raw, Creative):
        return raw

    def text(name: str) -> str:
        value = raw.get(name)
        return value if isinstance(value, str) else ""

    return Creative(headline=text("headline"), body=text("body"), cta=text("cta"))


def _creative_category(
    category: str | CategoryDecision, *, text: str, limits: CreativeLimits
) -> CategoryDecision:
    """The brief's declared category (or its whole decision) with the creative's own
    keywords: the creative's detection wins only when it is stricter."""
    if not isinstance(category, CategoryDecision):
        return brief_category(declared=category, text=text, limits=limits)
    own = brief_category(declared="", text=text, limits=limits)
    return own if _SEVERITY[own.action] > _SEVERITY[category.action] else category


def check_creative(
    creative: Creative | Mapping[str, Any],
    *,
    limits: CreativeLimits = DEFAULT_LIMITS,
    banned_terms: Sequence[str] = (),
    landing_url: str = "",
    category: str | CategoryDecision = "",
) -> CheckReport:
    """Run every check on the creative as it is (no repair; see `prepare_creative`).

    `banned_terms` is the advertiser's list (the global one comes from `limits`);
    `landing_url` is appended to the body when published; `category` is the brief's
    declared regulated category, or its `brief_category` decision."""
    creative = _coerce(creative)
    headline, body, cta = creative.headline, creative.body, creative.cta
    checks: dict[str, CheckResult] = {}

    empty = [name for name in ("headline", "body") if not getattr(creative, name).strip()]
    checks["empty"] = CheckResult(
        not empty, f"empty: {', '.join(empty)}" if empty else "headline and body present",
        {"fields": empty},
    )  # fmt: skip

    length = text_length(headline)
    checks["headline_length"] = CheckResult(
        length <= limits.headline_max_chars,
        f"headline {length}/{limits.headline_max_chars} characters",
        {"length": length, "limit": limits.headline_max_chars},
    )

    length = body_length(body, landing_url=landing_url, link_chars=limits.link_chars)
    links = len(find_urls(body)) + bool(landing_url and not _links_to_landing(body, landing_url))
    checks["body_length"] = CheckResult(
        length <= limits.body_max_chars,
        f"body {length}/{limits.body_max_chars} characters"
        + (f", {links} link(s) counted as {limits.link_chars} each" if links else ""),
        {"length": length, "limit": limits.body_max_chars, "links": links},
    )

    checks["cta"] = CheckResult(
        cta in limits.allowed_ctas,
        f"CTA {cta!r} " + ("is allowed" if cta in limits.allowed_ctas else "is not allowed"),
        {"cta": cta},
    )

    tags = find_hashtags(headline) + find_hashtags(body)
    ok = limits.allow_hashtags or not tags
    checks["hashtags"] = CheckResult(
        ok,
        f"hashtags not allowed: {' '.join(tags)}" if not ok else f"{len(tags)} hashtag(s)",
        {"hashtags": tags},
    )

    emoji = find_emoji(headline) + find_emoji(body) + find_emoji(cta)
    checks["emoji"] = CheckResult(
        len(emoji) <= limits.max_emoji,
        f"{len(emoji)} emoji, at most {limits.max_emoji}",
        {"count": len(emoji), "limit": limits.max_emoji, "emoji": emoji},
    )

    text = f"{headline}\n{body}\n{cta}"
    own = find_banned_terms(text, banned_terms)
    common = [term for term in find_banned_terms(text, limits.banned_terms) if term not in own]
    matched = own + common
    checks["banned_terms"] = CheckResult(
        not matched,
        f"banned terms: {', '.join(matched)}" if matched else "no banned terms",
        {"matched": matched, "advertiser": own, "global": common},
    )

    decision = _creative_category(category, text=f"{headline}\n{body}", limits=limits)
    if decision.category:
        detail = f"{decision.category} ({decision.source}"
        detail += f": {', '.join(decision.matched)})" if decision.matched else ")"
        detail += {"block": " is blocked", "review": " needs review", None: " is allowed"}[
            decision.action
        ]
    else:
        detail = "no regulated category"
    checks["category"] = CheckResult(decision.action != "block", detail, decision.as_dict())

    markup = {
        name: found
        for name in ("headline", "body", "cta")
        if (found := find_markup(getattr(creative, name)))
    }
    checks["markup"] = CheckResult(
        not markup,
        "; ".join(f"{name}: {', '.join(found)}" for name, found in markup.items()) or "plain text",
        {"found": markup},
    )

    foreign = [f"headline: {url}" for url in find_urls(headline)]
    foreign += [f"cta: {url}" for url in find_urls(cta)]
    foreign += [
        f"body: {url}"
        for url in find_urls(body)
        if not (landing_url and _same_site(url, landing_url))
    ]
    checks["links"] = CheckResult(
        not foreign,
        "links off the landing site: " + ", ".join(foreign) if foreign else "links ok",
        {"foreign": foreign},
    )
    return CheckReport(checks=checks, category=decision)


# --- repair -------------------------------------------------------------------------------

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
    starts = [m.start() for m in _HASHTAG.finditer(_mask_urls(text))]
    for start in reversed(starts):
        text = text[:start] + text[start + 1 :]
    return text


def keep_emoji(text: str, keep: int) -> tuple[str, int]:
    """The text with only its first `keep` emoji, and how many of them it had."""
    parts, seen = [], 0
    for cluster in _GRAPHEME.findall(text):
        if _EMOJI_IN_CLUSTER.search(cluster):
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
        url = link.rstrip(_URL_TRAILING)
        if keep(url):
            return match.group()
        dropped.append(url)
        return link[len(url) :]  # "Visit https://x." -> "Visit."

    return _SPACED_URL.sub(replace, text), dropped


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
    original = _coerce(raw)
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
        body, lambda url: bool(landing_url) and _same_site(url, landing_url)
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


# --- choosing among candidates ------------------------------------------------------------

# objective words -> CTA, first rule that matches wins. English and Spanish, accent-folded.
_OBJECTIVE_CTAS = (
    ("Apply now", ("hire", "hiring", "recruit", "recruiting", "recruitment", "job", "jobs",
                   "applicants", "candidates", "empleo", "contratar", "contratación",
                   "reclutamiento", "vacante", "vacantes", "candidatos")),
    ("Download", ("app install", "app installs", "install", "installs", "download",
                  "downloads", "descarga", "descargas", "descargar", "instalar",
                  "instalaciones")),
    ("Book now", ("book", "booking", "bookings", "reservation", "reservations", "appointment",
                  "appointments", "reserve", "reserva", "reservas", "reservar", "cita",
                  "citas")),
    ("Subscribe", ("subscribe", "subscribers", "subscription", "subscriptions", "newsletter",
                   "suscribirse", "suscriptores", "suscripción", "suscripciones", "boletín")),
    ("Sign up", ("sign up", "sign ups", "signup", "signups", "register", "registration",
                 "registrations", "trial", "trials", "registro", "registros", "registrarse",
                 "altas")),
    ("Contact us", ("lead", "leads", "contact", "contacts", "enquiries", "inquiries", "quote",
                    "quotes", "contacto", "contactos", "clientes potenciales", "presupuesto",
                    "presupuestos")),
    ("Shop now", ("sales", "sale", "sell", "purchase", "purchases", "buy", "conversions",
                  "orders", "revenue", "shop", "ventas", "venta", "vender", "compra",
                  "compras", "comprar", "pedidos")),
    ("Watch now", ("video views", "views", "watch", "reproducciones", "visualizaciones")),
)  # fmt: skip


def cta_for_objective(objective: str, limits: CreativeLimits = DEFAULT_LIMITS) -> str:
    """The CTA that fits a campaign objective ("app installs" -> "Download"); "Learn more"
    for awareness, traffic or anything unknown. Always one of `limits.allowed_ctas`."""
    folded = _fold(objective)
    for cta, words in _OBJECTIVE_CTAS:
        if cta in limits.allowed_ctas and any(_phrase_in(folded, word) for word in words):
            return cta
    return "Learn more" if "Learn more" in limits.allowed_ctas else limits.allowed_ctas[0]


def _fold_exact(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def drop_near_duplicates(
    texts: Sequence[str], vectors: np.ndarray | None = None, threshold: float = 0.92
) -> list[int]:
    """Indices of the texts to keep, in order: the first of each group of near-duplicates
    wins. Exact duplicates (ignoring case and spacing) always go; with `vectors`
    (n, d), L2-normalised, a text whose cosine similarity to a kept one is >= threshold
    goes too."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(
                f"vectors must have shape (len(texts), d) = ({len(texts)}, d), got {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError("vectors hold NaN or infinite values")
        norms = np.linalg.norm(vectors, axis=1)  # (n,)
        if len(norms) and not np.allclose(norms, 1.0, atol=1e-3):
            worst = int(np.argmax(np.abs(norms - 1.0)))
            raise ValueError(
                f"vectors must be L2-normalised; row {worst} has norm {norms[worst]:.4f}"
            )
        similarity = vectors @ vectors.T  # (n, n)
    kept: list[int] = []
    seen: set[str] = set()
    for i, text in enumerate(texts):
        key = _fold_exact(text)
        if key in seen:
            continue
        if vectors is not None and kept and similarity[i, kept].max() >= threshold:
            continue
        seen.add(key)
        kept.append(i)
    return kept


HEADLINE_SWEET_SPOT = (25, 60)  # headline characters that read best on a card
BODY_SWEET_SPOT = (0.3, 0.9)  # share of the body limit a post uses well


def rank(
    candidates: Sequence[Creative | Mapping[str, Any]],
    *,
    brief_keywords: Sequence[str] = (),
    product: str = "",
    objective: str = "",
    repairs: Sequence[Sequence[str]] | None = None,
    limits: CreativeLimits = DEFAULT_LIMITS,
    landing_url: str = "",
) -> list[tuple[int, float, list[str]]]:
    """Candidates best first, as (index, score, reasons); each reason says what it added.

    Points: the product named (+2), brief keywords used (+1 each, up to 3), a headline of
    25-60 characters (+1, else -0.5), a body using 30-90% of its room (+1), no repairs
    (+1, else -0.5 each), the CTA the objective calls for (+1), more than one '!' (-0.5
    each), words in ALL CAPS (-0.5 each, up to -2). Ties keep the candidates' order."""
    if repairs is not None and len(repairs) != len(candidates):
        raise ValueError(
            f"repairs must have one list per candidate: {len(repairs)} for {len(candidates)}"
        )
    ranked = []
    for index, raw in enumerate(candidates):
        creative = _coerce(raw)
        text = f"{creative.headline}\n{creative.body}"
        folded = _fold(text)
        points: list[tuple[float, str]] = []

        if product.strip() and _phrase_in(folded, product):
            points.append((2.0, f"mentions the product {product!r}"))
        used = [kw for kw in dict.fromkeys(brief_keywords) if kw.strip() and _phrase_in(folded, kw)]
        if used:
            points.append((float(min(3, len(used))), f"uses keywords: {', '.join(used)}"))

        length, (low, high) = text_length(creative.headline), HEADLINE_SWEET_SPOT
        if low <= length <= high:
            points.append((1.0, f"headline length {length} in the {low}-{high} sweet spot"))
        else:
            side = "short" if length < low else "long"
            points.append((-0.5, f"headline {side} ({length} characters, best {low}-{high})"))

        length = body_length(creative.body, landing_url=landing_url, link_chars=limits.link_chars)
        share = length / limits.body_max_chars
        if BODY_SWEET_SPOT[0] <= share <= BODY_SWEET_SPOT[1]:
            points.append((1.0, f"body uses {share:.0%} of its room"))
        elif share < BODY_SWEET_SPOT[0]:
            points.append((-0.5, f"body is short ({share:.0%} of its room)"))

        needed = list(repairs[index]) if repairs is not None else []
        if not needed:
            points.append((1.0, "no repairs needed"))
        else:
            points.append((-0.5 * len(needed), f"needed repairs: {'; '.join(needed)}"))

        if objective.strip():
            wanted = cta_for_objective(objective, limits)
            if creative.cta == wanted:
                points.append((1.0, f"CTA {wanted!r} fits the objective"))
            else:
                points.append((-0.5, f"CTA {creative.cta!r}, the objective calls for {wanted!r}"))

        bangs = text.count("!")
        if bangs > 1:
            points.append((-0.5 * (bangs - 1), f"{bangs} exclamation marks"))
        shouting = [w for w in re.findall(r"[^\W\d_]{4,}", text) if w.isupper()]
        if shouting:
            points.append((-0.5 * min(4, len(shouting)), f"ALL CAPS: {', '.join(shouting[:4])}"))

        score = round(sum(value for value, _ in points), 2)
        reasons = [f"{value:+g} {reason}" for value, reason in points]
        ranked.append((index, score, reasons))
    ranked.sort(key=lambda item: -item[1])
    return ranked
