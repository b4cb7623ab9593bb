"""Settings come from the environment; production refuses to start half-configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CELERY_", "DATABASE_", "PLAZA_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )


def test_production_without_secret_key_stops_with_its_name(tmp_path):
    result = manage(
        "check",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="plaza.example",
        PLAZA_DATA_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_without_allowed_hosts_stops_with_its_name(tmp_path):
    result = manage(
        "check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50, PLAZA_DATA_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is not set" in result.stderr


@pytest.mark.integration
def test_production_with_both_starts(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "ERROR",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 60,
        DJANGO_ALLOWED_HOSTS="plaza.example",
        PLAZA_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe'"),
        ({"CELERY_TASK_TIME_LIMIT": "7200", "CELERY_VISIBILITY_TIMEOUT": "3600"}, "must exceed"),
        ({"PLAZA_POST_MAX_CHARS": "lots"}, "PLAZA_POST_MAX_CHARS='lots'"),
        ({"PLAZA_DEVICE": "tpu"}, "PLAZA_DEVICE"),
        ({"PLAZA_ANSWER_STYLE": "poetic"}, "PLAZA_ANSWER_STYLE='poetic': expected auto"),
        ({"PLAZA_ANSWER_DEADLINE_S": "0"}, "PLAZA_ANSWER_DEADLINE_S=0: must be at least 1"),
        ({"PLAZA_GENERATION_THREADS": "-1"}, "PLAZA_GENERATION_THREADS=-1"),
        ({"PLAZA_SEARCH_BACKEND": "elastic"}, "PLAZA_SEARCH_BACKEND='elastic': expected faiss"),
        (
            {"PLAZA_SEARCH_BACKEND": "postgres", "DATABASE_URL": "sqlite:////tmp/x.sqlite3"},
            "PLAZA_SEARCH_BACKEND=postgres needs DATABASE_URL to name a PostgreSQL database",
        ),
        ({"PLAZA_PG_BUILD_MEMORY": "lots"}, "PLAZA_PG_BUILD_MEMORY='lots'"),
        ({"PLAZA_PG_HNSW_M": "1"}, "PLAZA_PG_HNSW_M"),
    ],
)
def test_bad_values_are_named(tmp_path, env, message):
    result = manage("check", PLAZA_DATA_DIR=str(tmp_path), **env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.integration
def test_embedded_default_needs_no_server(tmp_path):
    """With nothing set: SQLite and the filesystem broker, both under the data dir."""
    probe = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME']);"
        "print(s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND)"
    )
    result = manage("shell", "--no-imports", "-c", probe, PLAZA_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    db_line, broker_line = result.stdout.strip().splitlines()
    assert db_line == f"django.db.backends.sqlite3 {tmp_path / 'plaza.sqlite3'}"
    assert broker_line.startswith("filesystem:// file://" + str(tmp_path))


@pytest.mark.integration
def test_database_and_broker_urls_are_read(tmp_path):
    probe = (
        "from django.conf import settings as s;"
        "d = s.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['HOST']);"
        "print(s.CELERY_BROKER_URL, s.CELERY_RESULT_BACKEND)"
    )
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        probe,
        PLAZA_DATA_DIR=str(tmp_path),
        DATABASE_URL="postgres://u:p@db.internal:5432/plaza",
        CELERY_BROKER_URL="redis://cache.internal:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "django.db.backends.postgresql plaza db.internal",
        "redis://cache.internal:6379/0 redis://cache.internal:6379/0",
    ]
