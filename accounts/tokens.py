"""Invitation tokens: signed (django.core.signing), dated, and bound to the invited
account's state, so a token stops working once it was used (the password is set, the
account active) or the account changed.

    token = invitation_token_make(user=user)
    invitation_token_read(token=token, max_age_s=7 * 86400)   # the user id, or InvitationError
"""

from __future__ import annotations

from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "plaza.accounts.invitation"


class InvitationError(ValueError):
    """An invitation link that cannot be used: says why and what to do."""


def _state(user) -> str:
    # Changes when the invitation is accepted (password set, account active).
    return salted_hmac(SALT, f"{user.pk}:{user.password}:{user.is_active}").hexdigest()[:20]


def invitation_token_make(*, user) -> str:
    return signing.dumps({"user": user.pk, "state": _state(user)}, salt=SALT, compress=True)


def invitation_token_read(*, token: str, max_age_s: int) -> tuple[int, str]:
    """The user id and state the token was made for; InvitationError when it was not made
    here or is older than max_age_s."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age_s)
    except signing.SignatureExpired:
        raise InvitationError(
            "This invitation link has expired: ask your advertiser's admin for a new one."
        ) from None
    except signing.BadSignature:
        raise InvitationError(
            "This invitation link is not valid: check that it was copied whole, or ask "
            "your advertiser's admin for a new one."
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        raise InvitationError("This invitation link is not valid.")
    return payload["user"], str(payload.get("state", ""))


def invitation_token_matches(*, user, state: str) -> bool:
    return constant_time_compare(_state(user), state)
