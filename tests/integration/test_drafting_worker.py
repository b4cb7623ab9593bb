"""Drafting on a real Celery worker (gpu queue) with the real default ad model: a job asked
for through the API is run by the worker, which saves draft creatives that pass the hard
checks, and the job's progress is readable while and after it runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ads.models import AdCreative, Campaign, DraftJob
from ads.services import drafting
from tests.integration.workers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_draft_job_runs_on_the_worker(configured_worker, advertisers):
    """POST /api/ads/campaigns/{id}/drafts → on commit → the gpu queue → drafts saved."""
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Boots",
        product="Trailhead boots",
        description="Waterproof leather hiking boots with a grippy sole for muddy trails",
        objective="sales",
    )
    client = Client()
    client.force_login(advertisers["alice"])
    response = client.post(f"/api/ads/campaigns/{campaign.pk}/drafts", {"n": 3})
    assert response.status_code == 202
    job_id = response.json()["id"]
    wait_for(lambda: DraftJob.objects.get(pk=job_id).finished, 300, configured_worker)
    job = DraftJob.objects.get(pk=job_id)
    assert job.status == "succeeded", job.error
    assert job.backend and job.base_model and job.attempts == 1
    creatives = AdCreative.objects.filter(job=job)
    assert 1 <= creatives.count() <= 3
    assert all(c.status == "draft" and c.checks["passed"] for c in creatives)
    progress = client.get(f"/ads/jobs/{job_id}/progress").json()
    assert progress["finished"] and progress["kept"] == creatives.count()


def test_a_worker_killed_mid_draft_leaves_the_job_failed(pausing_worker, advertisers):
    """SIGKILL while the job drafts: once it is silent for STALE_AFTER, the sweep marks it
    failed, so the studio never shows it running for ever. (The job pauses after its first
    progress write, so the kill always lands while it runs.)"""
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Lamps",
        product="Glowline desk lamp",
        description="A dimmable LED desk lamp with a warm light and a USB charging port",
        objective="sales",
    )
    job = drafting.draft_job_create(campaign=campaign, user=advertisers["alice"], n=30)
    pausing_worker.wait_for_pause(300)
    pausing_worker.kill()
    job.refresh_from_db()
    assert job.status == "running"
    assert drafting.draft_jobs_fail_stale() == 0  # it wrote a moment ago
    # The worker is gone: time passes with no writes (simulated), then the sweep runs.
    DraftJob.objects.filter(pk=job.pk).update(
        updated_at=timezone.now() - drafting.STALE_AFTER - timedelta(seconds=1)
    )
    assert drafting.draft_jobs_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "worker stopped" in job.error
    assert not job.creatives.exists()
