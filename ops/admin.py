from django.contrib import admin
from django.utils import timezone

from ops.models import WorkerHeartbeat


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
