import hmac
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ops import registry
from ops.metrics import metrics_registry
from ops.selectors import ops_figures

logger = logging.getLogger(__name__)

CHART_HOURS = (1, 6, 24)  # the chart's windows, as offered on the page
DEFAULT_CHART_HOURS = 6
REFRESH_S = 5  # the page asks /ops/figures this often


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
        figures = registry.index_figures()
    except Exception:  # noqa: BLE001 - the index is reported, not required
        logger.exception("healthz: index figures failed")
        return {"queued": None, "freshness_lag_s": None, "generation": None, "error": True}
    if figures is None:
        return {"queued": None, "freshness_lag_s": None, "generation": None}
    return {
        "queued": figures.queued,
        "freshness_lag_s": figures.freshness_lag_s,
        "generation": figures.generation,
    }


def _staff_only(*, json: bool) -> Callable:
    """Staff only. A page sends a visitor who is not signed in to the sign-in page; JSON
    answers 403 with the reason; a signed-in member who is not staff gets 403 either way."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                if json:
                    return JsonResponse(
                        {"detail": "Sign in as a staff member to read the ops figures."},
                        status=403,
                    )
                return redirect_to_login(request.get_full_path())
            if not user.is_staff:
                if json:
                    return JsonResponse({"detail": "Staff only."}, status=403)
                raise PermissionDenied("The ops dashboard is for staff only.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _chart_hours(request: HttpRequest) -> int:
    try:
        hours = int(request.GET.get("hours", DEFAULT_CHART_HOURS))
    except ValueError:
        hours = DEFAULT_CHART_HOURS
    return max(1, min(hours, settings.PLAZA_OPS_HISTORY_HOURS))


@require_GET
@never_cache
@_staff_only(json=False)
def dashboard(request: HttpRequest) -> HttpResponse:
    """The ops dashboard: index, freshness lag chart, queues, workers, jobs; it refreshes
    itself from /ops/figures."""
    hours = _chart_hours(request)
    return render(
        request,
        "ops/dashboard.html",
        {
            "figures": ops_figures(hours=hours),
            "hours": hours,
            "chart_hours": [h for h in CHART_HOURS if h <= settings.PLAZA_OPS_HISTORY_HOURS],
            "refresh_s": REFRESH_S,
        },
    )


@require_GET
@never_cache
@_staff_only(json=True)
def figures(request: HttpRequest) -> JsonResponse:
    """The dashboard's figures as JSON (?hours=N for the chart's window)."""
    return JsonResponse(ops_figures(hours=_chart_hours(request)))


def _bearer_token_ok(request: HttpRequest) -> bool:
    expected = settings.PLAZA_METRICS_TOKEN
    if not expected:
        return False  # token access is off
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for staff or a scraper with `Authorization: Bearer
    <PLAZA_METRICS_TOKEN>`."""
    if not (_bearer_token_ok(request) or request.user.is_staff):
        return HttpResponse(
            "Forbidden: sign in as staff, or send Authorization: Bearer <PLAZA_METRICS_TOKEN>.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
