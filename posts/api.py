"""JSON API for posts: batch upsert, read, edit, hide, delete. Token (or session) auth;
JSON bodies. The schema (/api/schema) documents every answer, errors included."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops.api_contract import (
    VISIBLE_TEXT_PATTERN,
    ErrorSerializer,
    FieldErrorsSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    error_headers,
    errors,
)
from posts import selectors, services
from posts.ingest import COUNT_MAX, RowError, clean_lang, clean_text, post_row_clean
from posts.models import Post

# --- serializers --------------------------------------------------------------------------

# What the schema shows of a post in a batch: the commonest spelling of each field, all of
# it accepted by posts.ingest.post_row_clean (which also takes the others described).
_HANDLE_PATTERN = r"^@?[!-?A-~](?:[ -~]{0,62}[!-~])?$"  # ASCII; any printable text is taken
_LANG_PATTERN = r"^[a-zA-Z]{2,3}(?:[-_][a-zA-Z0-9]{2,8})?$"
_SOURCE_PATTERN = r"^[-a-zA-Z0-9_]{1,32}$"
_ID_MIN, _ID_MAX = -(10**63 - 1), 10**64 - 1  # at most 64 characters as text


def _created_at_pattern(now: datetime) -> str:
    """RFC 3339 date-times from 1970 through last year with an offset, every day of every
    month valid: never in the future, which post_row_clean refuses."""
    last, tens = now.year - 1, (now.year - 1 - 2000) // 10
    years = [
        "19[7-9][0-9]",
        *([f"20[0-{tens - 1}][0-9]"] if tens else []),
        f"20{tens}[0-{last % 10}]",
    ]
    return (
        rf"^(?:{'|'.join(years)})-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
        r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
        r"(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9])$"
    )


class PostInSerializer(serializers.Serializer):
    """One post in the import schema (documentation: posts.ingest.post_row_clean checks it)."""


class PostInExtension(OpenApiSerializerExtension):
    """PostIn's schema, written out: what post_row_clean takes, field by field."""

    target_class = PostInSerializer

    def get_name(self, auto_schema, direction) -> str:
        return "PostIn"

    def map_serializer(self, auto_schema, direction) -> dict:
        now = timezone.now()
        max_chars = settings.PLAZA_POST_MAX_CHARS
        count = {"type": "integer", "minimum": 0, "maximum": COUNT_MAX, "default": 0}
        return {
            "type": "object",
            "description": "A post. Fields other than these are ignored. A post that breaks a "
            "rule comes back in `rejected` with its field and the reason.",
            "required": ["id", "author", "text", "created_at"],
            "properties": {
                "id": {
                    "description": "The post's id at its source: a string (trimmed; 1-64 "
                    "characters) or an integer. Unique per source: the same id again updates "
                    "the post.",
                    "oneOf": [
                        {"type": "string", "pattern": r"^ *[!-~](?:[ -~]{0,62}[!-~])? *$"},
                        {"type": "integer", "minimum": _ID_MIN, "maximum": _ID_MAX},
                    ],
                },
                "author": {
                    "type": "string",
                    "pattern": _HANDLE_PATTERN,
                    "description": "The author's handle, with or without `@`: any printable "
                    "text of 1-64 characters (trimmed); the pattern shows its ASCII form.",
                },
                "text": {
                    "type": "string",
                    "maxLength": max_chars,
                    "pattern": VISIBLE_TEXT_PATTERN,
                    "description": f"Not only whitespace; at most {max_chars} characters "
                    "(PLAZA_POST_MAX_CHARS).",
                },
                "created_at": {
                    "description": "When it was posted: an ISO 8601 date-time with a UTC offset "
                    "(`2022-01-31T09:30:00+01:00`, `...Z`) or unix seconds; not more than a "
                    "day in the future.",
                    "oneOf": [
                        {"type": "string", "pattern": _created_at_pattern(now)},
                        {"type": "number", "minimum": 0, "maximum": int(now.timestamp())},
                    ],
                },
                "lang": {
                    "type": ["string", "null"],
                    "pattern": _LANG_PATTERN,
                    "description": "A language code: `es`, `en`, `pt-br`, ... (null or left "
                    "out: unknown).",
                },
                "likes": count
                | {"description": "A whole number (also as a string); 0 if left out."},
                "reposts": count | {"description": "As likes."},
                "replies": count | {"description": "As likes."},
                "source": {
                    "type": "string",
                    "pattern": _SOURCE_PATTERN,
                    "description": "1-32 letters, digits, `-` or `_`; default `plaza`.",
                },
            },
        }


