"""Where a user lands after signing in or accepting an invitation: the first page an app
claims for them, else LOGIN_REDIRECT_URL. Apps claim in their AppConfig.ready(), so this
app knows none of them:

    landing_register(studio_landing_for)   # (*, user) -> "/ads/studio" or None
    landing_url_for(user=request.user)     # "/ads/studio" for a member, else "/search"
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.shortcuts import resolve_url

LandingResolver = Callable[..., str | None]

_resolvers: list[LandingResolver] = []


def landing_register(resolver: LandingResolver) -> None:
    """Adds a resolver, called as resolver(user=...), that returns a URL or None; the
    first registered that returns one wins. Registering twice has no effect."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def landing_url_for(*, user) -> str:
    for resolver in _resolvers:
        url = resolver(user=user)
        if url:
            return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)
