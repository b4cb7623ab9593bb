"""Faithfulness checks: does a draft say only what its brief says, and say it well?

The hard checks (`ads.creative.check`) keep a creative within the platform's rules; these
keep it within the brief. Each returns a `CheckResult` whose detail says what it found:

- `product`: the product, where named, is named as the brief names it ("Trailrunner 3",
  not "TrailRunner3"); whether it is named at all is counted per job (`named`).
- `invented`: no number and no name that the brief does not give ("Ride 3", "10 miles").
- `claims`: no superlative, absolute or offer ("best", "#1", "guaranteed", "el mejor",
  "free") unless the brief says it too.
- `body_adds`: the body says something its headline does not.
- `repetition`: no content word three times.
- `grounded`: every statement in the post stands on the brief (shares a word or a number
  with it; a question may hook the reader, but one sentence at least stands on the
  brief): no filler such as "It can be easier to buy."
- `language`: written in the brief's language.
- `keeps_facts`: a variation of the advertiser's own text keeps its numbers and its
  naming of the product (`facts_to_keep` lists them for the rewrite prompts).

    facts = BriefFacts.of(product="Trailrunner 3", description="...", language="en")
    results = check_faithful(Creative(headline, body, cta), facts)   # name -> CheckResult
    named = product_named(creative, facts)                            # counted per job

Words are compared folded (case, accents) and stemmed (Snowball, English and Spanish), so
"runners" stands on "running". Plain Python, no Django.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import regex

from ads.creative.check import CheckResult, Creative, as_creative
from ads.creative.text import fold, phrase_in
from ml.bm25 import STOPWORDS
from ml.language import detect_language_among

FAITHFULNESS_CHECKS = (
    "product",
    "invented",
    "claims",
    "body_adds",
    "repetition",
    "grounded",
    "language",
    "keeps_facts",
)
PRODUCT_NAMED_SHARE = 0.75  # of a job's drafts name the product, where the model allows
MIN_NEW_WORDS = 3  # content words a body adds to its headline
MAX_REPEATS = 2  # times one content word may appear in headline and body together
RARE_ZIPF = 1.0  # a capitalised word rarer than this (wordfreq's Zipf scale) is a name

# Claims an ad may make only when the brief makes them too: superlatives, absolutes,
# rankings and offers. Matched as whole folded phrases (ads.creative.text.phrase_in).
CLAIMS = {
    "en": (
        "best", "number one", "no 1", "top rated", "top-rated", "leading", "greatest",
        "ultimate", "perfect", "perfectly", "unbeatable", "unmatched", "unrivalled",
        "unrivaled", "world's", "world class", "world-class", "guaranteed", "guarantee",
        "guarantees", "cheapest", "lowest price", "lowest prices", "100%", "100 percent",
        "the only", "the first", "award winning", "award-winning", "clinically proven",
        "proven", "revolutionary", "miracle", "free", "discount", "discounts", "sale",
        "half price", "risk free",
    ),
    "es": (
        "el mejor", "la mejor", "los mejores", "las mejores", "lo mejor", "numero uno",
        "numero 1", "n 1", "lider", "lideres", "insuperable", "inigualable", "perfecto",
        "perfecta", "perfectos", "perfectas", "garantizado", "garantizada", "garantizados",
        "garantia", "garantizamos", "el mas", "la mas", "los mas", "las mas", "lo mas",
        "el unico", "la unica", "los unicos", "unico en", "unica en", "definitivo",
        "revolucionario", "revolucionaria", "milagro", "milagroso", "gratis", "gratuito",
        "gratuita", "descuento", "descuentos", "oferta", "rebaja", "rebajas", "100%",
        "del mundo", "mas barato", "mas barata",
    ),
}  # fmt: skip
_RANK = re.compile(r"#\s?1\b|\bno\.\s?1\b|\bnº\s?1\b|\bn\.º\s?1\b", re.IGNORECASE)
# English superlatives by their ending ("lightest", "easiest"), less the words that only
# end like one.
_SUPERLATIVE_EN = re.compile(r"\b[a-z]{2,}(?:est)\b")
_NOT_SUPERLATIVE = frozenset((
    "test", "tests", "rest", "interest", "forest", "honest", "modest", "harvest", "guest",
    "request", "west", "chest", "nest", "invest", "contest", "latest", "protest", "suggest",
    "digest", "manifest", "arrest", "quest", "vest", "pest", "zest", "crest", "attest",
    "earnest", "conquest", "priest", "unrest", "midwest", "behest", "inquest", "bequest",
    "detest", "infest", "ingest", "jest", "lest", "wrest", "celest", "everest", "budapest"
))  # fmt: skip
_SUPERLATIVE_ES = re.compile(r"\b\w+isim[oa]s?\b")
# Comparisons need proof as superlatives do: "more comfortable than", "lighter than".
_COMPARISON = {
    "en": re.compile(
        r"\b(?:more|less) (?:\w+ ){1,4}than\b|\b(?!other\b|rather\b|later\b)\w+er than\b"
    ),
    "es": re.compile(r"\b(?:mas|menos) (?:\w+ ){1,4}que\b|\b(?:mejor|peor|mayor|menor) que\b"),
}
_MOST_IDIOM = re.compile(r"\b(?:make|makes|making|made|get|gets|getting) the most\b")

# Number words a draft may turn a brief's number into, or invent: "one"/"uno" are left
# out (articles and "in one app"), as is English "once" (a time, not eleven).
_NUMBER_WORDS = {
    "en": {
        "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
        "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
        "fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
        "hundred": "100", "thousand": "1000", "dozen": "12", "million": "1000000",
    },
    "es": {
        "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6", "siete": "7",
        "ocho": "8", "nueve": "9", "diez": "10", "once": "11", "doce": "12",
        "quince": "15", "veinte": "20", "treinta": "30", "cuarenta": "40",
        "cincuenta": "50", "cien": "100", "mil": "1000", "docena": "12", "millon": "1000000",
    },
}  # fmt: skip
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_PHRASE = regex.compile(r"(?P<number>\d+(?:[.,]\d+)*)(?:\s?[%\p{Sc}]|\s?\p{L}+)?")
_TOKEN = regex.compile(r"[\p{L}\p{N}][\p{L}\p{N}'’]*")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_SENTENCE_OPENERS = "¿¡\"'“‘«([-–—:"
_STEMMERS = {"en": "english", "es": "spanish"}
# People a draft may not bring in to vouch for the product unless the brief does: an
# invented chef or "experts agree" is a claim.
PEOPLE = frozenset((
    "chef", "chefs", "cook", "cooks", "doctor", "doctors", "dentist", "dentists", "expert",
    "experts", "scientist", "scientists", "nutritionist", "nutritionists", "athlete",
    "athletes", "celebrity", "celebrities", "influencer", "influencers", "barista", "baristas",
    "farmer", "farmers", "champion", "champions", "pro", "pros", "cocinero", "cocineros",
    "cocinera", "cocineras", "medico", "medicos", "doctora", "doctores", "dentista",
    "dentistas", "experto", "expertos", "experta", "expertas", "cientifico", "cientificos",
    "nutricionista", "nutricionistas", "atleta", "atletas", "famoso", "famosos", "agricultor",
    "agricultores", "campeon", "campeones"
))  # fmt: skip
_PRODUCT = "\x00"  # stands for the product's name, which fold() drops: counted on its own
_ALLOWED_NAMES = frozenset({"i"})  # capitalised by rule, never a name
# After "<Word> <number>" at a sentence's start, these make it a name ("Ride 3 is ..."),
# where a noun makes it a count ("Fill 12 pockets", "Reserva 2 noches").
_NAME_FOLLOWERS = frozenset((
    "is", "are", "has", "was", "will", "can", "gives", "keeps", "lets", "makes", "brings",
    "comes", "es", "son", "tiene", "trae", "te", "le", "ofrece", "llega"
))  # fmt: skip


def _number_key(token: str) -> str:
    """One spelling per number: thousands separators dropped, a decimal comma as a point."""
    groups = re.split(r"[.,]", token)
    if len(groups) > 1 and all(len(g) == 3 for g in groups[1:]):
        return "".join(groups)  # 1,000 / 1.000
    return token.replace(",", ".")


@functools.cache
def _stemmer(language: str):
    import snowballstemmer

    return snowballstemmer.stemmer(_STEMMERS.get(language, "english"))


@functools.cache
def _zipf(word: str, language: str) -> float:
    from wordfreq import zipf_frequency

    return max(zipf_frequency(word, language), zipf_frequency(word, "en"))


# Function words the search stopword lists leave in: pronouns and quantifiers.
_FUNCTION_WORDS = STOPWORDS | frozenset((
    "you", "your", "yours", "yourself", "we", "our", "ours", "us", "them", "its", "every",
    "each", "all", "more", "less", "much", "many", "any", "one", "get", "got", "can", "will",
    "just", "vos", "usted", "ustedes", "cada", "todo", "toda", "todos", "todas", "mucho",
    "mucha", "muchos", "muchas", "menos", "puedes", "puede",
))  # fmt: skip


def _content_words(text: str) -> list[str]:
    """Folded words that carry meaning: no function words, no numbers, 3 letters or more."""
    return [
        w
        for w in fold(text).split()
        if len(w) >= 3 and not w.isdigit() and w not in _FUNCTION_WORDS
    ]


@dataclass(frozen=True)
class BriefFacts:
    """What a brief says, for matching drafts against: everything it gives is a fact."""

    product: str
    language: str
    text: str  # product, description, audience, keywords and the advertiser's own text
    original: str = ""  # the advertiser's own headline and post, when drafts vary them

    @classmethod
    def of(
        cls,
        *,
        product: str = "",
        description: str,
        language: str = "en",
        audience: str = "",
        keywords: Iterable[str] = (),
        own_text: Iterable[str] = (),
    ) -> BriefFacts:
        own = [t for t in own_text if t.strip()]
        text = "\n".join([product, description, audience, *keywords, *own])
        return cls(
            product=" ".join(product.split()),
            language=language or "en",
            text=text,
            original="\n".join(own),
        )

    def stem(self, word: str) -> str:
        return _stemmer(self.language).stemWord(word)

    def stems(self, text: str) -> list[str]:
        return [self.stem(w) for w in _content_words(text)]

    @cached_property
    def folded(self) -> str:
        return fold(self.text)

    @cached_property
    def brief_stems(self) -> frozenset[str]:
        words = _content_words(self.text)
        stems = {self.stem(w) for w in words} | {_stemmer("en").stemWord(w) for w in words}
        return frozenset(stems) | frozenset(words)

    @cached_property
    def numbers(self) -> frozenset[str]:
        return frozenset(_numbers_in(self.text, self.language))


def _numbers_in(text: str, language: str) -> list[str]:
    found = [_number_key(m) for m in _NUMBER.findall(text)]
    words = {**_NUMBER_WORDS["en"], **_NUMBER_WORDS.get(language, {})}
    found += [words[w] for w in fold(text).split() if w in words]
    return found


def facts_to_keep(original: str, facts: BriefFacts, *, written: str = "") -> list[str]:
    """What a variation of `original` (the advertiser's own text) must keep, as a rewrite
    prompt lists it: the product where the original names it, then each number with the
    word after it ("Trailrunner 3", "280 g"), less what `written` (the variation's
    headline, drafted already) keeps."""
    keep = []
    if facts.product and _named_in(original, facts) and not _named_in(written, facts):
        keep.append(facts.product)
    have = set(_numbers_in(written, facts.language))
    for match in _NUMBER_PHRASE.finditer(_without_product(original, facts)):
        number = _number_key(match.group("number"))
        if number not in have:
            have.add(number)
            keep.append(" ".join(match.group().split()))
    return keep


def product_named(creative: Creative | Mapping, facts: BriefFacts) -> bool:
    """Whether the product is named exactly as the brief names it (case and accents too)."""
    creative = as_creative(creative)
    return bool(facts.product) and _named_in(f"{creative.headline}\n{creative.body}", facts)


def _named_in(text: str, facts: BriefFacts) -> bool:
    return re.search(r"(?<!\w)" + re.escape(facts.product) + r"(?!\w)", text) is not None


def _without_product(text: str, facts: BriefFacts) -> str:
    if not facts.product:
        return text
    return re.sub(r"(?<!\w)" + re.escape(facts.product) + r"(?!\w)", f" {_PRODUCT} ", text)


def repair_product_name(text: str, facts: BriefFacts) -> str:
    """The text with the product, where it is written otherwise ("trailrunner 3",
    "TrailRunner  3"), written as the brief writes it; a safe repair: same words."""
    if not facts.product:
        return text
    words = [re.escape(w) for w in facts.product.split()]
    spelled = re.compile(r"(?<!\w)" + r"[\s-]*".join(words) + r"(?!\w)", re.IGNORECASE)
    return spelled.sub(facts.product, text)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _is_title_case(text: str) -> bool:
    words = [w for w in _TOKEN.findall(text) if len(w) >= 4 and w[0].isalpha()]
    return bool(words) and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _names(
    text: str, *, title_case: bool, language: str, brief_text: str
) -> list[tuple[str, bool]]:
    """Words that read as names: mixed capitals ("iPhone"), letters with digits ("X200"),
    a capitalised word before a number ("Ride 3"), capitals inside a sentence that the
    brief does not capitalise (unless the text capitalises its words, as headlines may),
    acronyms, and rare capitalised words. Each comes with whether it is a name even though
    its words are the brief's (a capital inside a sentence: "Ride Waterproof")."""
    found = []
    for sentence in _sentences(text):
        matches = list(_TOKEN.finditer(sentence))
        for i, match in enumerate(matches):
            word = match.group()
            letters = [c for c in word if c.isalpha()]
            if not letters or word.casefold() in _ALLOWED_NAMES:
                continue
            first = i == 0 or sentence[: match.start()].rstrip()[-1:] in _SENTENCE_OPENERS
            capital = word[0].isupper()
            mixed = any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)
            digits = any(c.isdigit() for c in word)
            acronym = len(letters) >= 2 and all(c.isupper() for c in letters)
            before_number = (
                capital
                and i + 1 < len(matches)
                and matches[i + 1].group()[0].isdigit()
                and sentence[match.end() : matches[i + 1].start()].strip() == ""
                and (not (first or title_case) or _named_by_what_follows(matches, i + 2, sentence))
            )
            inside = capital and not first and not title_case and word not in brief_text
            rare = capital and _zipf(word.casefold(), language) < RARE_ZIPF
            if mixed or digits or acronym or before_number or inside or rare:
                found.append((word, inside))
    return found


