from django.urls import path

from ads import api

urlpatterns = [
    path("ads/campaigns", api.CampaignsView.as_view(), name="api-ads-campaigns"),
    path("ads/campaigns/<int:campaign_id>", api.CampaignView.as_view(), name="api-ads-campaign"),
    path(
        "ads/campaigns/<int:campaign_id>/drafts",
        api.CampaignDraftsView.as_view(),
        name="api-ads-drafts",
    ),
    path(
        "ads/campaigns/<int:campaign_id>/creatives",
        api.CampaignCreativesView.as_view(),
        name="api-ads-creatives",
    ),
    path(
        "ads/campaigns/<int:campaign_id>/export.csv",
        api.CampaignExportView.as_view(),
        name="api-ads-export",
    ),
    path("ads/jobs/<int:job_id>", api.DraftJobView.as_view(), name="api-ads-job"),
    path(
        "ads/creatives/<int:creative_id>/approve",
        api.CreativeApproveView.as_view(),
        name="api-ads-approve",
    ),
    path(
        "ads/creatives/<int:creative_id>/reject",
        api.CreativeRejectView.as_view(),
        name="api-ads-reject",
    ),
    path(
        "ads/creatives/<int:creative_id>/edit",
        api.CreativeEditView.as_view(),
        name="api-ads-edit",
    ),
    path("ads/performance", api.PerformanceView.as_view(), name="api-ads-performance"),
]
