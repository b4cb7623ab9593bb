"""The JSON API's contract, shared by the posts, search and ads APIs.

The OpenAPI schema at /api/schema is generated from these pieces, so that it says exactly
what the views accept and answer (tests/test_api_contract.py runs schemathesis against it):

- Strict request fields. DRF's own fields coerce: "5" becomes an integer, 1 becomes true,
  a number becomes a string. These take only the JSON type the schema names (in a query
  string or an HTML form, where every value is text, the spelling of one).
- `StrictCharField`'s schema spells out DRF's trimming: a `pattern` that allows leading
  and trailing whitespace around a value of the documented length (DRF measures a value
  after trimming it), and no NUL (DRF refuses it).
- `StrictSerializer`: a query parameter or form field given empty (`until=`) is an error
  that names it, never read as "left out".
- `StrictMultiPartParser`: a multipart body with no named field is refused, not read as
  an empty form.
- The error bodies, `Error` (`{"detail": "..."}`) and `FieldErrors`
  (`{"field": ["message", ...]}`); `errors()` documents an operation's error answers and
  `error_headers()` their headers.

posts, search and ads import this (search and ads never each other); it imports no app.
"""

from __future__ import annotations

import io
import re
from typing import Any

from django.utils.http import parse_header_parameters
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.utils import html

TEXT = OpenApiTypes.STR
EMPTY_MESSAGE = "is empty: give a value, or leave the parameter out"

# The characters of text patterns, named one by one: regular expression engines disagree on
# \s (ECMA-262's, which JSON Schema validators use, leaves out \x1c-\x1f and U+0085 that
# Python's str.strip() trims, and takes U+FEFF that it keeps). These are Python's
# whitespace, as str.isspace() says. NUL: DRF refuses it anywhere in a value.
_WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE = rf"[{_WHITESPACE}]"
VISIBLE_CHAR = rf"[^{_WHITESPACE}\x00]"  # the first and last character of a trimmed value
TEXT_CHAR = r"[^\x00]"
# Not only whitespace, taken as sent.
VISIBLE_TEXT_PATTERN = rf"^{TEXT_CHAR}*{VISIBLE_CHAR}{TEXT_CHAR}*$"


def trimmed_text_pattern(*, min_length: int | None, max_length: int | None, blank: bool) -> str:
    """The pattern of a value that DRF trims, then measures: any whitespace, then 1 (or
    `min_length`) to `max_length` characters that start and end with a visible one, then
    any whitespace; with `blank`, whitespace alone too. Plain regular expression syntax
    (no lookarounds), so generators and other languages read it alike."""
    low = max(min_length or 1, 1)
    if max_length is not None and max_length < low:
        raise ValueError(f"max_length {max_length} is below min_length {low}")
    middle = f"{{{max(low - 2, 0)},{'' if max_length is None else max_length - 2}}}"
    if max_length == 1:
        core = VISIBLE_CHAR
    elif low <= 1:
        core = f"{VISIBLE_CHAR}(?:{TEXT_CHAR}{middle}{VISIBLE_CHAR})?"
    else:
        core = f"{VISIBLE_CHAR}{TEXT_CHAR}{middle}{VISIBLE_CHAR}"
    return _around(core, trimmed=True, blank=blank)


def _around(core: str, *, trimmed: bool, blank: bool) -> str:
    """The pattern of `core`, with the whitespace DRF trims around it, and for a field
    that allows blank text, whitespace alone. Never the empty string: drf-spectacular
    offers that as its own `oneOf` branch (`maxLength: 0`), which must not overlap."""
    if not trimmed:
        return f"^(?:{core})$"
    alone = f"{SPACE}+|" if blank else ""
    return f"^(?:{alone}{SPACE}*(?:{core}){SPACE}*)$"


def _from_form(field: serializers.Field) -> bool:
    """Whether the field's data came as a query string or an HTML form (text values)."""
    return bool(getattr(field.root, "from_form", False))