def _named_by_what_follows(matches: list, index: int, sentence: str) -> bool:
    """Whether what follows "<Word> <number>" makes it a name: the sentence ends, or a
    verb comes next."""
    if index >= len(matches):
        return True
    return matches[index].group().casefold() in _NAME_FOLLOWERS


def _claims_in(text: str, language: str) -> list[str]:
    folded = fold(text)
    found = [c for c in CLAIMS.get(language, CLAIMS["en"]) if phrase_in(folded, c)]
    found += [m.group().strip() for m in _RANK.finditer(text)]
    found += _COMPARISON.get(language, _COMPARISON["en"]).findall(folded)
    if language == "es":
        found += _SUPERLATIVE_ES.findall(folded)
    else:
        found += [w for w in _SUPERLATIVE_EN.findall(folded) if w not in _NOT_SUPERLATIVE]
        if re.search(r"\bthe most\b", folded) and not _MOST_IDIOM.search(folded):
            found.append("the most")
    return list(dict.fromkeys(found))


def check_faithful(creative: Creative | Mapping, facts: BriefFacts) -> dict[str, CheckResult]:
    """Every faithfulness check on one creative, by name (see the module docstring)."""
    creative = as_creative(creative)
    headline, body = creative.headline, creative.body
    text = f"{headline}\n{body}"
    checks: dict[str, CheckResult] = {}

    named = product_named(creative, facts)
    misnamed = ""
    if facts.product and not named:
        squashed = fold(facts.product).replace(" ", "")
        if squashed and squashed in fold(text).replace(" ", ""):
            misnamed = "otherwise"
    checks["product"] = CheckResult(
        not misnamed,
        (f"the product is written otherwise than the brief's {facts.product!r}" if misnamed
         else f"names {facts.product!r}" if named
         else "does not name the product" if facts.product else "the brief names no product"),
        {"named": named, "misnamed": misnamed},
    )  # fmt: skip

    numbers = [n for n in _numbers_in(text, facts.language) if n not in facts.numbers]
    names = [
        name
        for field, value in (("headline", headline), ("body", body))
        for name, strict in _names(
            _without_product(value, facts),
            title_case=field == "headline" and _is_title_case(value),
            language=facts.language, brief_text=facts.text,
        )
        if strict or not _in_brief(name, facts)
    ]  # fmt: skip
    people = [w for w in fold(text).split() if w in PEOPLE and not _in_brief(w, facts)]
    invented = list(dict.fromkeys([*numbers, *names, *people]))
    checks["invented"] = CheckResult(
        not invented,
        f"not in the brief: {', '.join(invented)}" if invented
        else "every number, name and person is the brief's",
        {"numbers": list(dict.fromkeys(numbers)), "names": list(dict.fromkeys(names)),
         "people": list(dict.fromkeys(people))},
    )  # fmt: skip

    given = set(_claims_in(facts.text, facts.language))
    claims = [c for c in _claims_in(text, facts.language) if c not in given]
    checks["claims"] = CheckResult(
        not claims,
        f"claims the brief does not make: {', '.join(claims)}" if claims
        else "no unsupported claims",
        {"claims": claims},
    )  # fmt: skip

    headline_stems = set(facts.stems(headline))
    new = list(dict.fromkeys(s for s in facts.stems(body) if s not in headline_stems))
    if facts.product and _named_in(body, facts) and not _named_in(headline, facts):
        new.append(_PRODUCT)
    checks["body_adds"] = CheckResult(
        len(new) >= MIN_NEW_WORDS,
        f"the body adds {len(new)} word(s) to its headline, at least {MIN_NEW_WORDS} wanted",
        {"new_words": len(new)},
    )

    unnamed = _without_product(text, facts)
    spelled: dict[str, str] = {}
    for word in _content_words(unnamed):
        spelled.setdefault(facts.stem(word), word)
    counts = Counter(facts.stems(unnamed))
    counts[_PRODUCT] = unnamed.count(_PRODUCT)
    spelled[_PRODUCT] = facts.product
    repeated = sorted(spelled[stem] for stem, count in counts.items() if count > MAX_REPEATS)
    checks["repetition"] = CheckResult(
        not repeated,
        f"repeated {MAX_REPEATS + 1}+ times: {', '.join(repeated)}" if repeated
        else "no word repeated",
        {"repeated": repeated},
    )  # fmt: skip

    sentences = _sentences(body)
    ungrounded = [s for s in sentences if not _grounded(s, facts) and not s.endswith("?")]
    if sentences and not any(_grounded(s, facts) for s in sentences):
        ungrounded = sentences
    checks["grounded"] = CheckResult(
        not ungrounded,
        "says nothing from the brief: " + " | ".join(ungrounded) if ungrounded
        else "every statement in the post stands on the brief",
        {"ungrounded": ungrounded},
    )  # fmt: skip

    detected = detect_language_among(text, tuple(sorted({facts.language, "en", "es"})))
    wrong = detected is not None and detected != facts.language
    checks["language"] = CheckResult(
        not wrong,
        f"written in {detected}, the brief is in {facts.language}" if wrong
        else f"in {facts.language}" if detected else "too short to tell its language",
        {"detected": detected or ""},
    )  # fmt: skip

    lost = []
    if facts.original:
        drafted = Counter(_numbers_in(text, facts.language))
        lost = [n for n in dict.fromkeys(_numbers_in(facts.original, facts.language))
                if n not in drafted]  # fmt: skip
        if facts.product and _named_in(facts.original, facts) and not named:
            lost.append(facts.product)
    checks["keeps_facts"] = CheckResult(
        not lost,
        f"leaves out the advertiser's {', '.join(lost)}" if lost
        else "keeps the advertiser's facts" if facts.original else "no text of the advertiser's",
        {"lost": lost},
    )  # fmt: skip
    return checks


def _in_brief(word: str, facts: BriefFacts) -> bool:
    """Whether a name-like word is the brief's: its folded form, squashed or stemmed."""
    folded = fold(word).strip()
    if not folded or phrase_in(facts.folded, folded):
        return True
    if folded.replace(" ", "") in facts.folded.replace(" ", ""):
        return True  # "TrailRunner" for "Trail Runner"
    return all(facts.stem(w) in facts.brief_stems for w in folded.split())


def _grounded(sentence: str, facts: BriefFacts) -> bool:
    """Whether the sentence shares a content word (or its stem), or a number, with the
    brief; the product's name counts."""
    if facts.product and _named_in(sentence, facts):
        return True
    if any(n in facts.numbers for n in _numbers_in(sentence, facts.language)):
        return True
    for word in _content_words(sentence):
        if word in facts.brief_stems or facts.stem(word) in facts.brief_stems:
            return True
        if _stemmer("en").stemWord(word) in facts.brief_stems:
            return True
    return False
