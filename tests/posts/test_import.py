"""python manage.py import_posts: streaming upsert, per-row errors, exit status."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from posts.models import Author, Post
from posts.services import post_delete

pytestmark = pytest.mark.django_db


def post(i: int, **changes) -> dict:
    return {
        "id": f"p{i}",
        "author": f"author{i % 3}",
        "text": f"post number {i} about paella and rain",
        "created_at": f"2022-01-{1 + i % 28:02d}T10:00:00+01:00",
        "lang": "es" if i % 2 else "en",
        "likes": i,
        "reposts": i // 2,
        "replies": 1,
        **changes,
    }


def write_jsonl(path: Path, records: list) -> Path:
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
    return path


def run_import(*args) -> tuple[int, str, str]:
    """Run the command; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_posts", *map(str, args), "--no-progress", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_import_then_reimport_updates_in_place(tmp_path):
    """A second import of the same file adds nothing and takes its new values."""
    path = write_jsonl(tmp_path / "posts.jsonl.gz", [post(i) for i in range(25)])
    code, out, _ = run_import(path, "--batch-size", "7")
    assert code == 0
    assert out.strip().splitlines()[-1] == "imported 25, updated 0, rejected 0"
    assert Post.objects.count() == 25
    assert Author.objects.count() == 3

    first = Post.objects.get(external_id="p3")
    write_jsonl(path, [post(i, likes=1000 + i) for i in range(25)])
    code, out, _ = run_import(path)
    assert code == 0
    assert out.strip().splitlines()[-1] == "imported 0, updated 25, rejected 0"
    assert Post.objects.count() == 25
    again = Post.objects.get(external_id="p3")
    assert again.pk == first.pk and again.likes == 1003


def test_bad_lines_are_reported_and_good_rows_kept(tmp_path):
    """Every bad line is reported with its number and reason; the rest import; exit 2."""
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            post(1),
            b'{"id": "x", "author": ',  # 2: broken JSON
            post(3),
            {k: v for k, v in post(4).items() if k != "text"},  # 4: missing field
            post(5, created_at="31/01/2022"),  # 5: bad date
            post(6, text=""),  # 6: empty text
            post(7, text="x" * 20_000),  # 7: over-long text
            b'{"id": "u", "text": "caf\xe9"}',  # 8: invalid UTF-8
            post(9),
        ],
    )
    code, out, err = run_import(path)
    assert code == 2
    assert out.strip().splitlines()[-1] == "imported 3, updated 0, rejected 6"
    reported = {int(line.split(":")[1]): line for line in err.strip().splitlines()}
    assert sorted(reported) == [2, 4, 5, 6, 7, 8]
    assert "broken JSON" in reported[2]
    assert "missing field text" in reported[4]
    assert "created_at" in reported[5] and "ISO 8601" in reported[5]
    assert "text: is empty" in reported[6]
    assert "20000 characters" in reported[7]
    assert "invalid UTF-8" in reported[8]
    assert all(line.startswith(f"{path}:") for line in reported.values())
    assert set(Post.objects.values_list("external_id", flat=True)) == {"p1", "p3", "p9"}


def test_csv_import_and_multiple_paths(tmp_path):
    """CSV in the same schema; several files add up into one summary line."""
    csv_path = tmp_path / "posts.csv"
    csv_path.write_text(
        "id,author,text,created_at,lang,likes,reposts,replies,extra\n"
        'c1,ana,"hola, mundo",2022-03-01T09:00:00Z,es,5,1,0,ignored\n'
        "c2,ben,hello world,2022-03-02T09:00:00-05:00,en,,,,\n"
    )
    jsonl_path = write_jsonl(tmp_path / "more.jsonl", [post(1), post(2)])
    code, out, _ = run_import(csv_path, jsonl_path)
    assert code == 0
    assert out.strip().splitlines()[-1] == "imported 4, updated 0, rejected 0"
    c1 = Post.objects.get(external_id="c1")
    assert (c1.text, c1.likes, c1.reposts, c1.author.handle) == ("hola, mundo", 5, 1, "ana")


def test_duplicate_ids_in_one_file_keep_the_last(tmp_path):
    path = write_jsonl(tmp_path / "dupes.jsonl", [post(1, likes=1), post(1, likes=2)])
    code, out, _ = run_import(path)
    assert code == 0
    assert out.strip().splitlines()[-1] == "imported 1, updated 1, rejected 0"
    assert Post.objects.get(external_id="p1").likes == 2


def test_reimport_never_resurrects_a_deleted_or_hidden_post(tmp_path):
    path = write_jsonl(tmp_path / "posts.jsonl", [post(1), post(2)])
    run_import(path)
    p1 = Post.objects.get(external_id="p1")
    post_delete(post_ids=[p1.pk])
    Post.objects.filter(external_id="p2").update(is_hidden=True)
    run_import(path)
    assert Post.objects.get(external_id="p1").deleted_at is not None
    assert Post.objects.get(external_id="p2").is_hidden
    assert Post.objects.visible().count() == 0


def test_edited_text_changes_the_content_hash(tmp_path):
    path = write_jsonl(tmp_path / "posts.jsonl", [post(1)])
    run_import(path)
    before = Post.objects.get().content_hash
    write_jsonl(path, [post(1, text="an edited text")])
    run_import(path)
    assert Post.objects.get().content_hash != before


def test_source_option_keeps_ids_apart(tmp_path):
    path = write_jsonl(tmp_path / "posts.jsonl", [post(1)])
    run_import(path, "--source", "mastodon")
    run_import(path)
    assert sorted(Post.objects.values_list("source", flat=True)) == ["mastodon", "plaza"]


def test_truncated_gzip_keeps_what_was_read_and_exits_2(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(b"\n".join(json.dumps(post(i)).encode() for i in range(3000)))
    path.write_bytes(whole[: len(whole) * 3 // 4])
    code, out, err = run_import(path, "--batch-size", "100")
    assert code == 2
    assert "compressed data is broken" in err
    assert Post.objects.count() > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/posts.jsonl"], "no such file"),
        (["README.md"], "cannot tell the format"),
    ],
)
def test_unusable_paths_stop_before_importing(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_posts", *args)


def test_demo_posts_import_cleanly():
    """The shipped demo set is valid in full, in two languages, by a few dozen authors."""
    demo = Path(__file__).resolve().parents[2] / "posts" / "demo" / "posts.jsonl"
    code, out, err = run_import(demo)
    assert code == 0, err
    assert Post.objects.count() >= 300
    assert set(Post.objects.values_list("lang", flat=True)) == {"es", "en"}
    assert Author.objects.count() >= 24


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "rows"), [("es-news-tweets.jsonl.gz", 33_605), ("us-airline-tweets.jsonl.gz", 14_077)]
)
def test_shared_data_imports_in_full_and_idempotently(shared_data, name, rows):
    """The real tweet files import every row; a second run updates them all in place."""
    path = shared_data / "posts" / name
    code, out, err = run_import(path)
    assert code == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == f"imported {rows}, updated 0, rejected 0"
    code, out, _ = run_import(path)
    assert out.strip().splitlines()[-1] == f"imported 0, updated {rows}, rejected 0"
    assert Post.objects.count() == rows


@pytest.mark.integration
def test_unmigrated_database_gets_a_clear_error(tmp_path):
    """Before `migrate`, the command says what to do instead of a database traceback."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    path = write_jsonl(tmp_path / "posts.jsonl", [post(1)])
    result = subprocess.run(
        [sys.executable, "manage.py", "import_posts", str(path)],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PLAZA_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "run `python manage.py migrate` first" in result.stderr
    assert "Traceback" not in result.stderr
