"""Admin for the search index: generations (with the ops figures and the index actions)
and the queue of changes waiting for the index (read-only)."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join

from search import selectors
from search.models import Answer, AnswerFeedback, IndexGeneration, IndexQueueEntry
from search.services.generations import generation_delete
from search.tasks.index import generation_build as generation_build_task
from search.tasks.index import index_compact as index_compact_task
from search.tasks.index import reconcile as reconcile_task

# The figures the change page shows, in order: (label, key in index_figures()); those the
# search backend does not report are left out (segments are faiss's, partitions postgres's).
INDEX_FIGURES = [
    ("Search backend", "backend"),
    ("Vectors", "vectors"),
    ("Sealed segments", "sealed_segments"),
    ("Active vectors (unsealed)", "active_vectors"),
    ("Tombstones", "tombstones"),
    ("Time partitions", "partitions"),
    ("Table size (bytes)", "table_bytes"),
    ("BM25 documents", "bm25_docs"),
    ("BM25 built at", "bm25_built_at"),
    ("Embedding model", "embed_model"),
    ("Configured model", "configured_model"),
    ("Last reconcile", "reconciled_at"),
]
# Generations search reads or a build writes: never deleted by hand.
IN_USE = [IndexGeneration.State.LIVE, IndexGeneration.State.BUILDING]
# Actions that act on the index as a whole: they run without a selection too.
INDEX_ACTIONS = {"reconcile_now", "build_generation", "compact"}


def _table(rows: list[tuple[str, object]]) -> str:
    return format_html(
        '<table class="index-figures">{}</table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )


def _shown(value: object) -> object:
    if isinstance(value, datetime):
        return localize(timezone.localtime(value))
    return "—" if value is None or value == "" else value


@admin.register(IndexGeneration)
class IndexGenerationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "state",
        "backend",
        "embed_model",
        "progress",
        "last_flush_at",
        "last_flush_posts",
        "lag",
        "activated_at",
    ]
    list_filter = ["state", "backend"]
    search_fields = ["name", "embed_model"]
    readonly_fields = [
        "name",
        "state",
        "backend",
        "embed_model",
        "dim",
        "created_at",
        "activated_at",
        "posts_total",
        "posts_done",
        "chunks_total",
        "chunks_done",
        "error",
        "last_flush_at",
        "last_flush_posts",
        "last_flush_ms",
        "last_flush_lag_s",
        "flushed_posts",
        "bm25_built_at",
        "bm25_build_ms",
        "reconciled_at",
        "reconcile_report",
        "index_figures",
        "reconcile_summary",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "state",
                    "backend",
                    "embed_model",
                    "dim",
                    "created_at",
                    "activated_at",
                ]
            },
        ),
        (
            "Build",
            {"fields": ["posts_done", "posts_total", "chunks_done", "chunks_total", "error"]},
        ),
        ("Index now", {"fields": ["index_figures", "reconcile_summary"]}),
        (
            "Live sync",
            {
                "fields": [
                    "last_flush_at",
                    "last_flush_posts",
                    "last_flush_ms",
                    "last_flush_lag_s",
                    "flushed_posts",
                    "bm25_built_at",
                    "bm25_build_ms",
                ]
            },
        ),
    ]
    actions = ["reconcile_now", "build_generation", "compact"]
    show_full_result_count = False  # keeps the actions on the page with no generation yet

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # generations are built by generation_build, never by hand

    def has_change_permission(
        self, request: HttpRequest, obj: IndexGeneration | None = None
    ) -> bool:
        return False  # every field is written by the index services: the page is a view

    def has_index_permission(self, request: HttpRequest) -> bool:
        """Who may run the index actions: those allowed to change generations."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def has_delete_permission(
        self, request: HttpRequest, obj: IndexGeneration | None = None
    ) -> bool:
        if obj is not None and obj.state in IN_USE:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[IndexGeneration]) -> None:
        # The bulk delete's confirmation refuses in-use rows already; this keeps them anyway.
        generation_delete(generations=queryset.exclude(state__in=IN_USE))

    def delete_model(self, request: HttpRequest, obj: IndexGeneration) -> None:
        generation_delete(generations=[obj])

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # Index-wide actions need no selection (and work before any generation exists):
        # select every row for them, the actions ignore the selection anyway.
        if (
            request.method == "POST"
            and request.POST.get("action") in INDEX_ACTIONS
            and not request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        ):
            data = request.POST.copy()
            data["select_across"] = "1"
            data.setlist(admin.helpers.ACTION_CHECKBOX_NAME, ["0"])
            request.POST = data
        return super().changelist_view(request, extra_context)

    @admin.display(description="posts done")
    def progress(self, generation: IndexGeneration) -> str:
        if generation.posts_total:
            return f"{generation.posts_done} / {generation.posts_total}"
        return str(generation.posts_done or "—")

    @admin.display(description="lag (s)", ordering="last_flush_lag_s")
    def lag(self, generation: IndexGeneration) -> str:
        if generation.last_flush_at is None:
            return "—"
        return f"{generation.last_flush_lag_s:.1f}"

    @admin.display(description="ops figures")
    def index_figures(self, generation: IndexGeneration) -> str:
        try:
            figures = selectors.index_figures()
        except Exception as exc:  # noqa: BLE001 - a broken index must not hide the page
            return format_html("could not read the index: {}: {}", type(exc).__name__, exc)
        live = figures["generation"]
        rows: list[tuple[str, object]] = [
            ("Queued changes", figures["queued"]),
            ("Freshness lag (s)", figures["freshness_lag_s"]),
        ]
        if live is None or live["name"] != generation.name:
            state = f"live generation: {live['name']}" if live else "no live generation"
            rows.append(("Index figures", f"only for the live generation ({state})"))
        else:
            rows += [(label, _shown(live[key])) for label, key in INDEX_FIGURES if key in live]
            rows += [
                (
                    f"Segment {segment['name']}",
                    f"{segment['count']} vectors, {segment['tombstones']} tombstones",
                )
                for segment in live.get("segments", [])
            ]
        building = figures.get("building")
        if building is not None:
            rows.append(
                (
                    "Building",
                    f"{building['name']}: {building['posts_done']} / "
                    f"{building['posts_total']} posts",
                )
            )
        return _table(rows)

    @admin.display(description="last reconcile report")
    def reconcile_summary(self, generation: IndexGeneration) -> str:
        report = generation.reconcile_report or {}
        if not report:
            return "never reconciled"
        return _table([(str(key), _shown(value)) for key, value in report.items()])

    @admin.action(
        description="Reconcile now (diff posts against the index, repair)", permissions=["index"]
    )
    def reconcile_now(self, request: HttpRequest, queryset: QuerySet[IndexGeneration]) -> None:
        transaction.on_commit(reconcile_task.delay)
        self.message_user(
            request,
            "Reconcile queued on the index worker; the generation's report updates when done.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Build a new generation (configured embedding model)", permissions=["index"]
    )
    def build_generation(self, request: HttpRequest, queryset: QuerySet[IndexGeneration]) -> None:
        transaction.on_commit(generation_build_task.delay)
        self.message_user(
            request,
            "Build queued: a new generation appears here as 'building' and goes live when "
            "complete; search keeps reading the live one meanwhile.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Compact (rebuild segments heavy with tombstones)", permissions=["index"]
    )
    def compact(self, request: HttpRequest, queryset: QuerySet[IndexGeneration]) -> None:
        transaction.on_commit(index_compact_task.delay)
        self.message_user(request, "Compaction queued on the index worker.", messages.SUCCESS)


