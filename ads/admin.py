from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from ads import briefs
from ads.models import (
    Adapter,
    AdCreative,
    Advertiser,
    Campaign,
    CreativeEvent,
    CreativePerformance,
    DraftJob,
    Membership,
    TrainingRun,
)
from ads.services import drafting, review, training


class MembershipInline(admin.TabularInline):
    """Staff add an existing account to an advertiser here, as a member or its admin."""

    model = Membership
    autocomplete_fields = ["user"]
    extra = 1


@admin.register(Advertiser)
class AdvertiserAdmin(admin.ModelAdmin):
    list_display = ["name", "industry", "created_at"]
    search_fields = ["name", "industry"]
    inlines = [MembershipInline]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "advertiser", "product", "language", "category", "created_at"]
    list_filter = ["language", "category", "advertiser"]
    search_fields = ["name", "product", "description", "own_headline", "advertiser__name"]
    autocomplete_fields = ["advertiser"]
    readonly_fields = ["created_by", "created_at", "updated_at"]


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status",
        "scope",
        "industry",
        "advertiser",
        "base_model",
        "tasks",
        "eval_loss",
        "base_eval_loss",
        "dataset_size",
        "size_bytes",
        "created_at",
    ]
    list_filter = ["status", "scope", "base_model"]
    search_fields = ["name", "industry", "advertiser__name"]
    readonly_fields = [
        "dataset_hash",
        "dataset_size",
        "metrics",
        "tasks",  # what its training run wrote; drafting reads it
        "path",
        "size_bytes",
        "created_at",
        "promoted_at",
    ]
    actions = ["promote", "retire"]

    @admin.display(description="eval loss")
    def eval_loss(self, adapter: Adapter):
        return _rounded(adapter.metrics.get("eval_loss"))

    @admin.display(description="base eval loss")
    def base_eval_loss(self, adapter: Adapter):
        return _rounded(adapter.metrics.get("base_eval_loss"))

    @admin.action(description="Promote to active (retires the scope's current one)")
    def promote(self, request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
        for adapter in queryset:
            training.adapter_promote(adapter=adapter)
        self.message_user(request, f"{queryset.count()} adapter(s) promoted.")

    @admin.action(description="Retire")
    def retire(self, request: HttpRequest, queryset: QuerySet[Adapter]) -> None:
        for adapter in queryset:
            training.adapter_retire(adapter=adapter)
        self.message_user(request, f"{queryset.count()} adapter(s) retired.")


def _rounded(value):
    return "—" if value is None else f"{value:.3f}"


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "adapter_name",
        "status",
        "progress_shown",
        "last_loss",
        "base_model",
        "dataset",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "base_model"]
    search_fields = ["adapter_name", "dataset"]
    readonly_fields = [
        "status",
        "step",
        "loss_history",
        "checkpoint_step",
        "resumed_from_step",
        "attempts",
        "results",
        "dataset_hash",
        "train_examples",
        "eval_examples",
        "cancel_requested",
        "error",
        "adapter",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "page_link",
    ]
    actions = ["start_again", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from the adapters page, the command or "start again"

    @admin.display(description="progress")
    def progress_shown(self, run: TrainingRun) -> str:
        return f"{run.step}/{run.steps}"

    @admin.display(description="loss")
    def last_loss(self, run: TrainingRun):
        return _rounded(run.loss_history[-1][1] if run.loss_history else None)

    @admin.display(description="live progress")
    def page_link(self, run: TrainingRun) -> str:
        url = reverse("ads:training-run", args=[run.pk])
        return format_html('<a href="{}">progress and loss chart</a>', url)

    @admin.action(description="Start again (a new run with the same settings)")
    def start_again(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        for run in queryset:
            taken = TrainingRun.objects.filter(adapter_name__startswith=run.adapter_name).count()
            name = f"{run.adapter_name}-r{taken + 1}"
            try:
                training.training_run_create(
                    adapter_name=name,
                    dataset=run.dataset,
                    steps=run.steps,
                    base_model=run.base_model,
                    scope=run.scope,
                    industry=run.industry,
                    advertiser=run.advertiser,
                    parent=run.parent,
                    parameters=run.parameters,
                    user=request.user,
                )
            except training.TrainingError as exc:
                self.message_user(request, f"{run.adapter_name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{name}: queued.")

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        for run in queryset:
            training.training_run_cancel(run=run)
        self.message_user(request, f"{queryset.count()} run(s) cancelled or stopping.")


class CreativeEventInline(admin.TabularInline):
    model = CreativeEvent
    extra = 0
    can_delete = False
    readonly_fields = ["action", "user", "changes", "note", "at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class CreativePerformanceInline(admin.TabularInline):
    model = CreativePerformance
    extra = 0
    readonly_fields = ["imported_by", "imported_at"]


@admin.register(AdCreative)
class AdCreativeAdmin(admin.ModelAdmin):
    list_display = [
        "headline",
        "campaign",
        "status",
        "needs_review",
        "passed",
        "rank",
        "adapter_name",
        "impressions",
        "clicks",
        "created_at",
    ]
    list_filter = ["status", "needs_review", "campaign__advertiser", "adapter_name"]
    search_fields = ["headline", "body", "campaign__name", "campaign__advertiser__name"]
    list_select_related = ["campaign__advertiser"]
    # Text changes go through the studio's edit (checked and audited), not a raw form.
    readonly_fields = [
        f.name for f in AdCreative._meta.get_fields() if f.concrete and f.name != "id"
    ]
    inlines = [CreativeEventInline, CreativePerformanceInline]
    actions = ["approve", "reject"]

    @admin.display(boolean=True, description="checks passed")
    def passed(self, creative: AdCreative) -> bool:
        return bool(creative.checks.get("passed"))

    @admin.action(description="Approve the selected creatives")
    def approve(self, request: HttpRequest, queryset: QuerySet[AdCreative]) -> None:
        done = 0
        for creative in queryset:
            try:
                review.creative_approve(creative=creative, user=request.user)
                done += 1
            except review.ReviewError as exc:
                self.message_user(request, f"{creative.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"Approved {done} creative(s).")

    @admin.action(description="Reject the selected creatives")
    def reject(self, request: HttpRequest, queryset: QuerySet[AdCreative]) -> None:
        for creative in queryset:
            review.creative_reject(creative=creative, user=request.user)
        self.message_user(request, f"Rejected {queryset.count()} creative(s).")


@admin.register(DraftJob)
class DraftJobAdmin(admin.ModelAdmin):
    list_display = ["pk", "campaign", "status", "n", "kept", "generated", "adapter", "created_at"]
    list_filter = ["status", "backend"]
    search_fields = ["campaign__name", "campaign__advertiser__name"]
    list_select_related = ["campaign__advertiser", "adapter"]
    readonly_fields = [f.name for f in DraftJob._meta.get_fields() if f.concrete and f.name != "id"]
    actions = ["cancel", "draft_again"]

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[DraftJob]) -> None:
        for job in queryset:
            drafting.draft_job_cancel(job=job)
        self.message_user(request, f"Cancelling {queryset.count()} job(s).")

    @admin.action(description="Draft again (a new job with the same size)")
    def draft_again(self, request: HttpRequest, queryset: QuerySet[DraftJob]) -> None:
        for job in queryset.select_related("campaign__advertiser"):
            try:
                drafting.draft_job_create(campaign=job.campaign, user=request.user, n=job.n)
            except (briefs.DraftBlocked, briefs.BriefError) as exc:
                self.message_user(request, f"{job.pk}: {exc}", messages.WARNING)
