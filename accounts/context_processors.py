from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import resolve_url


def sign_in(request: HttpRequest) -> dict[str, str]:
    """`sign_in_url` for the header: the sign-in page, coming back to this page after, except
    from the front page or an accounts page, where signing in lands where
    accounts.landing says (a member on the studio)."""
    login_url = resolve_url(settings.LOGIN_URL)
    on_accounts_page = getattr(request.resolver_match, "app_name", "") == "accounts"
    if request.path == "/" or on_accounts_page:
        return {"sign_in_url": login_url}
    return {"sign_in_url": f"{login_url}?{urlencode({'next': request.get_full_path()})}"}
