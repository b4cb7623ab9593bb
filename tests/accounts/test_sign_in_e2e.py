"""Signing in in a real browser (headless Chromium against a live server): the seeded
non-staff member `demo` is refused with a wrong password and shown why, signs in through
the form with the password seed_demo wrote and lands on the studio with the three seeded
campaigns; signed out, repeated wrong passwords are throttled with a page that says when
to try again."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.e2e  # the browser fixture (tests/conftest.py) skips without Chromium


@pytest.fixture
def browser(browser):
    browser.implicitly_wait(5)
    return browser


def _sign_in(browser, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.NAME, "username").clear()
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    page = browser.find_element(By.TAG_NAME, "main")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    WebDriverWait(browser, 10).until(staleness_of(page))  # the answer's page has replaced it


def _main_shows(browser, *needles: str) -> str:
    """The page's <main> text once it holds every needle: a click returns before the next
    page has loaded, and <main> read in between is the old page's, or gone stale."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def text(driver) -> str:
        return driver.find_element(By.TAG_NAME, "main").text

    try:
        WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda driver: all(needle in text(driver) for needle in needles)
        )
    except TimeoutException:
        pytest.fail(f"<main> never showed {needles}; it shows: {text(browser)!r}")
    return text(browser)


def test_the_seeded_member_signs_in_to_the_studio(live_server, browser, tmp_path, settings):
    """From the front page's "Sign in": a wrong password shows the form's error; the
    written password lands on the studio listing the three campaigns (a seeded creative
    one click on); after signing out, AXES_FAILURE_LIMIT wrong passwords give the lockout
    page, and then the right password is refused too."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import url_to_be
    from selenium.webdriver.support.ui import WebDriverWait

    settings.AXES_FAILURE_LIMIT = 3
    password_file = tmp_path / "demo-password.txt"
    call_command("seed_demo", "--password-file", str(password_file), stdout=io.StringIO())
    password = password_file.read_text().strip()

    browser.get(f"{live_server.url}/")
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    # A click returns before the next page has loaded: wait for it, then read it.
    WebDriverWait(browser, 10).until(url_to_be(f"{live_server.url}/accounts/login/"))

    _sign_in(browser, "demo", "not-the-password")
    _main_shows(browser, "Please enter a correct username and password")
    error = browser.find_element(By.CSS_SELECTOR, "main .errors")
    assert "Please enter a correct username and password" in error.text
    assert browser.current_url == f"{live_server.url}/accounts/login/"

    _sign_in(browser, "demo", password)
    WebDriverWait(browser, 10).until(url_to_be(f"{live_server.url}/ads/studio"))
    main = browser.find_element(By.TAG_NAME, "main").text
    for name in ("Teamboard launch", "Café de la semana", "Physio at home"):
        assert name in main
    assert "You are not a member" not in main
    assert "@demo" in browser.find_element(By.CSS_SELECTOR, "header.top").text
    assert "Admin" not in browser.find_element(By.CSS_SELECTOR, "header.top nav").text

    browser.find_element(By.LINK_TEXT, "Teamboard launch").click()
    _main_shows(browser, "Plan Together Without the Chaos")

    browser.find_element(By.CSS_SELECTOR, "form.sign-out button").click()
    _main_shows(browser, "You are signed out")

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(browser, "demo", "still-not-the-password")
    _main_shows(browser, "Too many failed sign-ins", "Try again in 15 minutes")
    browser.get(f"{live_server.url}/accounts/login/")
    _sign_in(browser, "demo", password)
    _main_shows(browser, "Too many failed sign-ins")
