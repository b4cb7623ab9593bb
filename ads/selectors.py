"""Reads for ads, always through the asking user: staff see everything; a member of an
advertiser sees that advertiser's data and shared (global, industry) adapters, never
another advertiser's."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.urls import reverse

from ads.datasets import CreativeRecord
from ads.models import (
    Adapter,
    AdCreative,
    Advertiser,
    Campaign,
    DraftJob,
    Membership,
    TrainingRun,
)
from ops.registry import JobRow, JobsReport


def _member_filter(user, field: str = "advertiser") -> Q:
    """Rows of the user's advertisers, and shared rows (no advertiser)."""
    return Q(**{f"{field}__members": user}) | Q(**{f"{field}__isnull": True})


def adapters_visible(*, user) -> QuerySet[Adapter]:
    adapters = Adapter.objects.select_related("advertiser")
    if user.is_staff:
        return adapters
    return adapters.filter(_member_filter(user)).distinct()


def training_runs_visible(*, user) -> QuerySet[TrainingRun]:
    """Staff: all runs; members: their advertisers' runs only (shared adapters are
    trained by staff, and their runs are operations data)."""
    runs = TrainingRun.objects.select_related("advertiser", "adapter")
    if user.is_staff:
        return runs
    return runs.filter(advertiser__members=user).distinct()


def training_run_for(*, user, run_id: int) -> TrainingRun:
    """The run, or 404 (not 403) when it is not the user's to see: ids tell nothing."""
    run = training_runs_visible(user=user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such training run.")
    return run


def can_train(*, user) -> bool:
    return user.has_perm("ads.add_trainingrun")


# --- campaigns, draft jobs, creatives ------------------------------------------------------


def advertisers_of(*, user) -> QuerySet[Advertiser]:
    """The advertisers the user acts for: staff, all of them."""
    if user.is_staff:
        return Advertiser.objects.all()
    return Advertiser.objects.filter(members=user)


def advertisers_administered(*, user) -> QuerySet[Advertiser]:
    """The advertisers the user may invite members into: those where the user is an
    admin; staff, all of them."""
    if user.is_staff:
        return Advertiser.objects.all()
    return Advertiser.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.ADMIN
    ).distinct()


def can_invite(*, user, advertiser: Advertiser) -> bool:
    return advertisers_administered(user=user).filter(pk=advertiser.pk).exists()


def memberships_of(*, advertisers: QuerySet[Advertiser]) -> QuerySet[Membership]:
    return Membership.objects.filter(advertiser__in=advertisers).select_related(
        "advertiser", "user"
    )


def studio_landing_for(*, user) -> str | None:
    """accounts.landing: a member of an advertiser (staff or not) lands on the studio."""
    if Membership.objects.filter(user=user).exists():
        return reverse("ads:studio")
    return None


def campaigns_visible(*, user) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("advertiser")
    if user.is_staff:
        return campaigns
    return campaigns.filter(advertiser__members=user).distinct()


def campaign_for(*, user, campaign_id: int) -> Campaign:
    """The campaign, or 404 when it is not the user's: another advertiser's ids tell
    nothing."""
    campaign = campaigns_visible(user=user).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def draft_jobs_visible(*, user) -> QuerySet[DraftJob]:
    jobs = DraftJob.objects.select_related("campaign__advertiser", "adapter")
    if user.is_staff:
        return jobs
    return jobs.filter(campaign__advertiser__members=user).distinct()


def draft_job_for(*, user, job_id: int) -> DraftJob:
    job = draft_jobs_visible(user=user).filter(pk=job_id).first()
    if job is None:
        raise Http404("No such draft job.")
    return job


def creatives_visible(*, user) -> QuerySet[AdCreative]:
    creatives = AdCreative.objects.select_related("campaign__advertiser", "reviewed_by")
    if user.is_staff:
        return creatives
    return creatives.filter(campaign__advertiser__members=user).distinct()


def creative_for(*, user, creative_id: int) -> AdCreative:
    creative = creatives_visible(user=user).filter(pk=creative_id).first()
    if creative is None:
        raise Http404("No such creative.")
    return creative


def campaign_draft_jobs(*, campaign: Campaign, limit: int = 20) -> list[DraftJob]:
    """The campaign's newest draft jobs, with their adapters."""
    return list(campaign.draft_jobs.select_related("adapter")[:limit])


def campaign_creatives(*, campaign: Campaign, status: str | None = None) -> QuerySet[AdCreative]:
    creatives = campaign.creatives.select_related("reviewed_by", "adapter").order_by(
        "-job_id", "rank", "pk"
    )
    return creatives.filter(status=status) if status else creatives


