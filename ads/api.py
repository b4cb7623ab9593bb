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

Bodies are JSON; drafting and the review actions, whose bodies are flat, take HTML forms
too. The schema (/api/schema) documents every answer, errors included; it lists the asking
user's advertisers as the ids a new campaign may name.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import permissions, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ads import briefs, selectors
from ads.models import (
    OWN_BODY_MAX_LENGTH,
    AdCreative,
    Advertiser,
    Campaign,
    DraftJob,
    RegulatedCategory,
)
from ads.services import campaigns, drafting, review
from ops.api_contract import (
    FORM_PARSERS,
    SPACE,
    TEXT,
    TEXT_CHAR,
    VISIBLE_CHAR,
    ErrorSerializer,
    StrictCharField,
    StrictIntegerField,
    StrictPrimaryKeyRelatedField,
    StrictSerializer,
    error_headers,
    errors,
)

MAX_PERFORMANCE_ROWS = 5_000
# A landing page's address: http(s), a host name with a top-level domain, an optional path
# (printable ASCII). Every one passes Django's URLValidator too; the pattern is the rule.
LANDING_URL = (
    r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?:[/?#][!-~]*)?"
)
# Trimmed, at least two words (briefs.Brief's rule), no NUL.
TWO_WORDS = rf"{VISIBLE_CHAR}{TEXT_CHAR}*{SPACE}{TEXT_CHAR}*{VISIBLE_CHAR}"


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
        "own_headline": campaign.own_headline,
        "own_body": campaign.own_body,
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


# --- requests -----------------------------------------------------------------------------


class YourAdvertiserField(StrictPrimaryKeyRelatedField):
    """One of the advertisers the requesting user acts for (staff: any)."""


class YourAdvertiserFieldExtension(OpenApiSerializerFieldExtension):
    """The schema lists the ids of the asking user's advertisers: another id is a 400, so
    the schema says which are valid for whoever reads it."""

    target_class = YourAdvertiserField

    def map_serializer_field(self, auto_schema, direction):
        schema = {"type": "integer", "description": "One of your advertisers' ids."}
        user = getattr(getattr(auto_schema.view, "request", None), "user", None)
        if user is not None and user.is_authenticated:
            ids = list(selectors.advertisers_of(user=user).values_list("pk", flat=True)[:1000])
            if ids:  # none: the operation is a 403 for this user
                schema["enum"] = ids
        return schema


def _thin_description(value: str) -> str:
    """A brief too thin to draft is refused when it is written, not when it is drafted."""
    try:
        briefs.Brief(description=value)
    except briefs.BriefError as exc:
        raise serializers.ValidationError(str(exc).removeprefix("description: ")) from None
    return value


class CampaignSerializer(serializers.ModelSerializer):
    advertiser = YourAdvertiserField(queryset=Advertiser.objects.none())
    name = StrictCharField(max_length=200)
    product = StrictCharField(max_length=200, required=False, allow_blank=True)
    description = StrictCharField(
        core=TWO_WORDS,
        expected="two words at least",
        help_text="What the product is and does, in two words at least.",
        validators=[_thin_description],
    )
    audience = StrictCharField(max_length=300, required=False, allow_blank=True)
    tone = StrictCharField(max_length=100, required=False, allow_blank=True)
    language = StrictCharField(max_length=16, required=False, help_text="Default: en.")
    objective = StrictCharField(max_length=100, required=False, allow_blank=True)
    keywords = serializers.ListField(
        child=StrictCharField(max_length=100), max_length=100, required=False
    )
    landing_url = StrictCharField(
        core=LANDING_URL,
        trim_whitespace=False,
        expected="an http(s) address such as https://example.com/page",
        max_length=200,
        required=False,
        allow_blank=True,
    )
    banned_terms = serializers.ListField(
        child=StrictCharField(max_length=100), max_length=100, required=False
    )
    category = serializers.ChoiceField(
        choices=RegulatedCategory.choices, required=False, allow_blank=True
    )
    own_headline = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Your own headline, if any: Plaza drafts variations of it that keep its facts.",
    )
    own_body = StrictCharField(
        max_length=OWN_BODY_MAX_LENGTH,
        required=False,
        allow_blank=True,
        help_text="Your own post text, if any: Plaza drafts variations of it that keep its facts.",
    )

    class Meta:
        model = Campaign
        fields = ["advertiser", "name", "product", "description", "audience", "tone", "language",
                  "objective", "keywords", "landing_url", "banned_terms", "category",
                  "own_headline", "own_body"]  # fmt: skip

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None:  # None: the schema generator describing the fields
            self.fields["advertiser"].queryset = selectors.advertisers_of(user=user)


