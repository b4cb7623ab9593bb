"""Reading and checking posts from files and API payloads.

`read_records(path)` streams a JSON Lines or CSV file (optionally gzipped) one record at
a time, with the line each record starts on; `post_row_clean(raw)` turns one record into
a `PostRow` or raises `RowError` naming the field and what is wrong with it. Both are
plain Python: the import command and the API share them, and the database writes live
in `posts.services`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

REQUIRED_FIELDS = ("id", "author", "text", "created_at")
COUNT_FIELDS = ("likes", "reposts", "replies")
COUNT_MAX = 2_147_483_647  # PositiveIntegerField's ceiling on every database
ID_MAX_CHARS = 64
HANDLE_MAX_CHARS = 64
LANG_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
LANG_MAX_CHARS = 16  # Post.lang's column
SOURCE_RE = re.compile(r"^[-a-zA-Z0-9_]{1,32}$")
FUTURE_SLACK = timedelta(days=1)

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv"}


class RowError(ValueError):
    """One record cannot become a post: `field` (or None for the whole record) and why."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class FileFormatError(ValueError):
    """The file as a whole cannot be read (unknown type, broken compression)."""


@dataclass(frozen=True, slots=True)
class PostRow:
    """One checked post, ready to upsert."""

    source: str
    external_id: str
    author: str
    text: str
    lang: str
    created_at: datetime
    likes: int
    reposts: int
    replies: int

    @property
    def content_hash(self) -> str:
        return post_content_hash(lang=self.lang, text=self.text)


def post_content_hash(*, lang: str, text: str) -> str:
    """What the index embeds: a change here means the post must be embedded again."""
    return hashlib.sha256(f"{lang}\x00{text}".encode()).hexdigest()


# --- checking one record ------------------------------------------------------------------


