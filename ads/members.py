"""Writes for an advertiser's members: an admin of the advertiser (or staff) invites a
new member, who gets an inactive account and a link to choose a password (accounts).

    invitation = member_invite(advertiser=acme, inviter=alice, username="carol")
    invitation.token     # the link /accounts/invitation/<token>/, shown to the inviter
    member_add(advertiser=acme, user=carol, role=Membership.Role.ADMIN)

An admin invites into their own advertisers only; an existing account is added by staff
in the admin, never by another advertiser's admin.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.selectors import invitation_pending
from accounts.services import Invitation, invitation_renew, user_invite
from accounts.tokens import InvitationError
from ads import selectors
from ads.models import Advertiser, Membership


class MemberError(ValueError):
    """An invitation refused: `field: why` (the form shows it beside the field)."""


def member_add(*, advertiser: Advertiser, user, role: str = Membership.Role.MEMBER) -> Membership:
    """The user's membership of the advertiser with this role (created or updated)."""
    membership, _ = Membership.objects.update_or_create(
        advertiser=advertiser, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def member_invite(
    *,
    advertiser: Advertiser,
    inviter,
    username: str,
    email: str = "",
    role: str = Membership.Role.MEMBER,
) -> Invitation:
    """A new member of the advertiser: an inactive account and its invitation link. Asking
    again for someone invited here who has not accepted yet gives a new link."""
    if not selectors.can_invite(user=inviter, advertiser=advertiser):
        raise MemberError(
            f"advertiser: inviting into {advertiser.name} needs its admin role (or staff)"
        )
    existing = get_user_model().objects.filter(username__iexact=(username or "").strip()).first()
    try:
        if existing is not None and _invited_here_only(existing, advertiser):
            invitation = invitation_renew(user=existing)
        else:
            invitation = user_invite(username=username, email=email)
    except InvitationError as exc:
        raise MemberError(str(exc)) from None
    member_add(advertiser=advertiser, user=invitation.user, role=role)
    return invitation


def _invited_here_only(user, advertiser: Advertiser) -> bool:
    # A pending account in another advertiser too is not this admin's to hand a link for.
    advertisers = set(Membership.objects.filter(user=user).values_list("advertiser", flat=True))
    return invitation_pending(user=user) and advertisers == {advertiser.pk}
