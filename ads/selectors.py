"""Reads for ads, always through the asking user: staff see everything; a member of an
advertiser sees that advertiser's data and shared (global, industry) adapters, never
another advertiser's."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from ads.models import Adapter, TrainingRun


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