class StrictSerializer(serializers.Serializer):
    """A serializer for query parameters or a body: a parameter or form field that is
    present but empty is refused by name, unless its field allows blank text."""

    def to_internal_value(self, data: Any) -> Any:
        self.from_form = html.is_html_input(data)
        if self.from_form:
            empty = {
                name: [EMPTY_MESSAGE]
                for name, field in self.fields.items()
                if not field.read_only
                and data.get(name) == ""
                and not getattr(field, "allow_blank", False)
            }
            if empty:
                raise serializers.ValidationError(empty)
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string, never a number or boolean turned into one.

    `core`: a regular expression the whole value (trimmed, unless `trim_whitespace=False`)
    must match; `expected` says it in words. Codes, slugs and URLs take
    `trim_whitespace=False`: surrounding whitespace there is a mistake to report.
    `visible`: a value that is not trimmed must still hold a non-whitespace character.
    """

    default_error_messages = {
        "invalid": "Not a valid string.",
        "format": "{value!r} is not {expected}.",
        "invisible": "This field may not be blank.",
    }

    def __init__(
        self, *, core: str | None = None, expected: str = "", visible: bool = False, **kwargs
    ):
        trimmed = kwargs.get("trim_whitespace", True)
        if trimmed and core is not None and ("max_length" in kwargs or "min_length" in kwargs):
            # The schema could say the pattern or the length after trimming, not both.
            raise ValueError("a trimmed field with a core pattern cannot also have a length")
        # A trimmed value's length is checked here, after trimming, and the schema's pattern
        # says it: DRF's length validators would add maxLength, which counts before.
        self.text_max_length = kwargs.pop("max_length", None) if trimmed else None
        self.text_min_length = kwargs.pop("min_length", None) if trimmed else None
        super().__init__(**kwargs)
        self.core = core
        self.expected = expected or f"in the form {core}"
        self.visible = visible
        if trimmed:
            self.max_length, self.min_length = self.text_max_length, self.text_min_length

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if self.text_max_length is not None and len(value) > self.text_max_length:
            self.fail("max_length", max_length=self.text_max_length)
        if self.text_min_length is not None and len(value) < self.text_min_length:
            self.fail("min_length", min_length=self.text_min_length)
        if self.visible and not value.strip():
            self.fail("invisible")
        if self.core is not None and value and not re.fullmatch(self.core, value):
            self.fail("format", value=value[:40], expected=self.expected)
        return value


class StrictIntegerField(serializers.IntegerField):
    """An integer: a JSON number without a fraction, never a string or a boolean (in a
    query string or form: its digits, with a minus sign if it has one; not " 5", "5.0" or
    "1_000", which Python's int() would read)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str) and not (_from_form(self) and re.fullmatch(r"-?[0-9]+", data)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false: a JSON boolean (in a query string or form: true, false, 1 or 0, in
    any case), never 0, "yes" or "on"."""

    FORM_VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and _from_form(self) and data.lower() in self.FORM_VALUES:
            return self.FORM_VALUES[data.lower()]
        self.fail("invalid", input=data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An object's id: a JSON integer (7.0 is 7), never "7", 7.5 or true."""

    def to_internal_value(self, data: Any) -> Any:
        whole = isinstance(data, int) or (isinstance(data, float) and data.is_integer())
        if isinstance(data, bool) or not whole:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(int(data))


class StrictMultiPartParser(MultiPartParser):
    """multipart/form-data that is a form: a body with content but no named field (parts
    without a Content-Disposition name, text around them) is refused, not read as an
    empty form. An empty form (the closing boundary alone) is one."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        parsed = super().parse(io.BytesIO(body), media_type, parser_context)
        _, params = parse_header_parameters(media_type or "")
        empty_form = b"--" + params.get("boundary", "").encode("latin-1", "replace") + b"--"
        if not parsed.data and not parsed.files and body.strip() not in (b"", empty_form):
            raise ParseError("Multipart form parse error - the body holds no named field")
        return parsed


# For a view whose body is flat (a few scalars): JSON, or an HTML form either way.
FORM_PARSERS = [JSONParser, FormParser, StrictMultiPartParser]


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    """StrictCharField's request schema: the pattern of what it takes (module docstring)."""

    target_class = StrictCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field: StrictCharField = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if direction == "response" or field.read_only or "format" in schema:
            return schema
        if field.core is not None:
            schema["pattern"] = _around(
                field.core, trimmed=field.trim_whitespace, blank=field.allow_blank
            )
        elif field.trim_whitespace:
            schema["pattern"] = trimmed_text_pattern(
                min_length=field.text_min_length,
                max_length=field.text_max_length,
                blank=field.allow_blank,
            )
        elif field.visible:
            schema["pattern"] = VISIBLE_TEXT_PATTERN
        else:
            schema["pattern"] = rf"^{TEXT_CHAR}+$"
        return schema


