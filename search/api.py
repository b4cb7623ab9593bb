"""JSON API for search: hybrid search with X-style operators, and the index's ops figures.

    GET /api/search?q=vacunas lang:es&k=10&offset=0&recency=1
    GET /api/search/status            (staff)

Any signed-in user (token or session) may search; the status is for staff.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from search import selectors
from search.query import MAX_QUERY_CHARS, QueryError, parse_query
from search.selectors import MAX_K, SearchHit

MAX_OFFSET = 10_000  # deeper pages cost a deeper candidate list on every request

# --- serializers --------------------------------------------------------------------------


class SearchParamsSerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=MAX_QUERY_CHARS,
        help_text="Words and operators: from:handle lang:es since:YYYY-MM-DD until:YYYY-MM-DD "
        '"exact phrase" -word.',
    )
    k = serializers.IntegerField(
        required=False, default=10, min_value=1, max_value=MAX_K, help_text="Results per page."
    )
    offset = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_OFFSET,
        help_text="Results to skip: the previous page's next_offset.",
    )
    recency = serializers.BooleanField(
        required=False, default=False, help_text="Boost newer posts (1) or not (0)."
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


class ErrorsSerializer(serializers.Serializer):
    q = serializers.ListField(child=serializers.CharField(), required=False)


# --- views --------------------------------------------------------------------------------


class SearchView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[SearchParamsSerializer],
        responses={
            200: SearchResponseSerializer,
            400: OpenApiResponse(
                ErrorsSerializer,
                description="A bad parameter or a malformed operator: the field errors.",
            ),
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
        responses={200: OpenApiTypes.OBJECT},
        summary="The index's ops figures (staff)",
        description="Queue size, freshness lag, and the live generation's vectors, segments, "
        "tombstones, BM25 build and last reconcile; `building` while a rebuild runs.",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.index_figures())
