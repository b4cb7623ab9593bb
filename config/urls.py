from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ops.views import healthz

admin.site.site_header = "Plaza administration"
admin.site.site_title = "Plaza admin"

urlpatterns = [
    path("", include("posts.urls")),
    path("", include("search.urls")),
    path("", include("ads.urls")),
    path("", include("accounts.urls")),
    path("", include("ops.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("posts.api_urls")),
    path("api/", include("search.api_urls")),
    path("api/", include("ads.api_urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
]
