"""Sign in, sign out and password change for every user (Django's auth views with Plaza's
templates), accepting an invitation, and the page a locked-out sign-in gets."""

from __future__ import annotations

from datetime import timedelta

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from accounts import selectors, services
from accounts.landing import landing_url_for
from accounts.tokens import InvitationError

# Template names of Plaza's own: registration/password_change_form.html and its kin are
# the admin's, and one of those names here would restyle the admin's pages too.


class SignInView(auth_views.LoginView):
    """Django's LoginView; with no ?next= the user lands where accounts.landing says."""

    template_name = "registration/login.html"

    def get_default_redirect_url(self) -> str:
        return landing_url_for(user=self.request.user)


class SignOutView(auth_views.LogoutView):
    """POST only (Django's LogoutView), then the sign-in page saying so."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


password_change = auth_views.PasswordChangeView.as_view(
    template_name="registration/password_change.html",
    success_url=reverse_lazy("accounts:password_change_done"),
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="registration/password_changed.html"
)


@sensitive_post_parameters("new_password1", "new_password2")
@never_cache
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee chooses a password; the account is activated, signed in and sent to
    its landing page (the studio for an advertiser's member). A bad, expired or used link
    says which."""
    try:
        invitee = selectors.invitation_user(token=token)
    except InvitationError as exc:
        return render(request, "registration/invitation.html", {"problem": str(exc)}, status=400)
    form = SetPasswordForm(invitee, request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user = services.invitation_accept(
                user=invitee, password=form.cleaned_data["new_password1"]
            )
        except InvitationError as exc:
            return render(
                request, "registration/invitation.html", {"problem": str(exc)}, status=400
            )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.info(request, f"Welcome, {user.get_username()}: your account is ready.")
        return redirect(landing_url_for(user=user))
    status = 400 if form.errors else 200
    context = {"form": form, "invitee": invitee}
    return render(request, "registration/invitation.html", context, status=status)


def lockout(
    request: HttpRequest, response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE): too many failed sign-ins for
    this username from this address; says when to try again. 429 with Retry-After."""
    cool_off: timedelta | None = get_cool_off(request)
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": round(cool_off.total_seconds() / 60) if cool_off else None,
        "retry_at": timezone.now() + cool_off if cool_off else None,
    }
    page = render(
        request, "registration/lockout.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
    if cool_off:
        page["Retry-After"] = str(int(cool_off.total_seconds()))
    return page
