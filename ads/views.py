from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ads import selectors, services
from ads.forms import TrainingRunForm
from ads.models import Adapter


@login_required
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
                run = services.training_run_create(
                    adapter_name=data["name"],
                    dataset=form.dataset_source(),
                    steps=data["steps"],
                    scope=Adapter.Scope.ADVERTISER if advertiser else Adapter.Scope.GLOBAL,
                    advertiser=advertiser,
                    parameters={"learning_rate": data["learning_rate"], "r": data["rank"]},
                    user=request.user,
                )
            except services.TrainingError as exc:
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
def training_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run: a progress bar and a loss chart that follow it live."""
    run = selectors.training_run_for(user=request.user, run_id=run_id)
    return render(request, "ads/training_run.html", {"run": run})


@login_required
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
    services.training_run_cancel(run=run)
    messages.info(request, "Cancelling: the run stops at its next step.")
    return redirect("ads:training-run", run.pk)
