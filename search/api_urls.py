from django.urls import path

from search.api import SearchStatusView, SearchView

urlpatterns = [
    path("search", SearchView.as_view(), name="api-search"),
    path("search/status", SearchStatusView.as_view(), name="api-search-status"),
]
