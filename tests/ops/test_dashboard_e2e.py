"""The ops dashboard in a real browser (headless Chromium against a live server): staff
sign in, the Ops link leads to the page, the chart is drawn from the samples, and the page
refreshes itself: a job that fails after it loaded appears with its error, markup in it
shown as text and never run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.e2e  # the browser fixture (tests/conftest.py) skips without Chromium

ERROR = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


def _wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def test_the_dashboard_refreshes_itself_and_shows_errors_as_text(
    live_server, browser, make_user, index_dir
):
    from selenium.webdriver.common.by import By

    from ops.models import FreshnessSample
    from search.models import Answer

    make_user("opsstaff", staff=True)
    now = timezone.now()
    for minutes, lag in ((50, 4.0), (30, 1.5), (10, 0.5)):
        FreshnessSample.objects.create(
            taken_at=now - timedelta(minutes=minutes), freshness_lag_s=lag, queued=1
        )

    browser.get(f"{live_server.url}/accounts/login/?next=/search")
    browser.find_element(By.NAME, "username").send_keys("opsstaff")
    browser.find_element(By.NAME, "password").send_keys("pw-for-tests")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    browser.find_element(By.LINK_TEXT, "Ops").click()
    assert browser.current_url == f"{live_server.url}/ops/"
    title = browser.title

    points = browser.find_element(By.ID, "ops-chart-lag").get_attribute("points").split()
    assert len(points) == 3
    heights = [float(p.split(",")[1]) for p in points]
    assert heights[0] < heights[1] < heights[2]  # 4.0 s, then 1.5 s, then 0.5 s: falling
    assert browser.find_element(By.ID, "ops-chart-max").text == "4 s"

    failed = Answer.objects.create(question="what broke?", status="failed", error=ERROR)
    error = _wait(
        browser,
        lambda b: b.find_elements(
            By.CSS_SELECTOR, '#ops-jobs section[data-kind="answers"] pre.ops-error'
        ),
    )[0]
    assert error.text == ERROR  # the markup as text
    assert browser.find_elements(By.CSS_SELECTOR, "#ops-jobs img") == []
    assert browser.title == title == "Ops · Plaza"  # nothing in the error ran
    link = browser.find_element(By.LINK_TEXT, str(failed.pk)[:8])
    assert link.get_attribute("href").endswith(f"/admin/search/answer/{failed.pk}/change/")
    assert browser.find_element(By.ID, "ops-refresh-state").text == ""