class DraftSerializer(StrictSerializer):
    n = StrictIntegerField(min_value=1, max_value=drafting.MAX_DRAFTS, default=8)


class NoteSerializer(StrictSerializer):
    note = StrictCharField(required=False, allow_blank=True, max_length=500, default="")


class EditSerializer(NoteSerializer):
    headline = StrictCharField(max_length=200)
    body = StrictCharField(max_length=2000)
    cta = StrictCharField(max_length=40)


@extend_schema_field(
    {
        "type": "object",
        "description": "One creative's numbers for one day. The fields are read as below; a "
        "row that is wrong (not a whole number, clicks above impressions, a creative that "
        "is not yours) is reported in `errors` and skipped, never refused.",
        "properties": {
            "creative_id": {"description": "The creative's id (a whole number)."},
            "impressions": {"description": f"A whole number, 0 to {review.MAX_DAILY_COUNT}."},
            "clicks": {"description": "A whole number, 0 to impressions."},
            "day": {"description": "YYYY-MM-DD; default today. Importing a day again replaces it."},
        },
    }
)
class PerformanceRowField(serializers.DictField):
    """One row: any JSON object; performance_import reads it and reports what is wrong."""


class PerformanceSerializer(StrictSerializer):
    rows = serializers.ListField(child=PerformanceRowField(), max_length=MAX_PERFORMANCE_ROWS)


class CreativesParamsSerializer(StrictSerializer):
    status = serializers.ChoiceField(
        choices=AdCreative.Status.choices,
        required=False,
        error_messages={"invalid_choice": f"expected one of {', '.join(AdCreative.Status.values)}"},
        help_text="Only the creatives in this state; left out: all of them.",
    )


# --- answers (documentation: campaign_data, job_data and creative_data build them) ---------


class CampaignOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    advertiser = serializers.CharField(help_text="The advertiser's name.")
    name = serializers.CharField()
    product = serializers.CharField()
    description = serializers.CharField()
    audience = serializers.CharField()
    tone = serializers.CharField()
    language = serializers.CharField()
    objective = serializers.CharField()
    keywords = serializers.ListField(child=serializers.CharField())
    landing_url = serializers.CharField()
    banned_terms = serializers.ListField(child=serializers.CharField())
    category = serializers.ChoiceField(choices=RegulatedCategory.choices)
    own_headline = serializers.CharField(help_text="The advertiser's own headline, or empty.")
    own_body = serializers.CharField(help_text="The advertiser's own post text, or empty.")
    created_at = serializers.DateTimeField()


class CategoryDecisionSerializer(serializers.Serializer):
    category = serializers.CharField(help_text="The regulated category the ads fall in, or empty.")
    source = serializers.ChoiceField(
        choices=["declared", "detected", ""], help_text="Declared by the brief, or detected."
    )
    action = serializers.ChoiceField(
        choices=["block", "review"], allow_null=True, help_text="Blocked, extra review, or none."
    )
    matched = serializers.ListField(child=serializers.CharField())
    detected = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Every category the brief's words point at, with the words.",
    )


class CampaignDetailSerializer(CampaignOutSerializer):
    category_decision = CategoryDecisionSerializer()


class CampaignListSerializer(serializers.Serializer):
    campaigns = CampaignOutSerializer(many=True, help_text="Newest first; 500 at most.")


class DraftJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DraftJob.Status.choices)
    n = serializers.IntegerField(help_text="Drafts asked for.")
    generated = serializers.IntegerField(help_text="Candidates the model wrote so far.")
    kept = serializers.IntegerField(help_text="Drafts saved so far.")
    adapter = serializers.CharField(allow_null=True)
    base_model = serializers.CharField()
    backend = serializers.CharField()
    results = serializers.DictField(help_text="Candidates dropped by reason, timings.")
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class DraftJobCreatedSerializer(DraftJobSerializer):
    url = serializers.CharField(help_text="Follow the job here.")


class CreativeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField()
    job = serializers.IntegerField(allow_null=True)
    headline = serializers.CharField()
    body = serializers.CharField()
    cta = serializers.CharField()
    status = serializers.ChoiceField(choices=AdCreative.Status.choices)
    needs_review = serializers.BooleanField(help_text="A regulated category: extra review.")
    checks = serializers.DictField(help_text="Every hard check's result.")
    repairs = serializers.ListField(child=serializers.JSONField(), help_text="What was repaired.")
    rank = serializers.IntegerField(help_text="1 = best of its job.")
    score = serializers.FloatField()
    reasons = serializers.ListField(child=serializers.JSONField(), help_text="Why it ranks so.")
    adapter = serializers.CharField(allow_null=True)
    base_model = serializers.CharField()
    seed = serializers.IntegerField(allow_null=True)
    decoding = serializers.DictField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    reviewed_by = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)


class CreativeListSerializer(serializers.Serializer):
    creatives = CreativeSerializer(many=True, help_text="1000 at most.")


class DraftBlockedSerializer(ErrorSerializer):
    category = CategoryDecisionSerializer()


class PerformanceReportSerializer(serializers.Serializer):
    imported = serializers.IntegerField(help_text="Rows stored.")
    errors = serializers.ListField(
        child=serializers.CharField(), help_text="`rows[i]: field: what is wrong` per bad row."
    )


