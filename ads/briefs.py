"""A campaign's brief as plain values, and what the creative rules say about it.

    brief = Brief.from_campaign(campaign)        # BriefError names a field too thin to draft
    decision = campaign_decision(campaign)       # its regulated category, declared or detected
    report = creative_checks(campaign=campaign, headline=..., body=..., cta=...)
    limits().allowed_ctas                        # the limits from settings.PLAZA_AD_LIMITS

Drafting (ads.services.drafting) refuses a brief in a blocked category with `DraftBlocked`;
an edit (ads.services.review) is checked here as a draft is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from django.conf import settings

from ads.creative.categories import CategoryDecision, brief_category
from ads.creative.check import Creative, check_creative
from ads.creative.faithful import BriefFacts, check_faithful
from ads.creative.limits import CreativeLimits
from ads.models import Campaign, RegulatedCategory


class DraftBlocked(Exception):
    """The brief falls in a regulated category whose ads Plaza does not run."""

    def __init__(self, decision: CategoryDecision):
        self.decision = decision
        matched = f" (matched: {', '.join(decision.matched)})" if decision.matched else ""
        label = RegulatedCategory(decision.category).label
        super().__init__(
            f"Plaza does not draft ads in the regulated category '{label}' "
            f"({decision.source}{matched}); nothing was generated."
        )


class BriefError(ValueError):
    """A brief that cannot be drafted: names the field."""


@dataclass(frozen=True)
class Brief:
    """What a campaign asks for, as plain values (a campaign row or a JSON file)."""

    description: str
    product: str = ""
    audience: str = ""
    tone: str = ""
    language: str = "en"
    objective: str = ""
    keywords: tuple[str, ...] = ()
    landing_url: str = ""
    banned_terms: tuple[str, ...] = ()
    category: str = ""
    industry: str = ""
    own_headline: str = ""  # the advertiser's own text: drafts are variations of it
    own_body: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.description, str) or len(self.description.split()) < 2:
            raise BriefError("description: say what the product is, in a few words at least")
        for name in ("product", "audience", "tone", "language", "objective", "landing_url",
                     "own_headline", "own_body"):  # fmt: skip
            if not isinstance(getattr(self, name), str):
                raise BriefError(f"{name}: expected a string")
        for name in ("keywords", "banned_terms"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise BriefError(f"{name}: expected a list of strings")
        if self.category not in RegulatedCategory.values:
            allowed = ", ".join(v for v in RegulatedCategory.values if v)
            raise BriefError(f"category: {self.category!r} is not one of: {allowed} (or empty)")

    @classmethod
    def from_campaign(cls, campaign: Campaign) -> Brief:
        return cls(
            description=campaign.description,
            product=campaign.product,
            audience=campaign.audience,
            tone=campaign.tone,
            language=campaign.language,
            objective=campaign.objective,
            keywords=_strings(campaign.keywords),
            landing_url=campaign.landing_url,
            banned_terms=_strings(campaign.banned_terms),
            category=campaign.category,
            industry=campaign.advertiser.industry,
            own_headline=campaign.own_headline,
            own_body=campaign.own_body,
        )

    @classmethod
    def from_mapping(cls, data: Mapping) -> Brief:
        """A brief from a JSON object; unknown keys and wrong types are named."""
        if not isinstance(data, Mapping):
            raise BriefError("expected one JSON object with the brief's fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BriefError(
                f"{', '.join(unknown)}: unknown field(s); known: {', '.join(sorted(known))}"
            )
        if "description" not in data:
            raise BriefError("description: required")
        values = dict(data)
        for name in ("keywords", "banned_terms"):
            if name in values:
                if not isinstance(values[name], list):
                    raise BriefError(f"{name}: expected a list of strings")
                values[name] = tuple(values[name])
        return cls(**values)

    @property
    def text(self) -> str:
        """Everything the brief says, for the category detector."""
        return _brief_text(self.product, self.description, self.audience, self.keywords)

    @property
    def facts(self) -> BriefFacts:
        """What a draft may say: the brief's facts, the advertiser's own text included."""
        return BriefFacts.of(
            product=self.product,
            description=self.description,
            language=self.language,
            audience=self.audience,
            keywords=self.keywords,
            own_text=(self.own_headline, self.own_body),
        )


def _strings(value) -> tuple[str, ...]:
    """A JSON list of strings (keywords, banned terms); anything else reads as empty."""
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _brief_text(product: str, description: str, audience: str, keywords) -> str:
    return " ".join([product, description, audience, *keywords])


def limits() -> CreativeLimits:
    return CreativeLimits.from_mapping(settings.PLAZA_AD_LIMITS)


def campaign_decision(campaign: Campaign) -> CategoryDecision:
    """The campaign's regulated-category decision (declared, or detected in its words);
    readable even for a brief too thin to draft."""
    text = _brief_text(
        campaign.product, campaign.description, campaign.audience, _strings(campaign.keywords)
    )
    return brief_category(declared=campaign.category, text=text, limits=limits())


def creative_checks(*, campaign: Campaign, headline: str, body: str, cta: str) -> dict:
    """Every hard check on a creative as a person wrote it (an edit): the report as a dict
    with `passed`, `needs_review` and `checks`, and the faithfulness checks beside them
    (`faithful`, `faithfulness`): advice for a person's text, never a refusal."""
    creative = Creative(headline=headline, body=body, cta=cta)
    report = check_creative(
        creative,
        limits=limits(),
        banned_terms=_strings(campaign.banned_terms),
        landing_url=campaign.landing_url,
        category=campaign_decision(campaign),
    )
    try:
        facts = Brief.from_campaign(campaign).facts
    except BriefError:  # a brief too thin to draft from is too thin to check against
        return report.as_dict()
    return report.as_dict() | faithfulness_dict(check_faithful(creative, facts))


def faithfulness_dict(results: Mapping) -> dict:
    """The faithfulness checks as the `checks` JSON keeps them."""
    return {
        "faithful": all(r.ok for r in results.values()),
        "unfaithful": [name for name, r in results.items() if not r.ok],
        "faithfulness": {name: r.as_dict() for name, r in results.items()},
    }
