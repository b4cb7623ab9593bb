from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ads import briefs, members, selectors
from ads.creative.text import body_length, text_length
from ads.forms import (
    CampaignForm,
    CreativeEditForm,
    DraftForm,
    MemberInviteForm,
    PerformanceForm,
    TrainingRunForm,
)
from ads.models import Adapter
from ads.services import campaigns, drafting, review, training


@login_required
@require_http_methods(["GET", "POST"])
def adapters(request: HttpRequest) -> HttpResponse:
    """The adapters the user may see, recent training runs, and (with permission) a form
    to start one."""
    can_train = selectors.can_train(user=request.user)
    form = TrainingRunForm(user=request.user) if can_train else None
    if request.method == "POST":
        if not can_train:
            raise PermissionDenied("Starting a run needs the ads.add_trainingrun permission.")
        form = TrainingRunForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            advertiser = data["advertiser"]
            try:
                run = training.training_run_create(
                    adapter_name=data["name"],
                    dataset=form.dataset_source(),
                    steps=data["steps"],
                    scope=Adapter.Scope.ADVERTISER if advertiser else Adapter.Scope.GLOBAL,
                    advertiser=advertiser,
                    parameters={"learning_rate": data["learning_rate"], "r": data["rank"]},
                    user=request.user,
                )
            except training.TrainingError as exc:
                field, _, message = str(exc).partition(": ")
                form.add_error(field if field in form.fields else None, message or str(exc))
            else:
                return redirect("ads:training-run", run.pk)
    context = {
        "adapters": selectors.adapters_visible(user=request.user)[:100],
        "runs": selectors.training_runs_visible(user=request.user)[:50],
        "form": form,
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "ads/adapters.html", context, status=status)


@login_required
@require_GET
def training_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run: a progress bar and a loss chart that follow it live."""
    run = selectors.training_run_for(user=request.user, run_id=run_id)
    return render(request, "ads/training_run.html", {"run": run})


@login_required
@require_GET
def training_run_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    run = selectors.training_run_for(user=request.user, run_id=run_id)
    return JsonResponse(
        {
            "status": run.status,
            "step": run.step,
            "steps": run.steps,
            "checkpoint_step": run.checkpoint_step,
            "loss_history": run.loss_history,
            "eval_history": run.results.get("eval_history", []),
            "tokens_per_s": run.results.get("tokens_per_s"),
            "eval_loss": run.results.get("eval_loss"),
            "base_eval_loss": run.results.get("base_eval_loss"),
            "error": run.error,
            "finished": run.finished,
            "adapter": run.adapter.name if run.adapter else None,
        }
    )


@login_required
@require_POST
def training_run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.training_run_for(user=request.user, run_id=run_id)
    if not selectors.can_train(user=request.user):
        raise PermissionDenied("Cancelling a run needs the ads.add_trainingrun permission.")
    training.training_run_cancel(run=run)
    messages.info(request, "Cancelling: the run stops at its next step.")
    return redirect("ads:training-run", run.pk)


# --- the ads studio: campaigns, drafting, review ---------------------------------------------


def _creative_rows(creatives) -> list[dict]:
    return [
        {
            "creative": c,
            "headline_chars": text_length(c.headline),
            "body_chars": body_length(c.body),
            "failed": (c.checks or {}).get("failed", []),
            # Faithfulness to the brief: a draft passes them all; a person's edit may not.
            "unfaithful": [
                check.get("detail", name)
                for name, check in ((c.checks or {}).get("faithfulness") or {}).items()
                if isinstance(check, dict) and not check.get("ok", True)
            ],
        }
        for c in creatives
    ]


def _studio_page(
    request: HttpRequest, *, form: CampaignForm | None, invite_form: MemberInviteForm | None
) -> HttpResponse:
    administered = selectors.advertisers_administered(user=request.user)
    if invite_form is None and administered.exists():
        invite_form = MemberInviteForm(user=request.user)
    context = {
        "campaigns": selectors.campaigns_visible(user=request.user)[:200],
        "form": form,
        "invite_form": invite_form,
        "memberships": selectors.memberships_of(advertisers=administered)[:200]
        if invite_form is not None
        else [],
    }
    failed = any(f is not None and f.errors for f in (form, invite_form))
    return render(request, "ads/studio.html", context, status=400 if failed else 200)


@login_required
@require_http_methods(["GET", "POST"])
def studio(request: HttpRequest) -> HttpResponse:
    """The user's campaigns and a form for a new one; for an advertiser's admin, its
    members and a form to invite one."""
    advertisers = selectors.advertisers_of(user=request.user)
    form = CampaignForm(user=request.user) if advertisers.exists() else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied("You are not a member of any advertiser.")
        form = CampaignForm(request.POST, user=request.user)
        if form.is_valid():
            created = campaigns.campaign_create(**form.cleaned_data, created_by=request.user)
            return redirect("ads:campaign", created.pk)
    return _studio_page(request, form=form, invite_form=None)


@login_required
@require_POST
def member_invite(request: HttpRequest) -> HttpResponse:
    """An advertiser's admin invites a member: the page with the invitation link to send
    them, or the studio with the form's errors."""
    if not selectors.advertisers_administered(user=request.user).exists():
        raise PermissionDenied("Inviting members needs an advertiser's admin role.")
    invite_form = MemberInviteForm(request.POST, user=request.user)
    if invite_form.is_valid():
        data = invite_form.cleaned_data
        try:
            invitation = members.member_invite(
                advertiser=data["advertiser"],
                inviter=request.user,
                username=data["username"],
                email=data["email"],
                role=data["role"],
            )
        except members.MemberError as exc:
            field, _, message = str(exc).partition(": ")
            invite_form.add_error(field if field in invite_form.fields else None, message)
        else:
            link = request.build_absolute_uri(
                reverse("accounts:invitation", args=[invitation.token])
            )
            context = {
                "invitation": invitation,
                "advertiser": data["advertiser"],
                "link": link,
                "days": settings.PLAZA_INVITATION_DAYS,
            }
            return render(request, "ads/invitation_sent.html", context)
    campaign_form = (
        CampaignForm(user=request.user)
        if selectors.advertisers_of(user=request.user).exists()
        else None
    )
    return _studio_page(request, form=campaign_form, invite_form=invite_form)


