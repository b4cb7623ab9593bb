"""JSON API of the ads studio. Every call is by a signed-in user (token or session) and
sees only the advertisers that user is a member of: another advertiser's campaign, job or
creative is a 404, as if it did not exist.

    GET  /api/ads/campaigns                          the user's campaigns
    POST /api/ads/campaigns                          a new brief (for one of the user's advertisers)
    GET  /api/ads/campaigns/{id}                     the brief and its category decision
    POST /api/ads/campaigns/{id}/drafts   {"n": 8}   202: a draft job, run by a gpu worker
    GET  /api/ads/campaigns/{id}/creatives[?status=draft|approved|rejected]
    GET  /api/ads/campaigns/{id}/export.csv          the approved creatives
    GET  /api/ads/jobs/{id}                          a job's progress and result
    POST /api/ads/creatives/{id}/approve | reject    {"note": "..."}
    POST /api/ads/creatives/{id}/edit                {"headline", "body", "cta", "note"}
    POST /api/ads/performance  {"rows": [{"creative_id", "impressions", "clicks", "day"?}]}
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ads import drafting, review, selectors
from ads.models import AdCreative, Advertiser, Campaign, DraftJob, RegulatedCategory

MAX_PERFORMANCE_ROWS = 5_000


def campaign_data(campaign: Campaign) -> dict:
    return {
        "id": campaign.pk,
        "advertiser": campaign.advertiser.name,
        "name": campaign.name,
        "product": campaign.product,
        "description": campaign.description,
        "audience": campaign.audience,
        "tone": campaign.tone,
        "language": campaign.language,
        "objective": campaign.objective,
        "keywords": campaign.keywords,
        "landing_url": campaign.landing_url,
        "banned_terms": campaign.banned_terms,
        "category": campaign.category,
        "created_at": campaign.created_at.isoformat(),
    }


def job_data(job: DraftJob) -> dict:
    return {
        "id": job.pk,
        "campaign": job.campaign_id,
        "status": job.status,
        "n": job.n,
        "generated": job.generated,
        "kept": job.kept,
        "adapter": job.adapter.name if job.adapter else None,
        "base_model": job.base_model,
        "backend": job.backend,
        "results": job.results,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def creative_data(creative: AdCreative) -> dict:
    return {
        "id": creative.pk,
        "campaign": creative.campaign_id,
        "job": creative.job_id,
        "headline": creative.headline,
        "body": creative.body,
        "cta": creative.cta,
        "status": creative.status,
        "needs_review": creative.needs_review,
        "checks": creative.checks,
        "repairs": creative.repairs,
        "rank": creative.rank,
        "score": creative.score,
        "reasons": creative.reasons,
        "adapter": creative.adapter_name or None,
        "base_model": creative.base_model,
        "seed": creative.seed,
        "decoding": creative.decoding,
        "impressions": creative.impressions,
        "clicks": creative.clicks,
        "reviewed_by": creative.reviewed_by.get_username() if creative.reviewed_by else None,
        "reviewed_at": creative.reviewed_at.isoformat() if creative.reviewed_at else None,
    }


class CampaignSerializer(serializers.ModelSerializer):
    advertiser = serializers.PrimaryKeyRelatedField(queryset=Advertiser.objects.none())
    keywords = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False
    )
    banned_terms = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False
    )
    category = serializers.ChoiceField(
        choices=RegulatedCategory.choices, required=False, allow_blank=True
    )

    class Meta:
        model = Campaign
        fields = ["advertiser", "name", "product", "description", "audience", "tone", "language",
                  "objective", "keywords", "landing_url", "banned_terms", "category"]  # fmt: skip

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:  # None: the schema generator describing the fields
            self.fields["advertiser"].queryset = selectors.advertisers_of(user=user)


class DraftSerializer(serializers.Serializer):
    n = serializers.IntegerField(min_value=1, max_value=drafting.MAX_DRAFTS, default=8)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class EditSerializer(NoteSerializer):
    headline = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=2000)
    cta = serializers.CharField(max_length=40)


class PerformanceRowSerializer(serializers.Serializer):
    creative_id = serializers.IntegerField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    day = serializers.CharField(required=False)


class PerformanceSerializer(serializers.Serializer):
    rows = serializers.ListField(child=serializers.DictField(), max_length=MAX_PERFORMANCE_ROWS)


class CampaignsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="The user's campaigns")
    def get(self, request: Request) -> Response:
        campaigns = selectors.campaigns_visible(user=request.user)[:500]
        return Response({"campaigns": [campaign_data(c) for c in campaigns]})

    @extend_schema(
        request=CampaignSerializer,
        responses={201: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="Bad field")},
        summary="Create a campaign (a brief) for one of the user's advertisers",
    )
    def post(self, request: Request) -> Response:
        serializer = CampaignSerializer(data=request.data, user=request.user)
        serializer.is_valid(raise_exception=True)
        campaign = serializer.save(created_by=request.user)
        return Response(campaign_data(campaign), status=status.HTTP_201_CREATED)


class CampaignView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: None}, summary="One campaign")
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        decision = drafting.campaign_decision(campaign)
        return Response(campaign_data(campaign) | {"category_decision": decision.as_dict()})


class CampaignDraftsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=DraftSerializer,
        responses={
            202: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="Bad n, or a brief that cannot be drafted"),
            403: OpenApiResponse(description="A blocked regulated category"),
            404: None,
        },
        summary="Draft creatives for a campaign (a job for a gpu worker)",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        params = DraftSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            job = drafting.draft_job_create(
                campaign=campaign, user=request.user, n=params.validated_data["n"]
            )
        except drafting.DraftBlocked as exc:
            return Response(
                {"detail": str(exc), "category": exc.decision.as_dict()},
                status=status.HTTP_403_FORBIDDEN,
            )
        except drafting.BriefError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        data = job_data(job) | {"url": reverse("api-ads-job", args=[job.pk])}
        return Response(data, status=status.HTTP_202_ACCEPTED)


class CampaignCreativesView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 404: None}, summary="A campaign's creatives"
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in AdCreative.Status.values:
            allowed = ", ".join(AdCreative.Status.values)
            return Response({"status": [f"expected one of {allowed}"]}, status=400)
        creatives = selectors.campaign_creatives(campaign=campaign, status=wanted)[:1000]
        return Response({"creatives": [creative_data(c) for c in creatives]})


class CampaignExportView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, 404: None},
                   summary="The campaign's approved creatives as CSV")  # fmt: skip
    def get(self, request: Request, campaign_id: int) -> HttpResponse:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        response = HttpResponse(
            review.creatives_export_csv(campaign=campaign), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}.csv"'
        return response


class DraftJobView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: None}, summary="A draft job")
    def get(self, request: Request, job_id: int) -> Response:
        return Response(job_data(selectors.draft_job_for(user=request.user, job_id=job_id)))


class CreativeReviewView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    action = ""  # approve, reject or edit

    @extend_schema(
        request=EditSerializer,
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(description="Bad field"),
            404: None,
            409: OpenApiResponse(description="Refused: a failed check, or needs a reviewer"),
        },
        summary="Approve, reject or edit a creative (audited)",
    )
    def post(self, request: Request, creative_id: int) -> Response:
        creative = selectors.creative_for(user=request.user, creative_id=creative_id)
        serializer_class = EditSerializer if self.action == "edit" else NoteSerializer
        params = serializer_class(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            if self.action == "approve":
                creative = review.creative_approve(
                    creative=creative, user=request.user, note=data["note"]
                )
            elif self.action == "reject":
                creative = review.creative_reject(
                    creative=creative, user=request.user, note=data["note"]
                )
            else:
                creative = review.creative_edit(creative=creative, user=request.user, **data)
        except review.ReviewError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(creative_data(creative))


class PerformanceView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PerformanceSerializer,
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiResponse(description="Not a row list")},
        summary="Import impressions and clicks per creative and day",
    )
    def post(self, request: Request) -> Response:
        params = PerformanceSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        rows = ((f"rows[{i}]", row) for i, row in enumerate(params.validated_data["rows"]))
        report = review.performance_import(rows=rows, user=request.user)
        return Response({"imported": report.imported, "errors": report.errors})
