"""An advertiser's members: an admin (role) invites a member from the studio and gets
the link to send; the invitee lands on that advertiser's studio. A plain member cannot
invite, nor can another advertiser's admin invite into yours, nor hand out a link for
someone else's pending invitee; staff add existing accounts in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ads import members
from ads.models import Advertiser, Membership

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "harbour-lantern-47"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def acme_admin(advertisers):
    """alice becomes Acme's admin; bob stays a plain member of Globex."""
    members.member_add(advertiser=advertisers["acme"], user=advertisers["alice"], role="admin")
    return advertisers["alice"]


def _invite(client, advertiser: Advertiser, username: str = "carol", **extra):
    data = {"advertiser": advertiser.pk, "username": username, "email": "", "role": "member"}
    return client.post("/ads/members/invite", data | extra)


def test_existing_memberships_are_members_and_add_still_works(advertisers):
    """The fixture's plain members.add() (the migration's through model keeps it working)
    gives the member role."""
    membership = Membership.objects.get(advertiser=advertisers["acme"], user=advertisers["alice"])
    assert membership.role == Membership.Role.MEMBER


def test_an_admin_invites_and_the_invitee_lands_on_that_studio(acme_admin, advertisers):
    """The studio shows Acme's admin the members and the invite form; inviting gives a page
    with the link; the link sets carol's password and lands her on the studio, where she
    sees Acme's campaigns and not Globex's, and no invite form (she is a member)."""
    from ads.models import Campaign

    Campaign.objects.create(advertiser=advertisers["acme"], name="Acme boots", description="d")
    Campaign.objects.create(advertiser=advertisers["globex"], name="Globex lamps", description="d")
    admin = _client(acme_admin)
    studio = admin.get("/ads/studio").content.decode()
    assert 'action="/ads/members/invite"' in studio and "alice" in studio
    page = _invite(admin, advertisers["acme"], email="carol@example.com")
    assert page.status_code == 200
    link = page.context["link"]
    assert (
        link.startswith("http://testserver/accounts/invitation/") and link in page.content.decode()
    )
    carol = User.objects.get(username="carol")
    assert not carol.is_active and not carol.is_staff and carol.email == "carol@example.com"
    assert Membership.objects.get(user=carol).advertiser == advertisers["acme"]
    assert "invited" in admin.get("/ads/studio").content.decode()

    invitee = Client()
    path = link.removeprefix("http://testserver")
    response = invitee.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response["Location"] == "/ads/studio"
    studio = invitee.get("/ads/studio").content.decode()
    assert "Acme boots" in studio and "Globex lamps" not in studio
    assert 'action="/ads/members/invite"' not in studio


def test_a_plain_member_cannot_invite(advertisers):
    """bob (a member of Globex, no admin role) sees no invite form and a POST is refused
    (403); no account is made."""
    bob = _client(advertisers["bob"])
    assert 'action="/ads/members/invite"' not in bob.get("/ads/studio").content.decode()
    assert _invite(bob, advertisers["globex"]).status_code == 403
    assert not User.objects.filter(username="carol").exists()
    with pytest.raises(members.MemberError, match="admin role"):
        members.member_invite(
            advertiser=advertisers["globex"], inviter=advertisers["bob"], username="carol"
        )


def test_another_advertisers_admin_cannot_invite_into_yours(acme_admin, advertisers):
    """Acme's admin posting Globex's id gets the form's error (not a choice offered) and
    no account; the service refuses it too."""
    page = _invite(_client(acme_admin), advertisers["globex"])
    assert page.status_code == 400 and "Select a valid choice" in page.content.decode()
    assert not User.objects.filter(username="carol").exists()
    with pytest.raises(members.MemberError, match="admin role"):
        members.member_invite(advertiser=advertisers["globex"], inviter=acme_admin, username="c")
    assert not Membership.objects.filter(advertiser=advertisers["globex"], user__username="c")


def test_an_existing_account_is_refused_beside_the_field(acme_admin, advertisers):
    """Inviting bob (an account already) shows the reason beside the username field and
    does not add bob to Acme."""
    page = _invite(_client(acme_admin), advertisers["acme"], username="Bob")
    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="id_username_errors"' in html and "has an account already" in html
    assert not Membership.objects.filter(advertiser=advertisers["acme"], user__username="bob")


def test_asking_again_renews_only_your_own_pending_invitee(acme_admin, advertisers):
    """Inviting carol again at Acme gives a new link; Globex's admin cannot get a link for
    carol (pending at Acme), which would let them set her password."""
    first = members.member_invite(
        advertiser=advertisers["acme"], inviter=acme_admin, username="carol"
    )
    again = members.member_invite(
        advertiser=advertisers["acme"], inviter=acme_admin, username="carol"
    )
    assert first.created and not again.created and again.user == first.user
    members.member_add(advertiser=advertisers["globex"], user=advertisers["bob"], role="admin")
    with pytest.raises(members.MemberError, match="has an account already"):
        members.member_invite(
            advertiser=advertisers["globex"], inviter=advertisers["bob"], username="carol"
        )
    assert list(first.user.advertisers.all()) == [advertisers["acme"]]


def test_staff_invite_into_any_advertiser(advertisers):
    """Staff may invite into any advertiser, as a member or an admin."""
    invitation = members.member_invite(
        advertiser=advertisers["globex"],
        inviter=advertisers["staff"],
        username="dora",
        role="admin",
    )
    assert Membership.objects.get(user=invitation.user).role == Membership.Role.ADMIN


def test_staff_add_an_existing_account_in_the_admin(advertisers, make_user):
    """The advertiser's admin page lists its memberships inline; staff add carol to Acme
    as its admin there."""
    root = _client(make_user("root", superuser=True))
    carol = make_user("carol")
    acme = advertisers["acme"]
    url = f"/admin/ads/advertiser/{acme.pk}/change/"
    page = root.get(url)
    assert page.status_code == 200 and "memberships-TOTAL_FORMS" in page.content.decode()
    alice_row = Membership.objects.get(advertiser=acme, user=advertisers["alice"])
    data = {
        "name": acme.name,
        "industry": acme.industry,
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": str(alice_row.pk),
        "memberships-0-advertiser": str(acme.pk),
        "memberships-0-user": str(advertisers["alice"].pk),
        "memberships-0-role": "member",
        "memberships-1-advertiser": str(acme.pk),
        "memberships-1-user": str(carol.pk),
        "memberships-1-role": "admin",
        "_save": "Save",
    }
    response = root.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Membership.objects.get(advertiser=acme, user=carol).role == Membership.Role.ADMIN
