from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html

from posts import services
from posts.models import Author, Post


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("visible", "Visible"), ("hidden", "Hidden"), ("deleted", "Deleted")]

    def queryset(self, request, queryset: QuerySet[Post]) -> QuerySet[Post]:
        match self.value():
            case "visible":
                return queryset.visible()
            case "hidden":
                return queryset.filter(is_hidden=True, deleted_at__isnull=True)
            case "deleted":
                return queryset.filter(deleted_at__isnull=False)
        return queryset


class EngagementFilter(admin.SimpleListFilter):
    title = "likes"
    parameter_name = "likes"
    bands = {"0": (0, 1), "1-99": (1, 100), "100-9999": (100, 10_000), "10000+": (10_000, None)}

    def lookups(self, request, model_admin):
        return [(band, band) for band in self.bands]

    def queryset(self, request, queryset: QuerySet[Post]) -> QuerySet[Post]:
        if self.value() not in self.bands:
            return queryset
        low, high = self.bands[self.value()]
        queryset = queryset.filter(likes__gte=low)
        return queryset if high is None else queryset.filter(likes__lt=high)


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["handle", "display_name", "verified", "followers", "post_count", "created_at"]
    list_filter = ["verified"]
    search_fields = ["handle", "display_name"]
    readonly_fields = ["created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Author]:
        return super().get_queryset(request).annotate(post_count=Count("posts"))

    @admin.display(description="posts", ordering="post_count")
    def post_count(self, author: Author) -> str:
        url = reverse("admin:posts_post_changelist") + f"?author__id__exact={author.pk}"
        return format_html('<a href="{}">{}</a>', url, author.post_count)


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "author",
        "excerpt",
        "lang",
        "created_at",
        "likes",
        "reposts",
        "replies",
        "state",
    ]
    list_select_related = ["author"]
    list_filter = [StateFilter, "lang", "source", EngagementFilter, "created_at"]
    search_fields = ["=external_id", "author__handle", "text"]
    search_help_text = "Post id (exact), author handle or words of the text."
    date_hierarchy = "created_at"
    raw_id_fields = ["author"]
    readonly_fields = ["content_hash", "ingested_at", "updated_at", "deleted_at"]
    fieldsets = [
        (None, {"fields": ["source", "external_id", "author", "text", "lang", "created_at"]}),
        ("Engagement", {"fields": ["likes", "reposts", "replies"]}),
        ("Moderation", {"fields": ["is_hidden", "deleted_at"]}),
        ("Bookkeeping", {"fields": ["content_hash", "ingested_at", "updated_at"]}),
    ]
    actions = ["hide", "unhide", "delete_softly", "restore"]
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) over millions of posts on every page is waste

    @admin.display(description="text")
    def excerpt(self, post: Post) -> str:
        return truncatechars(post.text, 90)

    @admin.display(description="state")
    def state(self, post: Post) -> str:
        if post.deleted_at:
            return "deleted"
        return "hidden" if post.is_hidden else "visible"

    def save_model(self, request, post: Post, form, change: bool) -> None:
        services.post_save(post=post)

    # The admin's own delete (page and bulk action) deletes softly too: the marker row keeps
    # a re-import from resurrecting the post, and the index hears of it.
    def delete_model(self, request, post: Post) -> None:
        services.post_delete(post_ids=[post.pk])

    def delete_queryset(self, request, queryset: QuerySet[Post]) -> None:
        services.post_delete(post_ids=queryset.values_list("pk", flat=True))

    @admin.action(description="Hide selected posts", permissions=["change"])
    def hide(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        changed = services.post_set_hidden(
            post_ids=queryset.values_list("pk", flat=True), hidden=True
        )
        self.message_user(request, f"Hid {changed} post(s).", messages.SUCCESS)

    @admin.action(description="Unhide selected posts", permissions=["change"])
    def unhide(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        changed = services.post_set_hidden(
            post_ids=queryset.values_list("pk", flat=True), hidden=False
        )
        self.message_user(request, f"Unhid {changed} post(s).", messages.SUCCESS)

    @admin.action(description="Delete selected posts (keeps a marker row)", permissions=["delete"])
    def delete_softly(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        changed = services.post_delete(post_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Deleted {changed} post(s).", messages.SUCCESS)

    @admin.action(description="Restore selected deleted posts", permissions=["delete"])
    def restore(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        changed = services.post_restore(post_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Restored {changed} post(s).", messages.SUCCESS)
