"""The seeded demo (`manage.py seed_demo`): an advertiser with a member who is its admin,
three campaigns (English, Spanish, and one in a category that goes to extra review) and
their creatives, so a newcomer signs in and drafts in the studio at once.

    report = demo_seed(password="...")    # report.created / report.found, report.member

The briefs and hand-written drafts are in ads/demo/studio.json; a shipped demo creative
(ads/demo/creatives.csv: a product description and the headline that ran for it) whose
description is a campaign's joins that campaign, approved. Idempotent: what exists (by
name) is found and left as it is, edits included; a campaign's creatives are written only
when the campaign is.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ads.briefs import creative_checks, limits
from ads.creative.rank import cta_for_objective
from ads.datasets import DEMO_CSV
from ads.members import member_add
from ads.models import AdCreative, Advertiser, Campaign, CreativeEvent, Membership
from ads.services.campaigns import campaign_create

DEMO_STUDIO = Path(__file__).resolve().parent / "demo" / "studio.json"


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)  # "campaign 'Teamboard launch' (3 creatives)"
    found: list[str] = field(default_factory=list)
    member: object = None  # the demo member's account
    member_created: bool = False  # True: its password is the one given to demo_seed


def _shipped_creatives(path: Path = DEMO_CSV) -> dict[str, list[str]]:
    """description -> the headlines shipped for it."""
    with path.open(encoding="utf-8", newline="") as handle:
        shipped: dict[str, list[str]] = {}
        for row in csv.DictReader(handle):
            shipped.setdefault(" ".join(row["desc"].split()), []).append(row["output"].strip())
    return shipped


def _creative_create(
    campaign: Campaign, *, headline: str, body: str, cta: str, approved: bool, note: str
) -> AdCreative:
    report = creative_checks(campaign=campaign, headline=headline, body=body, cta=cta)
    # Approved only where a reviewer could approve it: passing, and no extra review due.
    approved = approved and report["passed"] and not report["needs_review"]
    creative = AdCreative.objects.create(
        campaign=campaign,
        headline=headline,
        body=body,
        cta=cta,
        status=AdCreative.Status.APPROVED if approved else AdCreative.Status.DRAFT,
        needs_review=report["needs_review"],
        checks=report,
        reviewed_at=timezone.now() if approved else None,
    )
    CreativeEvent.objects.create(creative=creative, action=CreativeEvent.Action.CREATED, note=note)
    if approved:
        CreativeEvent.objects.create(
            creative=creative,
            action=CreativeEvent.Action.APPROVED,
            changes={"status": ["draft", "approved"]},
            note="approved in the seeded demo",
        )
    return creative


def _campaign_creatives(campaign: Campaign, spec: dict, shipped: dict[str, list[str]]) -> int:
    count = 0
    cta = cta_for_objective(campaign.objective, limits())
    for headline in shipped.get(" ".join(campaign.description.split()), []):
        _creative_create(
            campaign,
            headline=headline,
            body=campaign.description,
            cta=cta,
            approved=True,
            note="seeded demo: a shipped demo creative (ads/demo/creatives.csv)",
        )
        count += 1
    for draft in spec.get("creatives", []):
        note = "seeded demo draft" + (f": {draft['note']}" if draft.get("note") else "")
        _creative_create(
            campaign,
            headline=draft["headline"],
            body=draft["body"],
            cta=draft["cta"],
            approved=False,
            note=note,
        )
        count += 1
    return count


@transaction.atomic
def demo_seed(*, password: str, path: Path = DEMO_STUDIO) -> SeedReport:
    """Creates whatever of the demo is missing; `password` is the member's if the member
    is created now (never staff)."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    report = SeedReport()

    advertiser, created = Advertiser.objects.get_or_create(
        name=spec["advertiser"]["name"], defaults={"industry": spec["advertiser"]["industry"]}
    )
    (report.created if created else report.found).append(f"advertiser {advertiser.name!r}")

    member_spec = spec["member"]
    users = get_user_model().objects
    member = users.filter(username=member_spec["username"]).first()
    if member is None:
        member = users.create_user(
            username=member_spec["username"], email=member_spec["email"], password=password
        )
        report.member_created = True
        report.created.append(f"member {member.username!r} (not staff)")
    else:
        report.found.append(f"member {member.username!r}")
    report.member = member

    role = member_spec.get("role", Membership.Role.MEMBER)
    if Membership.objects.filter(advertiser=advertiser, user=member).exists():
        report.found.append(f"{member.username!r} in {advertiser.name!r}")
    else:
        member_add(advertiser=advertiser, user=member, role=role)
        report.created.append(f"{member.username!r} in {advertiser.name!r} as {role}")

    shipped = _shipped_creatives()
    for campaign_spec in spec["campaigns"]:
        campaign = Campaign.objects.filter(
            advertiser=advertiser, name=campaign_spec["name"]
        ).first()
        if campaign is not None:
            report.found.append(f"campaign {campaign.name!r}")
            continue
        campaign = campaign_create(
            advertiser=advertiser,
            name=campaign_spec["name"],
            created_by=member,
            **{name: campaign_spec[name] for name in Campaign.BRIEF_FIELDS},
        )
        count = _campaign_creatives(campaign, campaign_spec, shipped)
        report.created.append(
            f"campaign {campaign.name!r} ({count} creative{'' if count == 1 else 's'})"
        )
    return report
