"""Choosing among candidates: the CTA an objective calls for, near-duplicates dropped,
and a ranking whose score keeps its reasons.

    cta_for_objective("app installs", limits)          # "Download"
    keep = drop_near_duplicates(texts, vectors)         # (n, d) L2-normalised, optional
    for index, score, reasons in rank(candidates, product=..., limits=limits): ...

Plain Python, no Django.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ads.creative.check import Creative, as_creative
from ads.creative.limits import DEFAULT_LIMITS, CreativeLimits
from ads.creative.text import body_length, fold, phrase_in, text_length

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
    folded = fold(objective)
    for cta, words in _OBJECTIVE_CTAS:
        if cta in limits.allowed_ctas and any(phrase_in(folded, word) for word in words):
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
    relevance: Sequence[float] | None = None,
) -> list[tuple[int, float, list[str]]]:
    """Candidates best first, as (index, score, reasons); each reason says what it added.

    Points: the product named as the brief writes it, case included (+2), relevance to
    the brief (cosine of the retrieval encoder's vectors, times 3), brief keywords used
    (+1 each, up to 3), a headline of
    25-60 characters (+1, else -0.5), a body using 30-90% of its room (+1), no repairs
    (+1, else -0.5 each), the CTA the objective calls for (+1), more than one '!' (-0.5
    each), words in ALL CAPS (-0.5 each, up to -2). Ties keep the candidates' order."""
    for name, values in (("repairs", repairs), ("relevance", relevance)):
        if values is not None and len(values) != len(candidates):
            raise ValueError(
                f"{name} must have one entry per candidate: {len(values)} for {len(candidates)}"
            )
    ranked = []
    for index, raw in enumerate(candidates):
        creative = as_creative(raw)
        text = f"{creative.headline}\n{creative.body}"
        folded = fold(text)
        points: list[tuple[float, str]] = []

        if product.strip() and " ".join(product.split()) in " ".join(text.split()):
            points.append((2.0, f"mentions the product {product!r}"))
        elif product.strip() and phrase_in(folded, product):
            points.append((1.0, f"mentions the product, written otherwise than {product!r}"))
        if relevance is not None:
            points.append((round(3 * relevance[index], 2), f"relevance {relevance[index]:.2f}"))
        used = [kw for kw in dict.fromkeys(brief_keywords) if kw.strip() and phrase_in(folded, kw)]
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
