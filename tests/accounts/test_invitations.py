"""Invitations: an invited account is inactive with no password until its link is used;
the link sets the password, activates and signs in (a member lands on the studio), and
works once; a bad, expired or used link says which; a taken username is refused."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client

from accounts import selectors, services
from accounts.tokens import InvitationError

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "harbour-lantern-47"


def _accept(client, token: str, password: str = NEW_PASSWORD, again: str | None = None):
    return client.post(
        f"/accounts/invitation/{token}/",
        {"new_password1": password, "new_password2": again or password},
    )


def test_an_invited_account_cannot_sign_in_until_accepted(client):
    """user_invite makes an inactive account with no usable password: signing in fails."""
    invitation = services.user_invite(username="carol", email="carol@example.com")
    carol = User.objects.get(username="carol")
    assert invitation.created and invitation.user == carol
    assert not carol.is_active and not carol.has_usable_password() and not carol.is_staff
    assert selectors.invitation_pending(user=carol)
    response = client.post("/accounts/login/", {"username": "carol", "password": ""})
    assert "_auth_user_id" not in client.session and response.status_code == 200


def test_accepting_sets_the_password_and_signs_in(client, advertisers):
    """The link shows the username and Django's SetPasswordForm; a valid password
    activates the account, signs it in and lands it where accounts.landing says (the studio
    for a member); the password then works at /accounts/login/."""
    invitation = services.user_invite(username="carol")
    advertisers["acme"].members.add(invitation.user)
    page = client.get(f"/accounts/invitation/{invitation.token}/")
    html = page.content.decode()
    assert page.status_code == 200 and "carol" in html and 'name="new_password1"' in html
    response = _accept(client, invitation.token)
    assert response.status_code == 302 and response["Location"] == "/ads/studio"
    assert int(client.session["_auth_user_id"]) == invitation.user.pk
    carol = User.objects.get(username="carol")
    assert carol.is_active and carol.check_password(NEW_PASSWORD)
    client.post("/accounts/logout/")
    signed_in = client.post("/accounts/login/", {"username": "carol", "password": NEW_PASSWORD})
    assert signed_in["Location"] == "/ads/studio"


def test_a_weak_or_mismatched_password_is_refused_by_field(client):
    """The password validators run; errors are shown beside their field; nothing changes."""
    invitation = services.user_invite(username="carol")
    page = _accept(client, invitation.token, password="123", again="123")
    assert page.status_code == 400
    assert 'id="id_new_password2_errors"' in page.content.decode()
    page = _accept(client, invitation.token, password=NEW_PASSWORD, again="other-lantern-99")
    assert page.status_code == 400 and "didn" in page.content.decode()
    assert not User.objects.get(username="carol").is_active


def test_a_link_works_once(client):
    """After acceptance the same link says it was used; no second password can be set."""
    invitation = services.user_invite(username="carol")
    assert _accept(client, invitation.token).status_code == 302
    page = client.get(f"/accounts/invitation/{invitation.token}/")
    assert page.status_code == 400 and "used already" in page.content.decode()
    again = _accept(Client(), invitation.token, password="other-lantern-99")
    assert again.status_code == 400
    assert User.objects.get(username="carol").check_password(NEW_PASSWORD)


def test_a_bad_link_says_so(client):
    """A token not made here (or cut short) is refused as not valid."""
    invitation = services.user_invite(username="carol")
    for token in ("nonsense", invitation.token[:-3], invitation.token + "x"):
        page = client.get(f"/accounts/invitation/{token}/")
        assert page.status_code == 400 and "not valid" in page.content.decode(), token


def test_an_expired_link_says_so(client, settings):
    """Past PLAZA_INVITATION_DAYS the link says it expired and to ask for a new one."""
    settings.PLAZA_INVITATION_DAYS = 7
    invitation = services.user_invite(username="carol")
    later = time.time() + 8 * 86400
    with mock.patch("django.core.signing.time.time", return_value=later):
        page = client.get(f"/accounts/invitation/{invitation.token}/")
        assert page.status_code == 400 and "expired" in page.content.decode()
        assert _accept(client, invitation.token).status_code == 400
    assert not User.objects.get(username="carol").is_active


def test_a_renewed_link_outlives_the_first_and_any_use_ends_both(client, settings):
    """invitation_renew gives a pending account a link dated now: valid after the first
    one expired. Once a link is used, every link made for that account stops working."""
    settings.PLAZA_INVITATION_DAYS = 7
    first = services.user_invite(username="carol")
    now = time.time()
    with mock.patch("django.core.signing.time.time", return_value=now + 6 * 86400):
        second = services.invitation_renew(user=first.user)
    assert not second.created
    with mock.patch("django.core.signing.time.time", return_value=now + 8 * 86400):
        assert client.get(f"/accounts/invitation/{first.token}/").status_code == 400
        assert client.get(f"/accounts/invitation/{second.token}/").status_code == 200
    third = services.invitation_renew(user=first.user)
    assert _accept(client, third.token).status_code == 302
    page = Client().get(f"/accounts/invitation/{second.token}/")
    assert page.status_code == 400 and "used already" in page.content.decode()
    with pytest.raises(InvitationError, match="accepted already"):
        services.invitation_renew(user=User.objects.get(username="carol"))


def test_a_taken_username_is_refused_whatever_its_case(make_user):
    """An account that exists (any letter case) is never replaced by an invitation."""
    make_user("carol")
    for name in ("carol", "Carol"):
        with pytest.raises(InvitationError, match="has an account already"):
            services.user_invite(username=name)
    with pytest.raises(InvitationError, match="username"):
        services.user_invite(username="no spaces allowed")
    with pytest.raises(InvitationError, match="email"):
        services.user_invite(username="dave", email="not-an-address")