@login_required
@require_http_methods(["GET", "POST"])
def campaign(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A campaign: its brief, a form to draft, the jobs and the creatives to review."""
    found = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
    draft_form = DraftForm()
    status = 200
    if request.method == "POST":
        draft_form = DraftForm(request.POST)
        if draft_form.is_valid():
            try:
                drafting.draft_job_create(
                    campaign=found, user=request.user, n=draft_form.cleaned_data["n"]
                )
            except (briefs.DraftBlocked, briefs.BriefError) as exc:
                messages.error(request, str(exc))
                status = 400
            else:
                messages.info(request, "Drafting: the drafts appear below when the job is done.")
                return redirect("ads:campaign", found.pk)
        else:
            status = 400
    context = {
        "campaign": found,
        "decision": briefs.campaign_decision(found),
        "jobs": selectors.campaign_draft_jobs(campaign=found, limit=20),
        "rows": _creative_rows(selectors.campaign_creatives(campaign=found)[:300]),
        "draft_form": draft_form,
        "performance_form": PerformanceForm(),
        "ctas": briefs.limits().allowed_ctas,
        "adapter": selectors.adapter_for_campaign(campaign=found),
    }
    return render(request, "ads/campaign.html", context, status=status)


@login_required
@require_GET
def draft_job_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    job = selectors.draft_job_for(user=request.user, job_id=job_id)
    return JsonResponse(
        {
            "status": job.status,
            "n": job.n,
            "generated": job.generated,
            "kept": job.kept,
            "error": job.error,
            "finished": job.finished,
            "dropped": job.results.get("dropped", {}),
        }
    )


@login_required
@require_POST
def creative_review(request: HttpRequest, creative_id: int, action: str) -> HttpResponse:
    """Approve, reject or edit one creative (POST), then back to its campaign."""
    if action not in ("approve", "reject", "edit"):
        raise Http404("No such action.")
    creative = selectors.creative_for(user=request.user, creative_id=creative_id)
    note = request.POST.get("note", "")[:500]
    try:
        if action == "approve":
            review.creative_approve(creative=creative, user=request.user, note=note)
            messages.info(request, "Approved.")
        elif action == "reject":
            review.creative_reject(creative=creative, user=request.user, note=note)
            messages.info(request, "Rejected.")
        else:
            form = CreativeEditForm(request.POST, ctas=briefs.limits().allowed_ctas)
            if not form.is_valid():
                problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
                raise review.ReviewError(problems)
            data = form.cleaned_data
            review.creative_edit(
                creative=creative,
                user=request.user,
                headline=data["headline"],
                body=data["body"],
                cta=data["cta"],
                note=data["note"],
            )
            messages.info(request, "Saved.")
    except review.ReviewError as exc:
        messages.error(request, f"Creative {creative.pk}: {exc}")
    return redirect(
        f"{reverse('ads:campaign', args=[creative.campaign_id])}#creative-{creative.pk}"
    )


@login_required
@require_GET
def campaign_export(request: HttpRequest, campaign_id: int) -> HttpResponse:
    found = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
    response = HttpResponse(
        review.creatives_export_csv(campaign=found), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{found.pk}-approved.csv"'
    return response


@login_required
@require_POST
def performance_upload(request: HttpRequest, campaign_id: int) -> HttpResponse:
    found = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
    form = PerformanceForm(request.POST, request.FILES)
    if form.is_valid():
        name, text = form.cleaned_data["file"]
        report = review.performance_import_csv(text=text, name=name, user=request.user)
        messages.info(request, f"Imported {report.imported} row(s).")
        for error in report.errors[:20]:
            messages.error(request, error)
    else:
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
    return redirect("ads:campaign", found.pk)
