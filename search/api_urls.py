from django.urls import path

from search.api.answers import AnswerEventsView, AnswerFeedbackView, AnswersView, AnswerView
from search.api.search import SearchStatusView, SearchView

urlpatterns = [
    path("search", SearchView.as_view(), name="api-search"),
    path("search/status", SearchStatusView.as_view(), name="api-search-status"),
    path("answers", AnswersView.as_view(), name="api-answers"),
    path("answers/<uuid:answer_id>", AnswerView.as_view(), name="api-answer"),
    path("answers/<uuid:answer_id>/events", AnswerEventsView.as_view(), name="api-answer-events"),
    path(
        "answers/<uuid:answer_id>/feedback",
        AnswerFeedbackView.as_view(),
        name="api-answer-feedback",
    ),
]
