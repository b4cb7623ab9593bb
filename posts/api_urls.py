from django.urls import path

from posts.api import PostDetailView, PostListView

urlpatterns = [
    path("posts", PostListView.as_view(), name="api-posts"),
    path("posts/<int:pk>", PostDetailView.as_view(), name="api-post"),
]