class CSVRenderer(BaseRenderer):
    """Lets content negotiation accept `Accept: text/csv`; errors are still JSON."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)  # errors only: the export is an HttpResponse


NO_SUCH_CAMPAIGN = "No such campaign of yours (another advertiser's is a 404 too)."
NO_SUCH_CREATIVE = "No such creative of yours (another advertiser's is a 404 too)."


# --- views --------------------------------------------------------------------------------


class CampaignsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=error_headers(),
        responses={200: CampaignListSerializer, **errors()},
        summary="The user's campaigns",
        operation_id="ads_campaigns_retrieve",
    )
    def get(self, request: Request) -> Response:
        campaigns = selectors.campaigns_visible(user=request.user)[:500]
        return Response({"campaigns": [campaign_data(c) for c in campaigns]})

    @extend_schema(
        request=CampaignSerializer,
        parameters=error_headers(),
        responses={
            201: CampaignOutSerializer,
            **errors(
                bad_request="A bad field (an advertiser that is not yours among them): the "
                "field errors.",
                forbidden="The user acts for no advertiser.",
            ),
        },
        summary="Create a campaign (a brief) for one of the user's advertisers",
    )
    def post(self, request: Request) -> Response:
        if not selectors.advertisers_of(user=request.user).exists():
            return Response(
                {"detail": "You act for no advertiser: an advertiser's admin invites members."},
                status=status.HTTP_403_FORBIDDEN,
            )
        serializer = CampaignSerializer(data=request.data, user=request.user)
        serializer.is_valid(raise_exception=True)
        campaign = campaigns.campaign_create(**serializer.validated_data, created_by=request.user)
        return Response(campaign_data(campaign), status=status.HTTP_201_CREATED)


class CampaignView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=error_headers(),
        responses={
            200: CampaignDetailSerializer,
            **errors(not_found=NO_SUCH_CAMPAIGN, path_ids=True),
        },
        summary="One campaign",
        operation_id="ads_campaigns_retrieve_2",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        decision = briefs.campaign_decision(campaign)
        return Response(campaign_data(campaign) | {"category_decision": decision.as_dict()})


class CampaignDraftsView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = FORM_PARSERS

    @extend_schema(
        request=DraftSerializer,
        parameters=error_headers(),
        responses={
            202: DraftJobCreatedSerializer,
            **errors(
                bad_request="A bad n (the field errors), or a brief that cannot be drafted "
                '(`{"detail"}`, naming its field: one saved outside the API).',
                forbidden="A blocked regulated category: the decision in `category`.",
                forbidden_body=DraftBlockedSerializer,
                not_found=NO_SUCH_CAMPAIGN,
                path_ids=True,
            ),
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
        except briefs.DraftBlocked as exc:
            return Response(
                {"detail": str(exc), "category": exc.decision.as_dict()},
                status=status.HTTP_403_FORBIDDEN,
            )
        except briefs.BriefError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        data = job_data(job) | {"url": reverse("api-ads-job", args=[job.pk])}
        return Response(data, status=status.HTTP_202_ACCEPTED)


class CampaignCreativesView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[CreativesParamsSerializer, *error_headers()],
        responses={
            200: CreativeListSerializer,
            **errors(
                bad_request="A bad status: the parameter's error.",
                not_found=NO_SUCH_CAMPAIGN,
                path_ids=True,
            ),
        },
        summary="A campaign's creatives",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        params = CreativesParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        wanted = params.validated_data.get("status")
        creatives = selectors.campaign_creatives(campaign=campaign, status=wanted)[:1000]
        return Response({"creatives": [creative_data(c) for c in creatives]})


class CampaignExportView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("format", exclude=True), *error_headers()],
        responses={
            (200, "text/csv"): OpenApiResponse(
                TEXT, description="The approved creatives, one a row, with a header row."
            ),
            **errors(not_found=NO_SUCH_CAMPAIGN, path_ids=True),
        },
        summary="The campaign's approved creatives as CSV",
    )
    def get(self, request: Request, campaign_id: int) -> HttpResponse:
        campaign = selectors.campaign_for(user=request.user, campaign_id=campaign_id)
        response = HttpResponse(
            review.creatives_export_csv(campaign=campaign), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}.csv"'
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        """An error is JSON, whatever the Accept header asked for."""
        if isinstance(response, Response):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class DraftJobView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=error_headers(),
        responses={
            200: DraftJobSerializer,
            **errors(not_found="No such draft job of yours.", path_ids=True),
        },
        summary="A draft job",
    )
    def get(self, request: Request, job_id: int) -> Response:
        return Response(job_data(selectors.draft_job_for(user=request.user, job_id=job_id)))


def _review_schema(request_serializer, summary: str, refused: str):
    return extend_schema(
        request=request_serializer,
        parameters=error_headers(),
        responses={
            200: CreativeSerializer,
            **errors(
                bad_request="A bad field: the field errors.",
                not_found=NO_SUCH_CREATIVE,
                path_ids=True,
                conflict=refused,
            ),
        },
        summary=summary,
    )


class CreativeReviewView(APIView):
    """approve, reject or edit a creative (audited); each URL its own subclass below."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = FORM_PARSERS
    action = ""  # approve, reject or edit

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


class CreativeApproveView(CreativeReviewView):
    action = "approve"

    @_review_schema(
        NoteSerializer,
        "Approve a creative (audited)",
        "Refused: the creative fails a hard check, or is in a regulated category that "
        "Plaza's ad reviewers approve.",
    )
    def post(self, request: Request, creative_id: int) -> Response:
        return super().post(request, creative_id)


class CreativeRejectView(CreativeReviewView):
    action = "reject"

    @_review_schema(NoteSerializer, "Reject a creative (audited)", "Refused, with the reason.")
    def post(self, request: Request, creative_id: int) -> Response:
        return super().post(request, creative_id)


class CreativeEditView(CreativeReviewView):
    action = "edit"

    @_review_schema(
        EditSerializer,
        "Edit a creative (audited; an approved one goes back to draft)",
        "Refused: the edit fails a hard check (named, with the details).",
    )
    def post(self, request: Request, creative_id: int) -> Response:
        return super().post(request, creative_id)


class PerformanceView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PerformanceSerializer,
        parameters=error_headers(),
        responses={
            200: PerformanceReportSerializer,
            **errors(bad_request='Not `{"rows": [object, ...]}`: the field errors.'),
        },
        summary="Import impressions and clicks per creative and day",
    )
    def post(self, request: Request) -> Response:
        params = PerformanceSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        rows = ((f"rows[{i}]", row) for i, row in enumerate(params.validated_data["rows"]))
        report = review.performance_import(rows=rows, user=request.user)
        return Response({"imported": report.imported, "errors": report.errors})
