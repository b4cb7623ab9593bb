"""python manage.py draft_creatives (--campaign ID | --brief FILE.json) [--n 10] [--json]

Drafts ad creatives with the drafting pipeline the gpu worker runs
(ads.services.drafting), in this process. --campaign drafts for a saved campaign with
its adapter (the advertiser's active adapter, else its industry's, else the global one,
else the base model alone) and saves the drafts as a job's `draft` creatives. --brief
reads one JSON object with the brief's fields (product, description, audience, tone,
language, objective, keywords, landing_url, banned_terms, category; all but description
optional), drafts with the global adapter (or the base model) and saves nothing.

Each draft is printed with its character counts and checks; with --json the last line is
a list of {"headline", "body", "cta", "status", "checks"}. A brief in a blocked regulated
category is refused before any model runs: the reason on stderr, exit status 3.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ads import briefs
from ads.creative.text import body_length, text_length
from ads.models import Adapter, AdCreative, Campaign
from ads.services import drafting
from ops.commands import require_migrated

EXIT_BLOCKED = 3


class Command(BaseCommand):
    help = "Draft ad creatives for a campaign or a brief file."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--campaign", type=int, metavar="ID")
        source.add_argument("--brief", type=Path, metavar="FILE.json")
        parser.add_argument("--n", type=int, default=10, help="Drafts wanted (1-50).")
        parser.add_argument("--seed", type=int, default=0, help="Fixes the sampled drafts.")
        parser.add_argument("--json", action="store_true", help="End with one JSON line.")

    def handle(self, *args, **options) -> None:
        require_migrated()
        n = options["n"]
        if not 1 <= n <= drafting.MAX_DRAFTS:
            raise CommandError(f"--n {n}: expected 1 to {drafting.MAX_DRAFTS}")
        try:
            if options["campaign"] is not None:
                drafts = self._campaign(options["campaign"], n, options["seed"])
            else:
                drafts = self._brief(options["brief"], n, options["seed"])
        except briefs.DraftBlocked as exc:
            self.stderr.write(f"Refused: {exc}")
            sys.exit(EXIT_BLOCKED)
        except briefs.BriefError as exc:
            where = options["brief"] or f"campaign {options['campaign']}"
            raise CommandError(f"{where}: {exc}") from None
        for number, draft in enumerate(drafts, start=1):
            checks = draft["checks"]
            review = " · needs extra review" if checks["needs_review"] else ""
            self.stdout.write(
                f"{number}. {draft['headline']}  ({text_length(draft['headline'])} chars)\n"
                f"   {draft['body']}  ({body_length(draft['body'])} chars)\n"
                f"   [{draft['cta']}] · checks {'passed' if checks['passed'] else 'FAILED'}"
                f"{review}"
            )
        if not drafts:
            self.stderr.write("No candidate passed the checks; nothing drafted.")
        if options["json"]:
            self.stdout.write(json.dumps(drafts, ensure_ascii=False))

    def _campaign(self, campaign_id: int, n: int, seed: int) -> list[dict]:
        campaign = Campaign.objects.select_related("advertiser").filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(f"--campaign {campaign_id}: no such campaign")
        job = drafting.draft_job_create(campaign=campaign, n=n, seed=seed, enqueue=False)
        self.stderr.write(f"campaign {campaign.name!r}: draft job {job.pk}")
        job = drafting.draft_job_execute(job_id=job.pk)
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(f"draft job {job.pk} {job.status}: {job.error}")
        creatives = AdCreative.objects.filter(job=job).order_by("rank")
        return [_row(c.headline, c.body, c.cta, c.status, c.checks) for c in creatives]

    def _brief(self, path: Path, n: int, seed: int) -> list[dict]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"--brief {path}: no such file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"--brief {path}: not a UTF-8 JSON file ({exc})") from None
        brief = briefs.Brief.from_mapping(data)
        adapter = Adapter.objects.filter(
            status=Adapter.Status.ACTIVE, scope=Adapter.Scope.GLOBAL
        ).first()
        self.stderr.write(f"drafting with {adapter.name if adapter else 'the base model alone'}")
        outcome = drafting.draft_creatives(brief=brief, n=n, adapter=adapter, seed=seed)
        return [_row(d.headline, d.body, d.cta, d.status, d.checks) for d in outcome.drafts]


def _row(headline: str, body: str, cta: str, status: str, checks: dict) -> dict:
    return {"headline": headline, "body": body, "cta": cta, "status": status, "checks": checks}
