"""Writes for accounts: invited accounts, created inactive with no password, and their
acceptance, which sets the password and activates the account.

    invitation = user_invite(username="carol", email="carol@example.com")
    invitation.token                      # for the link /accounts/invitation/<token>/
    invitation_accept(user=invitation.user, password="...")   # active, signs in

Who may invite whom into what is the inviting app's rule (ads.members for advertisers).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts.selectors import invitation_pending
from accounts.tokens import InvitationError, invitation_token_make


@dataclass(frozen=True)
class Invitation:
    user: object  # the invited account (inactive until accepted)
    token: str  # signed; valid for PLAZA_INVITATION_DAYS, once
    created: bool  # False: a new link for an invitation not yet accepted


def _clean_username(username: str) -> str:
    username = (username or "").strip()
    field = get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD)
    if not username:
        raise InvitationError("username: required")
    if len(username) > field.max_length:
        raise InvitationError(f"username: at most {field.max_length} characters")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise InvitationError(f"username: {' '.join(exc.messages)}") from None
    return username


@transaction.atomic
def user_invite(*, username: str, email: str = "") -> Invitation:
    """A new inactive account with no password and a link to accept it. A username taken
    already (in any letter case) is refused, saying so."""
    username = _clean_username(username)
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise InvitationError(f"email: {email!r} is not an email address") from None
    users = get_user_model().objects
    if users.filter(username__iexact=username).exists():
        raise InvitationError(
            f"username: {username!r} has an account already; staff can add an existing "
            "account to an advertiser in the admin"
        )
    user = users.create_user(username=username, email=email, password=None, is_active=False)
    return Invitation(user=user, token=invitation_token_make(user=user), created=True)


def invitation_renew(*, user) -> Invitation:
    """A new link for an invitation not yet accepted."""
    if not invitation_pending(user=user):
        raise InvitationError(f"username: {user.get_username()!r} has accepted already")
    return Invitation(user=user, token=invitation_token_make(user=user), created=False)


@transaction.atomic
def invitation_accept(*, user, password: str):
    """Sets the password (validated by the caller's form) and activates the account;
    every link made for it stops working."""
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    if not invitation_pending(user=user):
        raise InvitationError("This invitation was used already: sign in instead.")
    user.set_password(password)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    return user