class PostBatchInSerializer(serializers.Serializer):
    """Documentation of POST /api/posts's body (the view reads it itself)."""


class PostBatchInExtension(OpenApiSerializerExtension):
    target_class = PostBatchInSerializer

    def get_name(self, auto_schema, direction) -> str:
        return "PostBatchIn"

    def map_serializer(self, auto_schema, direction) -> dict:
        limit = settings.PLAZA_API_MAX_BATCH
        post = auto_schema.resolve_serializer(PostInSerializer, direction).ref
        return {
            "type": "object",
            "required": ["posts"],
            "properties": {
                "posts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": limit,
                    "items": {},
                    "contains": post,
                    "description": f"1 to {limit} posts (PLAZA_API_MAX_BATCH). Each is "
                    "checked on its own: those that are not a valid PostIn come back in "
                    "`rejected` (207), and if none is, nothing is written (400).",
                }
            },
        }


class RejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position in the request's posts list.")
    id = serializers.CharField(allow_null=True, help_text="The post's id, if it had one.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="The field (or non_field_errors) and what is wrong with it.",
    )


class PostRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Plaza's id: /api/posts/{id}.")
    source = serializers.CharField()
    external_id = serializers.CharField()


class PostBatchOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    posts = PostRefSerializer(many=True, help_text="The posts written, in the request's order.")
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


class PostPatchSerializer(StrictSerializer):
    """Edits to one post. Every field is optional."""

    # text: made in __init__, with PLAZA_POST_MAX_CHARS as it is at each request
    lang = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=16,
        core=r"[a-zA-Z]{2,3}(?:[-_][a-zA-Z0-9]{2,8})*",
        trim_whitespace=False,
        expected="a language code such as es or pt-br",
        help_text="A language code (`es`, `pt-br`); empty: unknown.",
    )
    likes = StrictIntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    reposts = StrictIntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    replies = StrictIntegerField(required=False, min_value=0, max_value=COUNT_MAX)
    hidden = StrictBooleanField(required=False, source="is_hidden")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text"] = StrictCharField(
            required=False,
            trim_whitespace=False,
            visible=True,
            max_length=settings.PLAZA_POST_MAX_CHARS,
            help_text="Not only whitespace; at most PLAZA_POST_MAX_CHARS characters.",
        )

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


