"""Writes for creatives after drafting: a person approves, edits or rejects a draft (each
audited with who and when), approved creatives are exported, performance is imported.

    creative_approve(creative=c, user=reviewer)
    creative_edit(creative=c, user=reviewer, headline="...", body="...", cta="Shop now")
    creative_reject(creative=c, user=reviewer, note="off brand")
    text = creatives_export_csv(campaign=campaign)           # approved ones
    report = performance_import_csv(path=..., user=user)     # impressions, clicks per day

An edit passes the same hard checks as a draft: an edit that breaks one is refused with
the check that failed, and the creative is left as it was. A creative in a regulated
category that goes to extra review can only be approved by a user with the
`ads.approve_regulated` permission (Plaza's ad reviewers).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ads import selectors
from ads.briefs import creative_checks
from ads.models import AdCreative, Campaign, CreativeEvent, CreativePerformance

EXPORT_COLUMNS = (
    "creative_id",
    "campaign",
    "headline",
    "body",
    "cta",
    "landing_url",
    "adapter",
    "approved_by",
    "approved_at",
)
PERFORMANCE_COLUMNS = ("creative_id", "impressions", "clicks")  # and optional "day"
# A day's impressions or clicks, at most: far above any real ad, and low enough that a
# creative's totals over every day fit its 64-bit columns (a larger number was a 500).
MAX_DAILY_COUNT = 10**12


class ReviewError(ValueError):
    """A review action refused: says why."""


def _event(creative: AdCreative, action: str, user, changes=None, note: str = "") -> None:
    CreativeEvent.objects.create(
        creative=creative, action=action, user=user, changes=changes or {}, note=note
    )


@transaction.atomic
def creative_approve(*, creative: AdCreative, user, note: str = "") -> AdCreative:
    creative = AdCreative.objects.select_for_update().get(pk=creative.pk)
    if not creative.checks.get("passed", False):
        raise ReviewError("This creative fails a hard check; edit it before approving.")
    if creative.needs_review and not selectors.can_approve_regulated(user=user):
        raise ReviewError(
            "This creative is in a regulated category: Plaza's ad reviewers approve it."
        )
    before = creative.status
    creative.status = AdCreative.Status.APPROVED
    creative.reviewed_by, creative.reviewed_at = user, timezone.now()
    creative.save(update_fields=["status", "reviewed_by", "reviewed_at", "updated_at"])
    _event(creative, CreativeEvent.Action.APPROVED, user, {"status": [before, "approved"]}, note)
    return creative


@transaction.atomic
def creative_reject(*, creative: AdCreative, user, note: str = "") -> AdCreative:
    creative = AdCreative.objects.select_for_update().get(pk=creative.pk)
    before = creative.status
    creative.status = AdCreative.Status.REJECTED
    creative.reviewed_by, creative.reviewed_at = user, timezone.now()
    creative.save(update_fields=["status", "reviewed_by", "reviewed_at", "updated_at"])
    _event(creative, CreativeEvent.Action.REJECTED, user, {"status": [before, "rejected"]}, note)
    return creative


@transaction.atomic
def creative_edit(
    *, creative: AdCreative, user, headline: str, body: str, cta: str, note: str = ""
) -> AdCreative:
    """New text, checked like a draft; an approved creative that is edited goes back to
    draft (it must be approved again as it now reads)."""
    creative = AdCreative.objects.select_for_update().select_related("campaign").get(pk=creative.pk)
    fields = {"headline": headline, "body": body, "cta": cta}
    report = creative_checks(campaign=creative.campaign, **fields)
    if not report["passed"]:
        failed = [name for name, check in report["checks"].items() if not check["ok"]]
        details = "; ".join(f"{name}: {report['checks'][name]['detail']}" for name in failed)
        raise ReviewError(f"The edit fails {', '.join(failed)} ({details}).")
    changes = {
        name: [getattr(creative, name), value]
        for name, value in fields.items()
        if getattr(creative, name) != value
    }
    if not changes:
        return creative
    for name, value in fields.items():
        setattr(creative, name, value)
    if creative.status == AdCreative.Status.APPROVED:
        changes["status"] = [creative.status, AdCreative.Status.DRAFT]
        creative.status = AdCreative.Status.DRAFT
    creative.checks = report
    creative.needs_review = report["needs_review"]
    creative.save(update_fields=[*fields, "status", "checks", "needs_review", "updated_at"])
    _event(creative, CreativeEvent.Action.EDITED, user, changes, note)
    return creative


def creatives_export_csv(*, campaign: Campaign) -> str:
    """The campaign's approved creatives as CSV text (spreadsheet formula prefixes made
    inert: model text never runs as a formula)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    approved = selectors.campaign_creatives(campaign=campaign, status=AdCreative.Status.APPROVED)
    for creative in approved:
        writer.writerow(
            [
                creative.pk,
                campaign.name,
                _inert(creative.headline),
                _inert(creative.body),
                creative.cta,
                campaign.landing_url,
                creative.adapter_name,
                creative.reviewed_by.get_username() if creative.reviewed_by else "",
                creative.reviewed_at.isoformat() if creative.reviewed_at else "",
            ]
        )
    return out.getvalue()