# --- error bodies -------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """{"detail": "..."}: what was wrong, in words."""

    detail = serializers.CharField(help_text="What was wrong, and what to do about it.")


class FieldErrorsSerializer(serializers.Serializer):
    """{"field": ["message", ...]}: documentation only (see FieldErrorsExtension)."""


class FieldErrorsExtension(OpenApiSerializerExtension):
    target_class = FieldErrorsSerializer

    def get_name(self, auto_schema, direction) -> str:
        return "FieldErrors"

    def map_serializer(self, auto_schema, direction) -> dict:
        return {
            "type": "object",
            "description": "Each field (or parameter) that was wrong, with what was wrong "
            "with it; `non_field_errors` for the body as a whole. A list field's errors "
            "are keyed by the index of the item, a nested object's by its fields.",
            "additionalProperties": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]
            },
            "example": {"k": ["Ensure this value is less than or equal to 100."]},
        }


BAD_REQUEST_BODY = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[FieldErrorsSerializer, ErrorSerializer],
    resource_type_field_name=None,
    many=False,
)


def errors(
    *,
    bad_request: str | None = None,
    bad_request_body: Any = BAD_REQUEST_BODY,
    forbidden: str | None = None,
    forbidden_body: Any = ErrorSerializer,
    not_found: str | None = None,
    path_ids: bool = False,
    conflict: str | None = None,
    too_many: str | None = None,
) -> dict:
    """The error answers of one operation, for extend_schema's `responses`: each status
    given a description is documented with its body. Every operation has 401: credentials
    are checked wherever they are sent (an operation open to all refuses a wrong token).
    `path_ids`: the path holds an id, and a path whose id is not one (a word for a number)
    matches no route, so Django's own 404 page answers, in HTML."""
    responses: dict = {}
    if bad_request is not None:
        responses[400] = OpenApiResponse(
            bad_request_body,
            description=f'{bad_request} A body that is not valid JSON: `{{"detail": ...}}`.',
        )
    responses[401] = OpenApiResponse(
        ErrorSerializer,
        description="No credentials, or wrong ones: send `Authorization: Token <key>` (or "
        "sign in, for a session).",
    )
    if forbidden is not None:
        responses[403] = OpenApiResponse(forbidden_body, description=forbidden)
    if not_found is not None:
        responses[(404, "application/json")] = OpenApiResponse(
            ErrorSerializer, description=not_found
        )
    if path_ids:
        responses[(404, "text/html")] = OpenApiResponse(
            TEXT,
            description="A path whose id is not a number (or not a UUID) matches no route: "
            "Django's 404 page. " + (not_found or ""),
        )
    if conflict is not None:
        responses[409] = OpenApiResponse(ErrorSerializer, description=conflict)
    if too_many is not None:
        responses[429] = OpenApiResponse(ErrorSerializer, description=too_many)
    return responses


def error_headers(*, too_many: bool = False) -> list[OpenApiParameter]:
    """The headers of the error answers, for extend_schema's `parameters`: every 401 says
    how to authenticate; a 429 when to come back."""
    headers = [
        OpenApiParameter(
            "WWW-Authenticate",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            response=[401],
            description="`Token`: the scheme to authenticate with.",
        )
    ]
    if too_many:
        headers.append(
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[429],
                description="Seconds until a new request may succeed.",
            )
        )
    return headers
