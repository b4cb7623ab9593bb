"""Regulated categories: the keywords that point at each (English and Spanish), and the
decision that governs a brief or a creative: its category, whether declared or detected,
and the policy's action (block or review).

    decision = brief_category(declared="", text=brief_text, limits=limits)
    decision.action      # "block", "review" or None
    decision.as_dict()   # stored with the job and every creative's checks

Plain Python, no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ads.creative.limits import DEFAULT_LIMITS, REGULATED_CATEGORIES, Action, CreativeLimits
from ads.creative.text import fold, phrase_in

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
    folded = fold(text)
    detected = {}
    for category, (strong, weak) in CATEGORY_KEYWORDS.items():
        strong_hits = [word for word in strong if phrase_in(folded, word)]
        weak_hits = [word for word in weak if phrase_in(folded, word)]
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


def creative_category(
    category: str | CategoryDecision, *, text: str, limits: CreativeLimits
) -> CategoryDecision:
    """The brief's declared category (or its whole decision) with the creative's own
    keywords: the creative's detection wins only when it is stricter."""
    if not isinstance(category, CategoryDecision):
        return brief_category(declared=category, text=text, limits=limits)
    own = brief_category(declared="", text=text, limits=limits)
    return own if _SEVERITY[own.action] > _SEVERITY[category.action] else category