def approved_creative_records(*, advertiser: Advertiser | None) -> list[CreativeRecord]:
    """Approved creatives (the advertiser's, or everyone's) as training records: the
    brief they were written for, the headline and post, its industry and performance."""
    approved = AdCreative.objects.filter(status=AdCreative.Status.APPROVED).select_related(
        "campaign__advertiser"
    )
    if advertiser is not None:
        approved = approved.filter(campaign__advertiser=advertiser)
    return [
        CreativeRecord(
            desc=c.campaign.description,
            headline=c.headline,
            industry=c.campaign.advertiser.industry,
            impressions=c.impressions,
            clicks=c.clicks,
            body=c.body,
            product=c.campaign.product,
            keywords=tuple(k for k in c.campaign.keywords or () if isinstance(k, str)),
            language=c.campaign.language,
        )
        for c in approved
    ]


def adapter_for_campaign(*, campaign: Campaign) -> Adapter | None:
    """The adapter a campaign drafts with: its advertiser's active adapter, else its
    industry's, else the global one, else none (the base model alone)."""
    active = Adapter.objects.filter(status=Adapter.Status.ACTIVE)
    advertiser = campaign.advertiser
    found = active.filter(scope=Adapter.Scope.ADVERTISER, advertiser=advertiser).first()
    if found is None and advertiser.industry:
        found = active.filter(scope=Adapter.Scope.INDUSTRY, industry=advertiser.industry).first()
    if found is None:
        found = active.filter(scope=Adapter.Scope.GLOBAL).first()
    return found


def can_approve_regulated(*, user) -> bool:
    """Creatives in a regulated category wait for Plaza's ad reviewers, not only the
    advertiser's own."""
    return user.has_perm("ads.approve_regulated")


# --- for ops: read through ops.registry (AdsConfig.ready()); ops imports nothing of ads ----


def draft_jobs_report(*, failed_since: datetime, limit: int) -> JobsReport:
    """Draft jobs for the ops page: rows by status, the open ones (oldest first) and those
    failed since `failed_since` (newest first), `limit` of each."""
    jobs = DraftJob.objects.select_related("campaign__advertiser")
    return JobsReport(
        counts=_status_counts(DraftJob),
        running=[_draft_job_row(job) for job in _open(jobs, DraftJob)[:limit]],
        failed=[_draft_job_row(job) for job in _failed(jobs, DraftJob, failed_since)[:limit]],
    )


def training_runs_report(*, failed_since: datetime, limit: int) -> JobsReport:
    """Training runs for the ops page, as draft_jobs_report."""
    runs = TrainingRun.objects.defer("loss_history", "results", "parameters")
    return JobsReport(
        counts=_status_counts(TrainingRun),
        running=[_training_run_row(run) for run in _open(runs, TrainingRun)[:limit]],
        failed=[_training_run_row(run) for run in _failed(runs, TrainingRun, failed_since)[:limit]],
    )


def _status_counts(model) -> dict[str, int]:
    counts = dict.fromkeys(model.Status.values, 0)
    counts.update(model.objects.order_by().values_list("status").annotate(n=Count("id")))
    return counts


def _open(rows: QuerySet, model) -> QuerySet:
    return rows.filter(status__in=[model.Status.QUEUED, model.Status.RUNNING]).order_by(
        "created_at"
    )


def _failed(rows: QuerySet, model, since: datetime) -> QuerySet:
    return rows.filter(status=model.Status.FAILED, updated_at__gte=since).order_by("-updated_at")


def _draft_job_row(job: DraftJob) -> JobRow:
    campaign = job.campaign
    return JobRow(
        id=str(job.pk),
        status=job.status,
        title=f"{campaign.name} ({campaign.advertiser.name}): {job.kept}/{job.n} drafts",
        created_at=job.created_at,
        updated_at=job.updated_at,
        error=job.error,
        progress=min(1.0, job.kept / job.n) if job.n else None,
        admin_url=reverse("admin:ads_draftjob_change", args=[job.pk]),
    )


def _training_run_row(run: TrainingRun) -> JobRow:
    return JobRow(
        id=str(run.pk),
        status=run.status,
        title=f"{run.adapter_name}: step {run.step}/{run.steps}",
        created_at=run.created_at,
        updated_at=run.updated_at,
        error=run.error,
        progress=run.progress,
        admin_url=reverse("admin:ads_trainingrun_change", args=[run.pk]),
    )
