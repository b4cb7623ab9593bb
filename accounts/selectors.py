"""Reads for accounts: whether an account is an invitation not yet accepted, and the
account an invitation link is for."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.tokens import InvitationError, invitation_token_matches, invitation_token_read


def invitation_pending(*, user) -> bool:
    """An account invited and not yet accepted: inactive, no usable password, never in."""
    return not user.is_active and not user.has_usable_password() and user.last_login is None


def invitation_user(*, token: str):
    """The invited account, or InvitationError saying whether the link is bad, expired
    (PLAZA_INVITATION_DAYS) or used already."""
    user_id, state = invitation_token_read(
        token=token, max_age_s=settings.PLAZA_INVITATION_DAYS * 86400
    )
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise InvitationError(
            "This invitation link is not valid: the account it was for no longer exists."
        )
    if not invitation_pending(user=user) or not invitation_token_matches(user=user, state=state):
        raise InvitationError("This invitation link was used already: sign in instead.")
    return user
