"""The search page in a real browser (headless Chromium against a live server): the answer
streams in above the results, its [n] link to the sources listed under it (author, time,
the supporting sentence highlighted), feedback is recorded, and post text carrying markup
stays inert text."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e  # the browser fixture (tests/conftest.py) skips without Chromium

# Records every state and text of the answer as the page changes it, from the first paint.
WATCH_ANSWER = """
window.__answerStates = [];
document.addEventListener("DOMContentLoaded", function () {
  const text = document.querySelector("#answer .answer-text");
  if (!text) return;
  new MutationObserver(function () {
    window.__answerStates.push([text.dataset.state, text.textContent]);
  }).observe(text, {childList: true, subtree: true, characterData: true, attributes: true});
});
"""


@pytest.fixture
def browser(browser):
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_ANSWER})
    return browser


def answer_quoted(answer) -> bool:
    return all(s["origin"] == "post" for s in answer.sentences)


def _wait(driver, condition, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def test_the_answer_streams_in_with_linked_citations_and_feedback(
    live_server, browser, indexed_posts, settings
):
    """Searching shows the answer growing (token events before the end), then each [n]
    links to its source under the answer: the author (a link to the post's page), the
    time, and the post with the sentence the answer rests on highlighted; a quoted answer
    says so; the post with <script> in its text is shown as text and never runs; a
    thumbs-up is saved on the answer."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    from search.models import Answer, AnswerFeedback

    settings.PLAZA_ANSWER_MODE = "inline"
    browser.get(f"{live_server.url}/search?q=how+do+I+bake+bread")
    text = browser.find_element(By.CSS_SELECTOR, "#answer .answer-text")
    _wait(browser, lambda _: text.get_attribute("data-state") in ("done", "failed"))
    assert text.get_attribute("data-state") == "done"

    states = browser.execute_script("return window.__answerStates")
    assert any(state == "writing" for state, _ in states), states
    answer = Answer.objects.get()
    assert answer.status == Answer.Status.DONE and answer.text
    links = text.find_elements(By.TAG_NAME, "a")
    assert links and len(links) == answer.text.count("[")
    retrieved_urls = {f"{live_server.url}/posts/{pk}" for pk in answer.retrieved}
    for link in links:
        n = link.text.strip("[]")
        assert link.get_attribute("href").endswith(f"#answer-source-{n}")
        source = browser.find_element(By.ID, f"answer-source-{n}")
        author = source.find_element(By.CSS_SELECTOR, "a")
        assert author.get_attribute("href") in retrieved_urls and author.text.startswith("@")
        assert source.find_element(By.TAG_NAME, "time").get_attribute("datetime")
        marks = [m.text for m in source.find_elements(By.TAG_NAME, "mark")]
        cited = next(c for c in answer.citations if c["n"] == int(n))
        assert marks and marks == cited["evidence"]
    note = browser.find_element(By.CSS_SELECTOR, "#answer .answer-note")
    assert note.is_displayed() == answer_quoted(answer)
    if note.is_displayed():
        assert "Quoted from the posts" in note.text
    shown = browser.find_element(By.TAG_NAME, "main").text
    assert "<script>alert(1)</script> bread crumbs" in shown
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018  (the post's script never ran)

    browser.find_element(By.CSS_SELECTOR, ".answer-feedback button[data-helpful='1']").click()
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".answer-thanks").is_displayed())
    assert AnswerFeedback.objects.get(answer=answer).helpful is True
