"""Hard checks every ad creative passes before it is saved as a draft.

The ad model's output is untrusted text. `check_creative` runs every check on a creative
as it is (lengths, CTA, hashtags, emoji, banned terms, regulated category, markup, links)
against `CreativeLimits` and returns one `CheckReport`; `ads.creative.repair` mends what
it can first.

    report = check_creative(
        Creative(headline=..., body=..., cta=...),
        limits=limits, banned_terms=campaign.banned_terms, landing_url=campaign.landing_url,
    )
    report.passed, report.failed, report.as_dict()

Plain Python, no Django: the ads services build the limits and call in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ads.creative.categories import CategoryDecision, creative_category
from ads.creative.limits import DEFAULT_LIMITS, CreativeLimits
from ads.creative.text import (
    body_length,
    find_banned_terms,
    find_emoji,
    find_hashtags,
    find_markup,
    find_urls,
    links_to_landing,
    same_site,
    text_length,
)


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


def as_creative(raw: Creative | Mapping[str, Any]) -> Creative:
    """A `Creative` from one, or from a mapping (a field that is not a string reads empty)."""
    if isinstance(raw, Creative):
        return raw

    def text(name: str) -> str:
        value = raw.get(name)
        return value if isinstance(value, str) else ""

    return Creative(headline=text("headline"), body=text("body"), cta=text("cta"))


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
    creative = as_creative(creative)
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
    links = len(find_urls(body)) + bool(landing_url and not links_to_landing(body, landing_url))
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

    decision = creative_category(category, text=f"{headline}\n{body}", limits=limits)
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
        if not (landing_url and same_site(url, landing_url))
    ]
    checks["links"] = CheckResult(
        not foreign,
        "links off the landing site: " + ", ".join(foreign) if foreign else "links ok",
        {"foreign": foreign},
    )
    return CheckReport(checks=checks, category=decision)
