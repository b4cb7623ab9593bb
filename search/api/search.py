"""JSON API for search: hybrid search with X-style operators, and the index's ops figures.

    GET /api/search?q=vacunas lang:es&k=10&offset=0&recency=1
    GET /api/search/status            (staff)

Any signed-in user (token or session) may search; the status is for staff. The schema
(/api/schema) documents every answer, errors included.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops.api_contract import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    error_headers,
    errors,
)
from search import selectors
from search.query import MAX_QUERY_CHARS, QueryError, parse_query
from search.selectors import MAX_K, SearchHit

MAX_OFFSET = 10_000  # deeper pages cost a deeper candidate list on every request

# --- serializers --------------------------------------------------------------------------


class SearchParamsSerializer(StrictSerializer):
    q = StrictCharField(
        max_length=MAX_QUERY_CHARS,
        help_text="Words and operators: from:handle lang:es since:YYYY-MM-DD until:YYYY-MM-DD "
        '"exact phrase" -word. A malformed operator is a 400 that names it.',
    )
    k = StrictIntegerField(
        required=False, default=10, min_value=1, max_value=MAX_K, help_text="Results per page."
    )
    offset = StrictIntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_OFFSET,
        help_text="Results to skip: the previous page's next_offset.",
    )
    recency = StrictBooleanField(
        required=False, default=False, help_text="Boost newer posts (1, true) or not (0, false)."
    )


class SearchHitSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="post.pk")
    external_id = serializers.CharField(source="post.external_id")
    source = serializers.CharField(source="post.source")
    author = serializers.CharField(source="post.author.handle")
    text = serializers.CharField(source="post.text")
    lang = serializers.CharField(source="post.lang")
    created_at = serializers.DateTimeField(source="post.created_at")
    likes = serializers.IntegerField(source="post.likes")
    reposts = serializers.IntegerField(source="post.reposts")
    replies = serializers.IntegerField(source="post.replies")
    url = serializers.SerializerMethodField(help_text="The post's public page.")
    score = serializers.FloatField(help_text="Fused score (after the recency boost, if asked).")
    found_by = serializers.ListField(
        child=serializers.CharField(), help_text='Methods that retrieved it: "dense", "bm25".'
    )
    ranks = serializers.DictField(child=serializers.IntegerField(), help_text="Rank per method.")
    method_scores = serializers.DictField(
        child=serializers.FloatField(), help_text="Cosine for dense, BM25 score for bm25."
    )
    matched_terms = serializers.ListField(
        child=serializers.CharField(), help_text="Query words found in the post (folded)."
    )

    def get_url(self, hit: SearchHit) -> str:
        path = reverse("posts:detail", args=[hit.post.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class SearchFiltersSerializer(serializers.Serializer):
    phrases = serializers.ListField(child=serializers.CharField())
    excluded = serializers.ListField(child=serializers.CharField())
    authors = serializers.ListField(child=serializers.CharField())
    lang = serializers.CharField(allow_null=True)
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True, help_text="Posts before this day.")


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    filters = SearchFiltersSerializer(help_text="The operators, as parsed.")
    generation = serializers.CharField(allow_null=True, help_text="The index generation read.")
    query_lang = serializers.CharField(allow_null=True)
    weights = serializers.DictField(child=serializers.FloatField(), help_text="Fusion weights.")
    results = SearchHitSerializer(many=True)
    next_offset = serializers.IntegerField(
        allow_null=True, help_text="The offset of the next page; null on the last."
    )
    timings_ms = serializers.DictField(child=serializers.FloatField())


class BuildingSerializer(serializers.Serializer):
    name = serializers.CharField()
    embed_model = serializers.CharField()
    posts_done = serializers.IntegerField()
    posts_total = serializers.IntegerField()


class SegmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    factory = serializers.CharField(help_text="The FAISS factory string it was built with.")
    count = serializers.IntegerField(help_text="Vectors in it, tombstoned ones included.")
    min_ts = serializers.IntegerField(help_text="Its oldest post's time, unix seconds.")
    max_ts = serializers.IntegerField(help_text="Its newest post's time, unix seconds.")
    tombstones = serializers.IntegerField()


class GenerationFiguresSerializer(serializers.Serializer):
    """The live generation's figures; segments and BM25 builds are the faiss backend's,
    partitions and table size the postgres backend's (absent on the other)."""

    name = serializers.CharField()
    backend = serializers.ChoiceField(
        choices=["faiss", "postgres"], help_text="PLAZA_SEARCH_BACKEND: where the index lives."
    )
    embed_model = serializers.CharField(help_text="The encoder this generation was built with.")
    configured_model = serializers.CharField(help_text="PLAZA_EMBED_MODEL now.")
    dim = serializers.IntegerField()
    activated_at = serializers.DateTimeField(allow_null=True)
    last_flush_at = serializers.DateTimeField(allow_null=True)
    last_flush_posts = serializers.IntegerField()
    last_flush_ms = serializers.FloatField()
    last_flush_lag_s = serializers.FloatField()
    bm25_docs = serializers.IntegerField()
    bm25_built_at = serializers.DateTimeField(allow_null=True, required=False)
    bm25_build_ms = serializers.FloatField(required=False)
    reconciled_at = serializers.DateTimeField(allow_null=True)
    reconcile_report = serializers.DictField(help_text="The last reconcile's counts.")
    vectors = serializers.IntegerField()
    sealed_segments = serializers.IntegerField(required=False)
    active_vectors = serializers.IntegerField(required=False)
    tombstones = serializers.IntegerField(required=False)
    segments = SegmentSerializer(many=True, required=False, help_text="The sealed segments.")
    partitions = serializers.IntegerField(required=False, help_text="The table's time partitions.")
    table_bytes = serializers.IntegerField(required=False, help_text="The table with its indexes.")


class IndexFiguresSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="Changes waiting to be indexed.")
    freshness_lag_s = serializers.FloatField(
        help_text="Age of the oldest change not yet searchable (0 with none waiting)."
    )
    generation = GenerationFiguresSerializer(
        allow_null=True, help_text="The live generation; null before the first is built."
    )
    building = BuildingSerializer(
        required=False, help_text="Only while a new generation is being built."
    )


# --- views --------------------------------------------------------------------------------


class SearchView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[SearchParamsSerializer, *error_headers()],
        responses={
            200: SearchResponseSerializer,
            **errors(bad_request="A bad parameter or a malformed operator: the field errors."),
        },
        summary="Search posts (hybrid dense + BM25, X-style operators)",
    )
    def get(self, request: Request) -> Response:
        params = SearchParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        options = params.validated_data
        try:
            parsed = parse_query(options["q"])
            results = selectors.search_posts(
                query=parsed, k=options["k"], offset=options["offset"], recency=options["recency"]
            )
        except QueryError as exc:
            return Response({"q": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        body = {
            "query": options["q"],
            "filters": parsed.filters,
            "generation": results.generation,
            "query_lang": results.query_lang,
            "weights": results.weights,
            "results": results.hits,
            "next_offset": results.next_offset,
            "timings_ms": results.timings_ms,
        }
        return Response(SearchResponseSerializer(body, context={"request": request}).data)


class SearchStatusView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        parameters=error_headers(),
        responses={200: IndexFiguresSerializer, **errors(forbidden="For staff only.")},
        summary="The index's ops figures (staff)",
        description="Queue size, freshness lag, and the live generation's vectors, segments, "
        "tombstones, BM25 build and last reconcile; `building` while a rebuild runs.",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.index_figures())
