"""Who may read the ops figures: the dashboard and its JSON for staff only, /metrics for
staff or a scraper holding PLAZA_METRICS_TOKEN."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests-0123456789"


def test_urls_keep_their_names_and_paths():
    """Other code and the permission matrix rely on these names and paths."""
    assert reverse("ops-dashboard") == "/ops/"
    assert reverse("ops-figures") == "/ops/figures"
    assert reverse("metrics") == "/metrics"


def test_anonymous_is_sent_to_sign_in_or_refused(client):
    """Not signed in: the page redirects to the sign-in page and back; the JSON and the
    metrics answer 403 (the JSON says why)."""
    page = client.get("/ops/")
    assert page.status_code == 302
    assert page["Location"] == "/accounts/login/?next=/ops/"
    figures = client.get("/ops/figures")
    assert figures.status_code == 403
    assert figures["Content-Type"] == "application/json"
    assert "staff" in figures.json()["detail"]
    assert client.get("/metrics").status_code == 403


def test_a_member_who_is_not_staff_is_refused_everywhere(member_client):
    """Signed in without staff status: 403 on all three, never a redirect or the figures."""
    for url in ("/ops/", "/ops/figures", "/metrics"):
        response = member_client.get(url)
        assert response.status_code == 403, url
        assert b"plaza_index" not in response.content


def test_staff_read_all_three(staff_client):
    page = staff_client.get("/ops/")
    assert page.status_code == 200
    assert page.templates[0].name == "ops/dashboard.html"
    assert staff_client.get("/ops/figures").json()["broker"]["queues"]
    metrics = staff_client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics["Content-Type"].startswith("text/plain")
    assert b"plaza_jobs" in metrics.content


def test_the_nav_links_to_ops_for_staff_only(staff_client, make_user, client):
    assert 'href="/ops/"' in staff_client.get("/search").content.decode()
    client.force_login(make_user("plain"))
    assert 'href="/ops/"' not in client.get("/search").content.decode()


def test_metrics_with_the_bearer_token(client, settings):
    """The right bearer token reads /metrics without a session; a wrong one, another
    scheme, or the token on the dashboard does not."""
    settings.PLAZA_METRICS_TOKEN = TOKEN
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert b"plaza_index_up" in ok.content
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Token {TOKEN}", TOKEN, "Bearer "):
        assert client.get("/metrics", headers={"Authorization": header}).status_code == 403, header
    figures = client.get("/ops/figures", headers={"Authorization": f"Bearer {TOKEN}"})
    assert figures.status_code == 403  # the token is for /metrics only


def test_no_token_configured_means_no_token_access(client, settings):
    """PLAZA_METRICS_TOKEN empty: token access is off, an empty bearer token included."""
    settings.PLAZA_METRICS_TOKEN = ""
    for header in ("Bearer ", "Bearer", "Bearer anything"):
        assert client.get("/metrics", headers={"Authorization": header}).status_code == 403


@pytest.mark.integration
def test_a_short_metrics_token_stops_start_up(tmp_path):
    """A guessable token is refused with its name and what to do."""
    from tests.test_settings import manage

    result = manage("check", PLAZA_METRICS_TOKEN="short", PLAZA_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "PLAZA_METRICS_TOKEN is 5 characters long" in result.stderr
    assert manage("check", PLAZA_METRICS_TOKEN=TOKEN, PLAZA_DATA_DIR=str(tmp_path)).returncode == 0
