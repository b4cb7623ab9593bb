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
    path("ads/studio", views.studio, name="studio"),
    path("ads/members/invite", views.member_invite, name="member-invite"),
    path("ads/campaigns/<int:campaign_id>", views.campaign, name="campaign"),
    path("ads/campaigns/<int:campaign_id>/export.csv", views.campaign_export, name="export"),
    path(
        "ads/campaigns/<int:campaign_id>/performance",
        views.performance_upload,
        name="performance",
    ),
    path("ads/jobs/<int:job_id>/progress", views.draft_job_progress, name="job-progress"),
    path(
        "ads/creatives/<int:creative_id>/<str:action>",
        views.creative_review,
        name="creative-review",
    ),
]