class PostFilterSerializer(StrictSerializer):
    author = StrictCharField(required=False, max_length=64, help_text="Handle, with or without @.")
    lang = StrictCharField(required=False, max_length=16)
    source = StrictCharField(
        required=False,
        max_length=32,
        core=r"[-a-zA-Z0-9_]+",
        trim_whitespace=False,
        expected="letters, digits, - or _",
    )
    external_id = StrictCharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="Posted at or after.")
    until = serializers.DateTimeField(required=False, help_text="Posted before.")
    include_removed = StrictBooleanField(
        required=False,
        default=False,
        help_text="Hidden and deleted posts too, for moderators (posts.change_post); "
        "ignored for others.",
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
    """Newest first; `page_size` 1 or more (above 500 reads as 500), anything else a 400."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = "Invalid cursor: follow a page's next or previous link."

    def get_page_size(self, request: Request) -> int:
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not value.isascii() or not value.isdigit() or int(value) < 1:
            raise serializers.ValidationError(
                {
                    self.page_size_query_param: [
                        f"expected a whole number from 1, got {value[:20]!r}"
                    ]
                }
            )
        return min(int(value), self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1}
                parameter["description"] = (
                    f"Posts per page, from 1 (default {self.page_size}; more than "
                    f"{self.max_page_size} reads as {self.max_page_size})."
                )
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "The page: from a page's `next` or `previous` link."
        return parameters


NOT_FOUND = (
    "No such post, or not one you may see: readers see visible posts; moderators "
    "(posts.change_post) hidden ones too. A deleted post is gone for everyone."
)


class PostListView(generics.GenericAPIView):
    permission_classes = [PostPermission]
    pagination_class = PostCursorPagination
    serializer_class = PostSerializer

    @extend_schema(
        parameters=[PostFilterSerializer, *error_headers()],
        responses={
            200: PostSerializer(many=True),
            **errors(
                bad_request="A bad filter or page size: the parameters' errors.",
                not_found="The cursor is not one of this list's.",
            ),
        },
        summary="List posts, newest first",
        operation_id="posts_list",
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
        parameters=error_headers(),
        responses={
            201: OpenApiResponse(PostBatchOutSerializer, description="Every post was written."),
            207: OpenApiResponse(
                PostBatchOutSerializer,
                description="Some posts were written; `rejected` says which were not and why.",
            ),
            **errors(
                bad_request='Nothing was written: the body is not `{"posts": [...]}` with 1 to '
                'PLAZA_API_MAX_BATCH posts (`{"posts": [reason]}`), or no post was valid '
                "(the batch result, every post in `rejected`).",
                bad_request_body=PolymorphicProxySerializer(
                    component_name="PostBatchRefused",
                    serializers=[PostBatchOutSerializer, FieldErrorsSerializer, ErrorSerializer],
                    resource_type_field_name=None,
                    many=False,
                ),
                forbidden="Writing needs the posts.add_post and posts.change_post permissions.",
            ),
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
        for index, item in enumerate(map(_whole_number_id, items)):
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


def _whole_number_id(item: object) -> object:
    """An id sent as 7.0 is the integer 7: JSON has one kind of number (and the schema's
    integer takes it)."""
    if isinstance(item, dict) and isinstance(item.get("id"), float) and item["id"].is_integer():
        return item | {"id": int(item["id"])}
    return item


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)[:64]


class PostDetailView(APIView):
    permission_classes = [PostPermission]
    serializer_class = PostSerializer

    def get_post(self, request: Request, pk: int) -> Post:
        """A visible post; for a moderator, a hidden one too. A deleted post is a 404 for
        everyone (moderators are told it is deleted), except to PATCH and DELETE: editing
        it is a 409, deleting it again a 204."""
        moderator = can_moderate(request)
        post = get_object_or_404(selectors.post_queryset(include_removed=moderator), pk=pk)
        if post.deleted_at is not None and request.method == "GET":
            raise NotFound("This post is deleted.")
        return post

    @extend_schema(
        parameters=error_headers(),
        responses={200: PostSerializer, **errors(not_found=NOT_FOUND, path_ids=True)},
        summary="Read one post",
        operation_id="posts_retrieve",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(PostSerializer(self.get_post(request, pk)).data)

    @extend_schema(
        request=PostPatchSerializer,
        parameters=error_headers(),
        responses={
            200: PostSerializer,
            **errors(
                bad_request="A field that cannot be set so: the fields' errors.",
                forbidden="Editing needs the posts.change_post permission.",
                not_found=NOT_FOUND,
                path_ids=True,
                conflict="The post is deleted; deleted posts cannot be edited.",
            ),
        },
        summary="Edit, hide or unhide",
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

    @extend_schema(
        parameters=error_headers(),
        responses={
            204: OpenApiResponse(description="Deleted (also when it already was)."),
            **errors(
                forbidden="Deleting needs the posts.delete_post permission.",
                not_found=NOT_FOUND,
                path_ids=True,
            ),
        },
        summary="Delete a post",
    )
    def delete(self, request: Request, pk: int) -> Response:
        post = self.get_post(request, pk)
        services.post_delete(post_ids=[post.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)