@admin.register(IndexQueueEntry)
class IndexQueueEntryAdmin(admin.ModelAdmin):
    list_display = ["post_id", "enqueued_at", "waiting_s"]
    search_fields = ["=post_id"]
    search_help_text = "Post id (exact)."
    date_hierarchy = "enqueued_at"
    readonly_fields = ["post_id", "enqueued_at"]

    @admin.display(description="waiting (s)")
    def waiting_s(self, entry: IndexQueueEntry) -> str:
        return f"{(timezone.now() - entry.enqueued_at).total_seconds():.1f}"

    # The outbox is written with each post change and emptied by the index worker; an entry
    # removed by hand would be a change the index never hears of (until a reconcile).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- answers ------------------------------------------------------------------------------


class FeedbackInline(admin.TabularInline):
    model = AnswerFeedback
    extra = 0
    can_delete = False
    fields = ["helpful", "comment", "user", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class FeedbackFilter(admin.SimpleListFilter):
    title = "feedback"
    parameter_name = "feedback"

    def lookups(self, request, model_admin):
        return [("up", "Rated helpful"), ("down", "Rated unhelpful"), ("none", "Not rated")]

    def queryset(self, request, queryset):
        match self.value():
            case "up":
                return queryset.filter(feedback__helpful=True).distinct()
            case "down":
                return queryset.filter(feedback__helpful=False).distinct()
            case "none":
                return queryset.filter(feedback__isnull=True)
        return queryset


class RejectedFilter(admin.SimpleListFilter):
    """Answers where the support check kept sentences out (the model's inventions)."""

    title = "unsupported sentences"
    parameter_name = "rejected"

    def lookups(self, request, model_admin):
        return [("yes", "Some kept out"), ("no", "None")]

    def queryset(self, request, queryset):
        match self.value():
            case "yes":
                return queryset.exclude(rejected=[])
            case "no":
                return queryset.filter(rejected=[])
        return queryset


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    """The answer log: what was asked, what was answered from which posts, how fast."""

    list_display = [
        "question_excerpt",
        "status",
        "style",
        "citation_count",
        "total_ms",
        "model",
        "created_at",
    ]
    list_filter = [
        "status",
        "style",
        "cut_short",
        FeedbackFilter,
        RejectedFilter,
        "model",
        "created_at",
    ]
    search_fields = ["question", "text", "model_text"]
    date_hierarchy = "created_at"
    inlines = [FeedbackInline]
    show_full_result_count = False
    readonly_fields = [
        "question", "filters", "status", "style", "cut_short", "text", "model_text",
        "citations", "retrieved", "sentences", "rejected",
        "model", "adapter", "retrieval_ms", "first_token_ms", "total_ms", "prompt_tokens",
        "completion_tokens", "error", "user", "client_ip", "created_at", "started_at",
        "finished_at",
    ]  # fmt: skip
    exclude = ["cited_posts"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="question")
    def question_excerpt(self, answer: Answer) -> str:
        return answer.question[:80]

    @admin.display(description="citations")
    def citation_count(self, answer: Answer) -> int:
        return len(answer.citations)


@admin.register(AnswerFeedback)
class AnswerFeedbackAdmin(admin.ModelAdmin):
    """What readers said about answers, newest first."""

    list_display = ["answer", "helpful", "comment", "user", "created_at"]
    list_filter = ["helpful", "created_at"]
    search_fields = ["comment", "answer__question"]
    list_select_related = ["answer", "user"]
    readonly_fields = ["answer", "user", "helpful", "comment", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
