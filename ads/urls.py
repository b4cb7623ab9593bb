from django.urls import path

from ads import views

app_name = "ads"

urlpatterns = [
    path("ads/adapters", views.adapters, name="adapters"),
    path("ads/training/<int:run_id>", views.training_run, name="training-run"),
    path(
        "ads/training/<int:run_id>/progress",
        views.training_run_progress,
        name="training-run-progress",
    ),
    path("ads/training/<int:run_id>/cancel", views.training_run_cancel, name="training-run-cancel"),
]
