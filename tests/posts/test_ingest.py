"""Reading and checking records: posts.ingest, no database."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from posts.ingest import FileFormatError, RowError, SourceFile, file_format, post_row_clean

GOOD = {
    "id": "1399920623816785923",
    "author": "el_pais",
    "text": "Una noticia con acentos: árbol, niño, canción 🎵",
    "created_at": "2021-06-02T02:47:40.642000Z",
    "lang": "es",
    "likes": 12,
}


def clean(**changes):
    return post_row_clean({**GOOD, **changes}, source="plaza", max_chars=280)


def test_good_record_becomes_a_row():
    """Every field of a good record is carried over, typed."""
    row = clean()
    assert row.external_id == GOOD["id"]
    assert row.author == "el_pais"
    assert row.text == GOOD["text"]
    assert row.created_at == datetime(2021, 6, 2, 2, 47, 40, 642000, tzinfo=UTC)
    assert (row.lang, row.likes, row.reposts, row.replies) == ("es", 12, 0, 0)
    assert row.source == "plaza"


def test_unknown_fields_are_ignored_and_numbers_may_be_strings():
    """CSV gives strings; extra columns are ignored; a leading @ is dropped."""
    row = clean(likes="7", reposts="3.0", replies="", color="blue", author="@Someone")
    assert (row.likes, row.reposts, row.replies, row.author) == (7, 3, 0, "Someone")


def test_integer_ids_and_unix_times_are_accepted():
    row = clean(id=123, created_at=1_600_000_000)
    assert row.external_id == "123"
    assert row.created_at == datetime.fromtimestamp(1_600_000_000, tz=UTC)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"text": ""}, "text", "empty"),
        ({"text": "   \n "}, "text", "empty"),
        ({"text": "x" * 281}, "text", "281 characters; the limit is 280"),
        ({"text": "bad \x00 byte"}, "text", "NUL"),
        ({"text": "caf\udce9"}, "text", "UTF-8"),
        ({"created_at": "yesterday"}, "created_at", "ISO 8601"),
        ({"created_at": "2021-06-02T02:47:40"}, "created_at", "no UTC offset"),
        ({"created_at": "2021-02-30T00:00:00Z"}, "created_at", "ISO 8601"),
        ({"likes": -1}, "likes", "negative"),
        ({"likes": "many"}, "likes", "not a whole number"),
        ({"likes": 1.5}, "likes", "not a whole number"),
        ({"likes": True}, "likes", "boolean"),
        ({"likes": 2**40}, "likes", "larger than"),
        ({"lang": "spanish!"}, "lang", "language code"),
        ({"lang": "en-abcdefgh-abcdefgh"}, "lang", "at most 16 characters"),
        ({"author": "tab\there"}, "author", "control characters"),
        ({"author": "@"}, "author", "empty"),
        ({"author": "h" * 65}, "author", "limit is 64"),
        ({"author": 42}, "author", "must be a string"),
        ({"id": "x" * 65}, "id", "limit is 64"),
        ({"source": "no spaces here"}, "source", "letters"),
    ],
)
def test_bad_fields_are_rejected_with_field_and_reason(changes, field, fragment):
    """Each kind of bad value names its field and says what is wrong."""
    with pytest.raises(RowError) as caught:
        clean(**changes)
    assert caught.value.field == field
    assert fragment in caught.value.reason


def test_future_dates_are_rejected():
    with pytest.raises(RowError, match="future"):
        clean(created_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())


def test_missing_fields_are_listed():
    with pytest.raises(RowError, match="missing fields author, created_at"):
        post_row_clean({"id": "1", "text": "hi"}, source="plaza", max_chars=280)


def write_lines(path: Path, lines: list[bytes]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


def read_all(path: Path):
    with SourceFile(path) as source:
        return list(source.records())


@pytest.mark.parametrize("name", ["posts.jsonl", "posts.jsonl.gz", "posts.ndjson"])
def test_jsonl_records_carry_their_line_numbers(tmp_path, name):
    """Blank lines are skipped but still counted, so numbers match an editor's."""
    path = write_lines(
        tmp_path / name,
        [json.dumps(GOOD).encode(), b"", b"{broken", b"[1, 2]", b"\xff\xfe not utf-8"],
    )
    records = read_all(path)
    assert [r.line for r in records] == [1, 3, 4, 5]
    assert records[0].fields == GOOD
    assert "broken JSON" in records[1].error
    assert "expected a JSON object" in records[2].error
    assert "invalid UTF-8 at byte 1" in records[3].error


def test_csv_records_handle_quoted_newlines_and_bad_bytes(tmp_path):
    """A quoted field may span lines; the next record's line number accounts for it."""
    path = write_lines(
        tmp_path / "posts.csv",
        [
            b"id,author,text,created_at,lang,likes",
            b'1,ana,"first line',
            b'second line",2022-01-01T00:00:00Z,es,3',
            b"2,ben,caf\xe9 latin-1,2022-01-01T00:00:00Z,en,1",
            b"3,cy,too,many,values,here,x,y",
        ],
    )
    records = read_all(path)
    assert [r.line for r in records] == [2, 4, 5]
    assert records[0].fields["text"] == "first line\nsecond line"
    with pytest.raises(RowError, match="UTF-8"):
        post_row_clean(records[1].fields, source="plaza", max_chars=280)
    assert "8 values for 6 columns" in records[2].error


def test_truncated_gzip_is_a_file_error(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(
        b"\n".join(json.dumps({**GOOD, "id": str(i)}).encode() for i in range(500))
    )
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FileFormatError, match="compressed data is broken"):
        read_all(path)


@pytest.mark.parametrize("name", ["posts.txt", "posts", "posts.parquet.gz"])
def test_unknown_extensions_are_refused(name):
    with pytest.raises(FileFormatError, match="cannot tell the format"):
        file_format(Path(name))
