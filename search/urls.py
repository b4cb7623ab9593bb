from django.urls import path

from search import views

app_name = "search"
urlpatterns = [
    path("search", views.search, name="search"),
    path("search/answers", views.answer_create_view, name="answer-create"),
    path(
        "search/answers/<uuid:answer_id>/feedback",
        views.answer_feedback_view,
        name="answer-feedback",
    ),
]