def post_row_clean(raw: Mapping[str, Any], *, source: str, max_chars: int) -> PostRow:
    """Check one record in the posts schema; raise RowError on the first problem."""
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) in (None, "")]
    if missing:
        # An empty text is a content problem, not a schema one: say so plainly.
        if missing == ["text"] and "text" in raw:
            raise RowError("is empty", "text")
        raise RowError(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    record_source = raw.get("source") or source
    if not isinstance(record_source, str) or not SOURCE_RE.match(record_source):
        raise RowError("must be 1-32 letters, digits, '-' or '_'", "source")
    return PostRow(
        source=record_source,
        external_id=_clean_id(raw["id"]),
        author=_clean_handle(raw["author"]),
        text=clean_text(raw["text"], max_chars=max_chars),
        lang=clean_lang(raw.get("lang")),
        created_at=_clean_datetime(raw["created_at"]),
        likes=_clean_count(raw.get("likes"), "likes"),
        reposts=_clean_count(raw.get("reposts"), "reposts"),
        replies=_clean_count(raw.get("replies"), "replies"),
    )


def _check_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RowError(f"must be a string, got {type(value).__name__}", field)
    if _has_bad_bytes(value):
        raise RowError("is not valid UTF-8", field)
    if "\x00" in value:
        raise RowError("contains a NUL character", field)
    return value


def _has_bad_bytes(value: str) -> bool:
    # Undecodable bytes arrive as lone surrogates (surrogateescape) from the CSV reader.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    external_id = _check_str(value, "id").strip()
    if not external_id:
        raise RowError("is empty", "id")
    if len(external_id) > ID_MAX_CHARS:
        raise RowError(f"is {len(external_id)} characters; the limit is {ID_MAX_CHARS}", "id")
    return external_id


def _clean_handle(value: Any) -> str:
    # Platforms differ (user@instance, legacy handles with spaces): any printable text.
    handle = _check_str(value, "author").strip().removeprefix("@")
    if not handle:
        raise RowError("is empty", "author")
    if len(handle) > HANDLE_MAX_CHARS:
        raise RowError(f"is {len(handle)} characters; the limit is {HANDLE_MAX_CHARS}", "author")
    if not handle.isprintable():
        raise RowError(f"{handle[:40]!r} contains control characters", "author")
    return handle


def clean_text(value: Any, *, max_chars: int) -> str:
    text = _check_str(value, "text")
    if not text.strip():
        raise RowError("is empty", "text")
    if len(text) > max_chars:
        raise RowError(
            f"is {len(text)} characters; the limit is {max_chars} (PLAZA_POST_MAX_CHARS)", "text"
        )
    return text


def clean_lang(value: Any) -> str:
    if value in (None, ""):
        return ""
    lang = _check_str(value, "lang").strip().lower().replace("_", "-")
    if lang and not LANG_RE.match(lang):
        raise RowError(f"{value[:20]!r} is not a language code such as 'es' or 'pt-br'", "lang")
    if len(lang) > LANG_MAX_CHARS:
        raise RowError(
            f"{value[:20]!r}: a language code has at most {LANG_MAX_CHARS} characters", "lang"
        )
    return lang


def _clean_datetime(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise RowError(f"{value} is not a unix time", "created_at") from None
    else:
        text = _check_str(value, "created_at").strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RowError(
                f"{text[:40]!r} is not an ISO 8601 date-time such as 2022-01-31T09:30:00+00:00",
                "created_at",
            ) from None
        if moment.tzinfo is None:
            raise RowError(
                f"{text[:40]!r} has no UTC offset; write it as e.g. {text[:19]}+00:00",
                "created_at",
            )
    if moment > datetime.now(UTC) + FUTURE_SLACK:
        raise RowError(f"{moment.isoformat()} is in the future", "created_at")
    return moment


def _clean_count(value: Any, field: str) -> int:
    if value in (None, ""):
        return 0
    if isinstance(value, bool):
        raise RowError("must be a whole number, got a boolean", field)
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value.strip())
        except ValueError:
            raise RowError(f"{value[:20]!r} is not a whole number", field) from None
    if isinstance(value, float):
        if not value.is_integer():
            raise RowError(f"{value} is not a whole number", field)
        value = int(value)
    if not isinstance(value, int):
        raise RowError(f"must be a whole number, got {type(value).__name__}", field)
    if value < 0:
        raise RowError(f"{value} is negative", field)
    if value > COUNT_MAX:
        raise RowError(f"{value} is larger than {COUNT_MAX}", field)
    return value


# --- reading files ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a file: where it starts, and its fields or why it could not be read."""

    line: int
    fields: dict[str, Any] | None
    error: str | None = None


def file_format(path: Path) -> str:
    """'jsonl' or 'csv', from the name (a trailing .gz is allowed)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise FileFormatError(
        f"{path}: cannot tell the format from the name; use .jsonl, .ndjson or .csv "
        "(optionally with .gz)"
    )


class SourceFile:
    """An open input file that knows how far through its bytes reading has got."""

    def __init__(self, path: Path):
        self.path = path
        self.format = file_format(path)
        self.size = path.stat().st_size
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._stream: BinaryIO = (
            gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
            if path.suffix.lower() == ".gz"
            else self._raw
        )

    def tell(self) -> int:
        """Bytes of the file on disk consumed so far (compressed bytes for .gz)."""
        return self._raw.tell()

    def records(self) -> Iterator[Record]:
        try:
            if self.format == "jsonl":
                yield from _jsonl_records(self._stream)
            else:
                yield from _csv_records(self._stream)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise FileFormatError(f"the compressed data is broken ({exc})") from exc

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> SourceFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _jsonl_records(stream: BinaryIO) -> Iterator[Record]:
    for line_no, raw_line in enumerate(stream, start=1):
        if not raw_line.strip():
            continue
        try:
            fields = orjson.loads(raw_line)
        except orjson.JSONDecodeError:
            yield Record(line_no, None, _jsonl_error(raw_line))
            continue
        if not isinstance(fields, dict):
            yield Record(line_no, None, f"expected a JSON object, got {type(fields).__name__}")
            continue
        yield Record(line_no, fields)


def _jsonl_error(raw_line: bytes) -> str:
    """Why a line is not JSON, in the standard library's clearer words."""
    try:
        line = raw_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start + 1} of the line"
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"broken JSON: {exc.msg} at column {exc.colno}"
    return "broken JSON: unpaired surrogate escape"


def _csv_records(stream: BinaryIO) -> Iterator[Record]:
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad byte costs
    # one record (post_row_clean reports it) rather than the rest of the file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_rows(csv.reader(text))
    finally:
        text.detach()  # the SourceFile, not the wrapper, owns and closes the stream


def _csv_rows(reader) -> Iterator[Record]:
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise FileFormatError(f"the CSV header cannot be read ({exc})") from exc
    columns = [name.strip() for name in header]
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(start, None, f"broken CSV: {exc}")
            start = reader.line_num + 1
            continue
        line_no, start = start, reader.line_num + 1
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(columns):
            yield Record(line_no, None, f"{len(values)} values for {len(columns)} columns")
            continue
        yield Record(line_no, dict(zip(columns, values, strict=False)))
