from django.contrib import admin
from django.utils import timezone

from ops.models import FreshnessSample, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["queue", "hostname", "pid", "seen_at", "seconds_ago", "beats"]
    list_filter = ["queue"]
    search_fields = ["hostname"]
    readonly_fields = ["hostname", "queue", "pid", "seen_at", "beats"]

    @admin.display(description="seconds ago")
    def seconds_ago(self, beat: WorkerHeartbeat) -> int:
        return int((timezone.now() - beat.seen_at).total_seconds())

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(FreshnessSample)
class FreshnessSampleAdmin(admin.ModelAdmin):
    """Written by beat once a minute and pruned by age: read only."""

    list_display = ["taken_at", "freshness_lag_s", "queued", "last_flush_lag_s", "generation"]
    list_filter = ["generation"]
    search_fields = ["generation"]
    date_hierarchy = "taken_at"
    readonly_fields = ["taken_at", "freshness_lag_s", "queued", "last_flush_lag_s", "generation"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
