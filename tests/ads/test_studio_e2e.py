"""Drafting and approving in the ads studio in a real browser (headless Chromium against a
live server), with the real default ad model: the seeded non-staff member `demo` signs in
through the form, opens the seeded campaign that needs no Plaza review, asks for two
drafts (PLAZA_DRAFT_MODE=inline: Gemma 3 270M through llama.cpp, in the server's own
process), sees them appear, and approves one, as the advertiser's admin may; the page and
the database both say it is approved, by demo, audited."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from ads.models import AdCreative, Campaign, CreativeEvent, DraftJob

# The browser fixture (tests/conftest.py) skips without Chromium; drafting loads real models.
pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DRAFTS = 2  # few: each is a headline and a body decoded on the CPU
DRAFTING_TIMEOUT_S = 150  # the model loads, then both drafts are written, in the request


@pytest.fixture
def browser(browser):
    browser.implicitly_wait(5)
    return browser


def test_the_seeded_member_drafts_and_approves_a_creative(
    live_server, browser, data_dir, settings, tmp_path
):
    """demo (not staff) signs in and lands on the studio, opens Teamboard launch (no
    regulated category: its own admin approves), drafts two: the job reads succeeded and
    each kept draft shows with its headline, `draft` and its rank in the job. Approve on the
    best one answers "Approved." and marks it approved on the page; in the database it is
    approved, reviewed by demo, with an `approved` event by demo; the other drafts stay
    drafts."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import url_to_be
    from selenium.webdriver.support.ui import WebDriverWait

    settings.PLAZA_DRAFT_MODE = "inline"
    password_file = tmp_path / "demo-password.txt"
    call_command("seed_demo", "--password-file", str(password_file), stdout=io.StringIO())
    campaign = Campaign.objects.get(name="Teamboard launch")
    assert campaign.category == "" and not campaign.advertiser.memberships.get().user.is_staff

    browser.get(f"{live_server.url}/accounts/login/")
    browser.find_element(By.NAME, "username").send_keys("demo")
    browser.find_element(By.NAME, "password").send_keys(password_file.read_text().strip())
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    WebDriverWait(browser, 10).until(url_to_be(f"{live_server.url}/ads/studio"))

    browser.find_element(By.LINK_TEXT, "Teamboard launch").click()
    WebDriverWait(browser, 10).until(url_to_be(f"{live_server.url}/ads/campaigns/{campaign.pk}"))
    assert "No drafting yet." in browser.find_element(By.ID, "jobs").text
    drafts = browser.find_element(By.NAME, "n")
    drafts.clear()
    drafts.send_keys(str(DRAFTS))
    browser.find_element(By.XPATH, "//main//button[normalize-space()='Draft']").click()

    # Inline, the POST answers once the job is done: the campaign page, the job finished.
    def main_says(text: str):
        return lambda b: text in b.find_element(By.TAG_NAME, "main").text

    stale = (StaleElementReferenceException,)  # read while the next page replaces it
    WebDriverWait(browser, DRAFTING_TIMEOUT_S, ignored_exceptions=stale).until(
        main_says("Drafting: the drafts appear below when the job is done.")
    )
    job = DraftJob.objects.get(campaign=campaign)
    assert job.status == "succeeded", job.error
    assert job.requested_by.username == "demo" and job.n == DRAFTS
    assert job.base_model == settings.PLAZA_AD_BASE_MODEL and job.generated >= job.kept
    status = browser.find_element(By.CSS_SELECTOR, "#jobs tr.draft-job .job-status").text
    assert status == "succeeded"
    drafted = list(AdCreative.objects.filter(job=job).order_by("rank"))
    assert 1 <= len(drafted) <= DRAFTS and job.kept == len(drafted)
    for creative in drafted:
        article = browser.find_element(By.ID, f"creative-{creative.pk}")
        assert creative.headline in article.text
        assert article.find_element(By.CSS_SELECTOR, ".status").text == "draft"
        assert f"#{creative.rank} of job {job.pk}" in article.text
        assert creative.checks["passed"] and not creative.needs_review

    best = drafted[0]
    article = browser.find_element(By.ID, f"creative-{best.pk}")
    article.find_element(By.XPATH, ".//button[normalize-space()='Approve']").click()
    WebDriverWait(browser, 10, ignored_exceptions=stale).until(main_says("Approved."))
    article = browser.find_element(By.ID, f"creative-{best.pk}")
    assert article.find_element(By.CSS_SELECTOR, ".status").text == "approved"
    assert "creative-approved" in article.get_attribute("class").split()

    best.refresh_from_db()
    assert best.status == "approved" and best.reviewed_at is not None
    assert best.reviewed_by.username == "demo" and not best.reviewed_by.is_staff
    event = CreativeEvent.objects.get(creative=best, action="approved")
    assert event.user == best.reviewed_by and event.changes == {"status": ["draft", "approved"]}
    others = AdCreative.objects.filter(job=job).exclude(pk=best.pk)
    assert all(other.status == "draft" for other in others)
