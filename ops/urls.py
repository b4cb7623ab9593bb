from django.urls import path

from ops import views

# Not namespaced: the names are the ops contract (ops-dashboard, ops-figures, metrics).
urlpatterns = [
    path("ops/", views.dashboard, name="ops-dashboard"),
    path("ops/figures", views.figures, name="ops-figures"),
    path("metrics", views.metrics, name="metrics"),
]