def _inert(text: str) -> str:
    """A cell a spreadsheet shows as text, never evaluates (OWASP CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- performance -----------------------------------------------------------------------------


@dataclass
class PerformanceReport:
    imported: int = 0
    errors: list[str] = field(default_factory=list)


def _count(value, where: str, name: str, errors: list[str]) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        errors.append(f"{where}: {name}: expected a whole number, got {str(value)[:40]!r}")
        return None
    if number < 0:
        errors.append(f"{where}: {name}: must be >= 0")
        return None
    if number > MAX_DAILY_COUNT and name != "creative_id":
        errors.append(f"{where}: {name}: must be at most {MAX_DAILY_COUNT}")
        return None
    return number


def performance_import(
    *, rows: Iterable[tuple[str, dict]], user, today: date | None = None
) -> PerformanceReport:
    """Rows of (where, {"creative_id", "impressions", "clicks", "day"?}): each good row
    sets that creative's numbers for that day (default today); a bad row is reported by
    where and field and skipped. Only creatives the user may see are touched: another
    advertiser's id reads as unknown."""
    report = PerformanceReport()
    visible = selectors.creatives_visible(user=user)
    today = today or timezone.localdate()
    touched: set[int] = set()
    for where, row in rows:
        errors = report.errors
        before = len(errors)
        creative_id = _count(row.get("creative_id"), where, "creative_id", errors)
        impressions = _count(row.get("impressions"), where, "impressions", errors)
        clicks = _count(row.get("clicks"), where, "clicks", errors)
        day = today
        if row.get("day"):
            try:
                day = date.fromisoformat(str(row["day"]).strip())
            except ValueError:
                errors.append(f"{where}: day: expected YYYY-MM-DD, got {str(row['day'])[:40]!r}")
        if len(errors) > before:
            continue
        if clicks > impressions:
            errors.append(f"{where}: clicks: {clicks} is more than impressions ({impressions})")
            continue
        creative = visible.filter(pk=creative_id).first()
        if creative is None:
            errors.append(f"{where}: creative_id: no creative {creative_id} of yours")
            continue
        CreativePerformance.objects.update_or_create(
            creative=creative,
            day=day,
            defaults={"impressions": impressions, "clicks": clicks, "imported_by": user},
        )
        touched.add(creative.pk)
        report.imported += 1
    for creative_id in touched:
        totals = CreativePerformance.objects.filter(creative_id=creative_id).aggregate(
            impressions=Sum("impressions"), clicks=Sum("clicks")
        )
        AdCreative.objects.filter(pk=creative_id).update(
            impressions=totals["impressions"] or 0, clicks=totals["clicks"] or 0
        )
    return report


def performance_import_csv(*, text: str, name: str, user) -> PerformanceReport:
    """A CSV (columns creative_id, impressions, clicks, optional day) read as
    performance_import rows; errors name `name:line: field`."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in PERFORMANCE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        found = ", ".join(reader.fieldnames or []) or "nothing"
        return PerformanceReport(
            errors=[f"{name}:1: missing column(s) {', '.join(missing)} (found {found})"]
        )
    rows = ((f"{name}:{reader.line_num}", row) for row in reader)
    return performance_import(rows=rows, user=user)
