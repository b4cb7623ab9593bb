"""Signing in, out and changing the password at /accounts/ for every user: a member of an
advertiser lands on the studio, anyone else on search, ?next= wins when it is this
site's; a wrong password is refused with the form's error; repeated failures (this form's
or the admin's) lock that username from that address out with a page saying when to try
again; sign-out is POST only; the admin keeps its own login and password pages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests/conftest.py make_user's
WRONG = "not-the-password"


def _sign_in(client: Client, username: str, password: str, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password, **extra})


def test_login_url_is_the_accounts_page():
    """@login_required pages send everyone to /accounts/login/, not the admin's login."""
    assert resolve_url(settings.LOGIN_URL) == "/accounts/login/"


def test_the_sign_in_page_has_the_usual_fields(client):
    """Django's AuthenticationForm fields, in Plaza's page (base.html), with CSRF."""
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    html = page.content.decode()
    for snippet in ('name="username"', 'name="password"', "csrfmiddlewaretoken", "Plaza"):
        assert snippet in html
    assert "staff account" not in html


def test_a_member_lands_on_the_studio(client, advertisers):
    """A non-staff member of an advertiser signs in and is sent to the ads studio, which
    shows them as signed in."""
    response = _sign_in(client, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/ads/studio"
    studio = client.get("/ads/studio")
    assert studio.status_code == 200 and "@alice" in studio.content.decode()


def test_a_user_of_no_advertiser_and_staff_land_on_search(client, advertisers, make_user):
    """Without a membership the landing page is search; staff too (they have the admin)."""
    make_user("carol")
    assert _sign_in(client, "carol", PASSWORD)["Location"] == "/search"
    other = Client()
    assert _sign_in(other, "staff", PASSWORD)["Location"] == "/search"


def test_next_wins_when_it_is_this_sites(client, advertisers):
    """?next= on this site is followed; one to another host is ignored for the landing."""
    response = _sign_in(client, "alice", PASSWORD, next="/posts/1")
    assert response["Location"] == "/posts/1"
    other = Client()
    response = _sign_in(other, "alice", PASSWORD, next="https://evil.example/")
    assert response["Location"] == "/ads/studio"


def test_a_login_required_page_comes_back_after_signing_in(client, advertisers):
    """The studio sends an anonymous visitor to sign in, and back to it after."""
    response = client.get("/ads/studio")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/ads/studio"
    page = client.get(response["Location"])
    assert 'name="next" value="/ads/studio"' in page.content.decode()
    assert _sign_in(client, "alice", PASSWORD, next="/ads/studio")["Location"] == "/ads/studio"


def test_a_wrong_password_is_refused_with_the_forms_error(client, advertisers):
    """A wrong password re-renders the form with Django's error and signs nobody in; the
    password typed is never echoed back."""
    page = _sign_in(client, "alice", WRONG)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Please enter a correct username and password" in html
    assert WRONG not in html
    assert 'value="alice"' in html
    assert "_auth_user_id" not in client.session


def test_an_empty_form_shows_each_fields_error(client):
    """Missing fields are named beside the field."""
    html = client.post("/accounts/login/", {"username": "", "password": ""}).content.decode()
    assert 'id="id_username_errors"' in html and 'id="id_password_errors"' in html


def test_repeated_failures_lock_out_with_a_retry_time(client, advertisers, settings):
    """After AXES_FAILURE_LIMIT wrong passwords for one username from one address the
    sign-in answers 429 with Retry-After and says when to try again; then even the right
    password is refused until the cool-off ends. Another username is not affected."""
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert _sign_in(client, "alice", WRONG).status_code == 200
    locked = _sign_in(client, "alice", WRONG)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    html = locked.content.decode()
    assert "Too many failed sign-ins" in html and "Try again in 15 minutes" in html
    assert _sign_in(client, "alice", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    assert _sign_in(client, "bob", PASSWORD).status_code == 302


def test_a_success_clears_the_count(client, advertisers, settings):
    """Failures below the limit are forgotten once the right password is given."""
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        _sign_in(client, "alice", WRONG)
    assert _sign_in(client, "alice", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        assert _sign_in(client, "alice", WRONG).status_code == 200


def test_the_admin_login_counts_and_is_locked_too(client, advertisers, settings):
    """The admin's login is covered: failures there count, its lockout is the same page,
    and the same username is then locked out of /accounts/login/ as well."""
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        page = client.post("/admin/login/", {"username": "staff", "password": WRONG})
        assert page.status_code == 200
    locked = client.post("/admin/login/", {"username": "staff", "password": WRONG})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert _sign_in(client, "staff", PASSWORD).status_code == 429


def test_sign_out_is_post_only(client, advertisers):
    """GET /accounts/logout/ is refused (405) and leaves the user signed in; POST signs out
    and shows the sign-in page saying so."""
    client.force_login(advertisers["alice"])
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/ads/studio").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "You are signed out" in client.get("/accounts/login/").content.decode()
    assert client.get("/ads/studio").status_code == 302


def test_password_change(client, advertisers):
    """A signed-in user changes the password (old one checked, new one validated) and
    signs in with the new one afterwards; anonymous visitors are sent to sign in."""
    assert client.get("/accounts/password_change/")["Location"].startswith("/accounts/login/")
    client.force_login(advertisers["alice"])
    page = client.get("/accounts/password_change/")
    html = page.content.decode()
    for name in ("old_password", "new_password1", "new_password2"):
        assert f'name="{name}"' in html
    wrong = client.post(
        "/accounts/password_change/",
        {"old_password": WRONG, "new_password1": "x", "new_password2": "y"},
    )
    assert wrong.status_code == 200
    html = wrong.content.decode()
    assert 'id="id_old_password_errors"' in html and 'id="id_new_password2_errors"' in html
    done = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "harbour-lantern-47",
            "new_password2": "harbour-lantern-47",
        },
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/password_change/done/"
    assert "Password changed" in client.get(done["Location"]).content.decode()
    client.post("/accounts/logout/")
    assert _sign_in(client, "alice", "harbour-lantern-47")["Location"] == "/ads/studio"


def test_the_header_links(client, advertisers):
    """Anonymous: "Sign in" to /accounts/login/ coming back to the page (not from the front
    page, whose visitors land by role). Signed in: the username, a password link and a
    sign-out POST form with a CSRF token."""
    html = client.get("/search").content.decode()
    assert 'href="/accounts/login/?next=%2Fsearch"' in html
    assert 'href="/accounts/login/"' in client.get("/").content.decode()
    assert "?next=" not in client.get("/accounts/login/").content.decode()
    assert "/admin/login/" not in html
    client.force_login(advertisers["alice"])
    html = client.get("/").content.decode()
    assert "@alice" in html and 'href="/accounts/password_change/"' in html
    form = html[html.index('<form class="sign-out"') :]
    form = form[: form.index("</form>")]
    assert 'method="post"' in form and 'action="/accounts/logout/"' in form
    assert "csrfmiddlewaretoken" in form


def test_the_admin_keeps_its_own_login_and_password_pages(client, advertisers):
    """Staff still sign in at /admin/login/ (the admin's page), and the admin's password
    change is still the admin's page, not Plaza's."""
    assert "Plaza administration" in client.get("/admin/login/").content.decode()
    response = client.post("/admin/login/", {"username": "staff", "password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/admin/password_change/")
    assert page.status_code == 200 and "Plaza administration" in page.content.decode()
