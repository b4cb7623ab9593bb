import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from search.selectors import index_figures

logger = logging.getLogger(__name__)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and the database responds.

    `index` reports the queue and the freshness lag; it informs, it never fails health
    (no generation yet is normal, and search degrades on its own)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database_ok = True
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        database_ok = False
    body = {"status": "ok" if database_ok else "degraded", "database": database_ok}
    if database_ok:
        body["index"] = _index_health()
    return JsonResponse(body, status=200 if database_ok else 503)


def _index_health() -> dict:
    try:
        figures = index_figures()
    except Exception:  # noqa: BLE001 - the index is reported, not required
        logger.exception("healthz: index figures failed")
        return {"queued": None, "freshness_lag_s": None, "generation": None, "error": True}
    generation = figures["generation"]
    return {
        "queued": figures["queued"],
        "freshness_lag_s": figures["freshness_lag_s"],
        "generation": generation["name"] if generation else None,
    }
