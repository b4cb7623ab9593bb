from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("accounts/password_change/", views.password_change, name="password_change"),
    path(
        "accounts/password_change/done/",
        views.password_change_done,
        name="password_change_done",
    ),
    path("accounts/invitation/<str:token>/", views.invitation_accept, name="invitation"),
]
