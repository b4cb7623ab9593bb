"""The prompts ad models see, one place for training and drafting: an adapter learns the
exact text it is later asked with.

    headline_prompt(product="Teamboard", description="Project boards for small teams",
                    keywords=("boards",), industry="internet")
    # "Write an ad headline in English.\\nProduct: Teamboard\\n"
    # "Description: Project boards for small teams\\nKeywords: boards\\n"
    # "Industry: internet\\nHeadline:"
    body_prompt(..., headline="Plan Together")          # "...\\nHeadline: Plan Together\\nPost:"
    headline_prompt(..., original="Teamboard: 3 boards free")  # "Rewrite this ad headline ...
    # \\nOriginal: Teamboard: 3 boards free\\nKeep: Teamboard; 3 boards\\nHeadline:"

The brief's own words (product, keywords) are in the prompt for the model to copy; the
task line names the brief's language. Plain text, not a chat template: the ad base model
is a base (not instruct) model, and the completion (" " + the text) is all the loss is
computed on. The base model alone (no adapter, or an adapter not trained on a task) is
asked after worked examples in the same format (`with_examples`): a base model continues
a pattern far more reliably than it follows an instruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ads.creative.faithful import BriefFacts, facts_to_keep

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code or "English")


@dataclass(frozen=True)
class PromptBrief:
    """What every prompt states about the product."""

    description: str
    product: str = ""
    keywords: Sequence[str] = ()
    industry: str = ""
    language: str = "en"

    @property
    def facts(self) -> BriefFacts:
        return BriefFacts.of(
            product=self.product, description=self.description, language=self.language
        )

    def lines(self) -> list[str]:
        lines = []
        if self.product.strip():
            lines.append(f"Product: {_one_line(self.product)}")
        lines.append(f"Description: {_one_line(self.description)}")
        keywords = [_one_line(k) for k in self.keywords if k.strip()]
        if keywords:
            lines.append(f"Keywords: {', '.join(keywords)}")
        if self.industry.strip():
            lines.append(f"Industry: {_one_line(self.industry)}")
        return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _keep_line(keep: Sequence[str]) -> list[str]:
    keep = [_one_line(fact) for fact in keep if fact.strip()]
    return [f"Keep: {'; '.join(keep)}"] if keep else []


def headline_prompt(
    *,
    description: str,
    product: str = "",
    keywords: Sequence[str] = (),
    industry: str = "",
    language: str = "en",
    original: str = "",
) -> str:
    """The headline prompt; with `original` (the advertiser's own headline), a rewrite
    that lists the facts to keep (ads.creative.faithful.facts_to_keep)."""
    brief = PromptBrief(description, product, tuple(keywords), industry, language)
    return _headline(brief, original)


def _headline(brief: PromptBrief, original: str = "") -> str:
    name = language_name(brief.language)
    if original.strip():
        lines = [f"Rewrite this ad headline in {name}, keeping its facts.", *brief.lines()]
        lines.append(f"Original: {_one_line(original)}")
        lines += _keep_line(facts_to_keep(original, brief.facts))
    else:
        lines = [f"Write an ad headline in {name}.", *brief.lines()]
    lines.append("Headline:")
    return "\n".join(lines)


def body_prompt(
    *,
    description: str,
    headline: str,
    product: str = "",
    keywords: Sequence[str] = (),
    industry: str = "",
    language: str = "en",
    audience: str = "",
    tone: str = "",
    original: str = "",
    original_headline: str = "",
) -> str:
    """The post under a headline; with `original` (the advertiser's own post), a rewrite
    that lists the facts of the advertiser's text (`original_headline` and post) the
    headline does not keep already."""
    brief = PromptBrief(description, product, tuple(keywords), industry, language)
    return _body(
        brief,
        headline,
        audience=audience,
        tone=tone,
        original=original,
        original_headline=original_headline,
    )


def _body(
    brief: PromptBrief,
    headline: str,
    *,
    audience: str = "",
    tone: str = "",
    original: str = "",
    original_headline: str = "",
) -> str:
    name = language_name(brief.language)
    if original.strip():
        lines = [f"Rewrite this ad post in {name}, keeping its facts.", *brief.lines()]
    else:
        lines = [f"Write a short ad post in {name}.", *brief.lines()]
    lines += [f"{label}: {_one_line(v)}" for label, v in (("Audience", audience), ("Tone", tone))
              if v.strip()]  # fmt: skip
    lines.append(f"Headline: {_one_line(headline)}")
    if original.strip():
        lines.append(f"Original: {_one_line(original)}")
        own = f"{original_headline}\n{original}"
        lines += _keep_line(facts_to_keep(own, brief.facts, written=headline))
    lines.append("Post:")
    return "\n".join(lines)


def product_text(*, product: str = "", description: str) -> str:
    """A product and its description as one line: the name, then what it does."""
    description = _one_line(description)
    product = _one_line(product)
    if product and product.casefold() not in description.casefold():
        return f"{product}: {description}"
    return description


# Worked examples for the base model alone, per language: (brief, headline, post, another
# headline, another post). Facts only from the brief, the product named as it is written.
EXAMPLES = {
    "en": (
        (PromptBrief("A budgeting app that sorts your spending and warns you before a bill is due.",
                     "Pennywise", ("budget", "bills"), "internet", "en"),
         "Pennywise Sorts Your Spending for You",
         "See where your spending goes. Pennywise warns you before a bill is due, "
         "so nothing catches you out.",
         "Know Every Bill Before It Is Due",
         "Pennywise sorts your spending by itself and sends a warning before each bill."),
        (PromptBrief("A reusable steel water bottle that keeps drinks cold for 24 hours.",
                     "Glacier Flask", ("reusable", "cold"), "consumer goods", "en"),
         "Cold Water for 24 Hours with Glacier Flask",
         "Fill your Glacier Flask in the morning and your water is still cold tonight. "
         "Steel, reusable, made to go everywhere with you.",
         "Glacier Flask Keeps Your Drinks Cold",
         "A reusable steel bottle that keeps water cold for 24 hours, from the gym to the office."),
    ),
    "es": (
        (PromptBrief("Clases de piano en línea para adultos principiantes, 15 minutos al día.",
                     "Tecla Fácil", ("piano", "principiantes"), "e-learning", "es"),
         "Aprende piano con Tecla Fácil",
         "Clases en línea para adultos que empiezan de cero: 15 minutos al día y a tu ritmo.",
         "¿Quieres tocar el piano? Empieza hoy",
         "Tecla Fácil te guía desde las primeras notas con clases cortas de 15 minutos al día."),
        (PromptBrief("Una botella de acero reutilizable que mantiene el agua fría 24 horas.",
                     "Glaciar", ("reutilizable", "fría"), "consumer goods", "es"),
         "Agua fría todo el día con Glaciar",
         "Llena tu botella Glaciar por la mañana y el agua sigue fría 24 horas después. "
         "De acero y reutilizable.",
         "Tu agua, fría durante 24 horas",
         "Glaciar es una botella de acero reutilizable que cabe en tu bolso y mantiene "
         "el agua fría."),
    ),
}  # fmt: skip


def _examples(language: str):
    return EXAMPLES.get(language, EXAMPLES["en"])


def headline_prompt_with_examples(**fields) -> str:
    """headline_prompt after worked examples in the brief's language, for the base model."""
    language = fields.get("language", "en")
    original = fields.get("original", "")
    shown = [
        f"{_headline(ex, other if original else '')} {headline}"
        for ex, headline, _, other, _ in _examples(language)
    ]
    return "\n\n".join([*shown, headline_prompt(**fields)])


def body_prompt_with_examples(**fields) -> str:
    """body_prompt after worked examples in the brief's language, for the base model."""
    language = fields.get("language", "en")
    original = fields.get("original", "")
    shown = []
    for ex, headline, post, other, other_post in _examples(language):
        own = {"original": other_post, "original_headline": other} if original else {}
        shown.append(f"{_body(ex, headline, **own)} {post}")
    return "\n\n".join([*shown, body_prompt(**fields)])
