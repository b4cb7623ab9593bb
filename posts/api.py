"""JSON API for posts: batch upsert, read, edit, hide, delete. Token auth."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from posts import selectors, services
from posts.ingest import COUNT_MAX, RowError, clean_lang, clean_text, post_row_clean
from posts.models import Post

# --- serializers --------------------------------------------------------------------------


class PostInSerializer(serializers.Serializer):
    """One post in the import schema. Checked by posts.ingest.post_row_clean."""

    id = serializers.CharField(max_length=64, help_text="The post's id at its source.")
    author = serializers.CharField(max_length=64, help_text="Author handle, without @.")
    text = serializers.CharField()
    created_at = serializers.DateTimeField(help_text="ISO 8601 with a UTC offset.")
    lang = serializers.CharField(required=False, allow_blank=True)
    likes = serializers.IntegerField(required=False, min_value=0)
    reposts = serializers.IntegerField(required=False, min_value=0)
    replies = serializers.IntegerField(required=False, min_value=0)
    source = serializers.SlugField(required=False, max_length=32, help_text="Default: plaza.")


class PostBatchInSerializer(serializers.Serializer):
    posts = PostInSerializer(many=True)


class RejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request's posts list.")
    id = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class PostRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    external_id = serializers.CharField()


class PostBatchOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    posts = PostRefSerializer(many=True)
    rejected = RejectedSerializer(many=True)


class PostSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.handle", read_only=True)
    hidden = serializers.BooleanField(source="is_hidden", read_only=True)
    deleted = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = [
            "id",
            "source",
            "external_id",
            "author",
            "text",
            "lang",
            "created_at",
            "likes",
            "reposts",
            "replies",
            "hidden",
            "deleted",
            "ingested_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_deleted(self, post: Post) -> bool:
        return post.deleted_at is not None


class PostPatchSerializer(serializers.Serializer):
    """Edits to one post. Every field is optional."""

    text = serializers.CharField(required=False, trim_whitespace=False)
    lang = serializers.CharField(required=False, allow_blank=True)
    likes = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    reposts = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    replies = serializers.IntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    hidden = serializers.BooleanField(required=False, source="is_hidden")

    def validate_text(self, value: str) -> str:
        return _checked(clean_text, value, max_chars=settings.PLAZA_POST_MAX_CHARS)

    def validate_lang(self, value: str) -> str:
        return _checked(clean_lang, value)


def _checked(clean, value, **options):
    """Run one of posts.ingest's field checks, as a DRF validation error."""
    try:
        return clean(value, **options)
    except RowError as exc:
        raise serializers.ValidationError(exc.reason) from None


class PostFilterSerializer(serializers.Serializer):
    author = serializers.CharField(required=False, max_length=64)
    lang = serializers.CharField(required=False, max_length=16)
    source = serializers.SlugField(required=False, max_length=32)
    external_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    include_removed = serializers.BooleanField(
        required=False, default=False, help_text="Hidden and deleted posts too (moderators)."
    )


# --- permissions --------------------------------------------------------------------------


class PostPermission(permissions.BasePermission):
    """Any signed-in user reads; writing needs the model permissions (staff, ingest tokens)."""

    required = {
        "POST": ["posts.add_post", "posts.change_post"],
        "PATCH": ["posts.change_post"],
        "PUT": ["posts.change_post"],
        "DELETE": ["posts.delete_post"],
    }

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.user.has_perms(self.required.get(request.method, []))


def can_moderate(request: Request) -> bool:
    return request.user.has_perm("posts.change_post")


# --- views --------------------------------------------------------------------------------


class PostCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500


class PostListView(generics.GenericAPIView):
    permission_classes = [PostPermission]
    pagination_class = PostCursorPagination
    serializer_class = PostSerializer

    @extend_schema(
        parameters=[PostFilterSerializer],
        responses=PostSerializer(many=True),
        summary="List posts, newest first",
    )
    def get(self, request: Request) -> Response:
        query = PostFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        include_removed = filters.pop("include_removed") and can_moderate(request)
        posts: QuerySet[Post] = selectors.post_list(include_removed=include_removed, **filters)
        page = self.paginate_queryset(posts)
        return self.get_paginated_response(PostSerializer(page, many=True).data)

    @extend_schema(
        request=PostBatchInSerializer,
        responses={
            201: OpenApiResponse(PostBatchOutSerializer, description="Every post was written."),
            207: OpenApiResponse(
                PostBatchOutSerializer,
                description="Some posts were written; `rejected` says which were not and why.",
            ),
            400: OpenApiResponse(description="Nothing was written: see the field errors."),
        },
        summary="Create or update posts in a batch",
    )
    def post(self, request: Request) -> Response:
        payload = request.data
        items = payload.get("posts") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            return Response(
                {"posts": ['Send a JSON object with a list of posts: {"posts": [...]}.']},
                status=status.HTTP_400_BAD_REQUEST,
            )
        limit = settings.PLAZA_API_MAX_BATCH
        if not items or len(items) > limit:
            return Response(
                {"posts": [f"Send between 1 and {limit} posts; got {len(items)}."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        rows, rejected = [], []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                rejected.append(
                    {"index": index, "id": None, "errors": {"non_field_errors": ["not an object"]}}
                )
                continue
            try:
                rows.append(
                    post_row_clean(item, source="plaza", max_chars=settings.PLAZA_POST_MAX_CHARS)
                )
            except RowError as exc:
                field = exc.field or "non_field_errors"
                rejected.append(
                    {
                        "index": index,
                        "id": _str_or_none(item.get("id")),
                        "errors": {field: [exc.reason]},
                    }
                )
        if not rows:
            return Response(
                {"created": 0, "updated": 0, "posts": [], "rejected": rejected},
                status=status.HTTP_400_BAD_REQUEST,
            )
        counts = services.post_upsert_many(rows=rows)
        refs = selectors.post_refs(post_ids=counts.post_ids)
        # In the order of the request, each post once.
        keys = dict.fromkeys((row.source, row.external_id) for row in rows)
        body = {
            "created": counts.created,
            "updated": counts.updated,
            "posts": [refs[key] for key in keys],
            "rejected": rejected,
        }
        return Response(body, status=status.HTTP_207_MULTI_STATUS if rejected else 201)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)[:64]


class PostDetailView(APIView):
    permission_classes = [PostPermission]
    serializer_class = PostSerializer

    def get_post(self, request: Request, pk: int) -> Post:
        queryset = selectors.post_queryset(include_removed=can_moderate(request))
        return get_object_or_404(queryset, pk=pk)

    @extend_schema(responses=PostSerializer, summary="Read one post")
    def get(self, request: Request, pk: int) -> Response:
        return Response(PostSerializer(self.get_post(request, pk)).data)

    @extend_schema(
        request=PostPatchSerializer, responses=PostSerializer, summary="Edit, hide or unhide"
    )
    def patch(self, request: Request, pk: int) -> Response:
        post = self.get_post(request, pk)
        if post.deleted_at is not None:
            return Response(
                {"detail": "This post is deleted; deleted posts cannot be edited."},
                status=status.HTTP_409_CONFLICT,
            )
        changes = PostPatchSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        post = services.post_update(post=post, changes=changes.validated_data)
        return Response(PostSerializer(post).data)

    @extend_schema(responses={204: None}, summary="Delete a post")
    def delete(self, request: Request, pk: int) -> Response:
        post = self.get_post(request, pk)
        services.post_delete(post_ids=[post.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)
