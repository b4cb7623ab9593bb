"""The prompts ad models see, one place for training and drafting: an adapter learns the
exact text it is later asked with.

    headline_prompt(description="Project boards for small teams", industry="internet")
    # "Write an ad headline.\\nProduct: Project boards for small teams\\n"
    # "Industry: internet\\nHeadline:"

Plain text, not a chat template: the ad base model is a base (not instruct) model, and the
completion (" " + the headline) is all the loss is computed on.
"""

from __future__ import annotations


def headline_prompt(*, description: str, industry: str = "") -> str:
    lines = ["Write an ad headline.", f"Product: {' '.join(description.split())}"]
    if industry.strip():
        lines.append(f"Industry: {industry.strip()}")
    lines.append("Headline:")
    return "\n".join(lines)


def product_text(*, product: str = "", description: str) -> str:
    """What a brief's product is, as training rows describe it: the name, then what it does."""
    description = " ".join(description.split())
    product = " ".join(product.split())
    if product and product.casefold() not in description.casefold():
        return f"{product}: {description}"
    return description


# Worked examples for a model that has not learned the format (the base model alone, and
# the post under a headline, which adapters are not trained on): a base model continues a
# pattern far more reliably than it follows an instruction.
HEADLINE_EXAMPLES = (
    ("A budgeting app that sorts your spending and warns you before a bill is due.",
     "internet", "Know Where Every Euro Goes"),
    ("Waterproof rain jackets for cyclists, with reflective seams and a packable hood.",
     "apparel", "Ride Dry, Be Seen"),
)  # fmt: skip
BODY_EXAMPLES = {
    "en": (
        ("A reusable steel water bottle that keeps drinks cold for 24 hours.",
         "Cold Water, All Day Long",
         "Ice-cold water from morning to night, in a bottle that fits your bag. "
         "Refill it, don't throw it away."),
        ("Online piano lessons for adult beginners, 15 minutes a day.",
         "Play Your First Song This Month",
         "Always wanted to play? Short daily lessons take you from your first notes to "
         "a full song, at your own pace."),
    ),
    "es": (
        ("Una botella de acero reutilizable que mantiene el agua fría 24 horas.",
         "Agua fría todo el día",
         "Agua helada de la mañana a la noche, en una botella que cabe en tu bolso. "
         "Rellénala, no la tires."),
        ("Clases de piano en línea para adultos principiantes, 15 minutos al día.",
         "Toca tu primera canción este mes",
         "¿Siempre quisiste tocar? Lecciones cortas cada día te llevan de las primeras "
         "notas a una canción entera, a tu ritmo."),
    ),
}  # fmt: skip


def headline_prompt_with_examples(*, description: str, industry: str = "") -> str:
    """The headline prompt after worked examples in the same format, for the base model
    alone (an adapter is asked with the exact training prompt, headline_prompt)."""
    shown = [f"{headline_prompt(description=d, industry=i)} {h}" for d, i, h in HEADLINE_EXAMPLES]
    return "\n\n".join([*shown, headline_prompt(description=description, industry=industry)])


def body_prompt(
    *, description: str, headline: str, audience: str = "", tone: str = "", language: str = "en"
) -> str:
    """The post under a headline, after two worked examples in the brief's language."""
    examples = BODY_EXAMPLES.get(language, BODY_EXAMPLES["en"])
    blocks = [_body_block(d, h, {}) + f" {post}" for d, h, post in examples]
    blocks.append(_body_block(description, headline, {"Audience": audience, "Tone": tone}))
    return "\n\n".join(blocks)


def _body_block(description: str, headline: str, extra: dict[str, str]) -> str:
    lines = ["Write a short ad post.", f"Product: {' '.join(description.split())}"]
    lines += [f"{label}: {' '.join(v.split())}" for label, v in extra.items() if v.strip()]
    lines += [f"Headline: {' '.join(headline.split())}", "Post:"]
    return "\n".join(lines)
