"""Test settings: the main settings with a data dir of the tests' own.

Tests must never share a broker folder, SQLite file or index with a running Plaza.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PLAZA_DATA_DIR", str(REPO / "var" / "test"))
# One model cache for the whole test run, whatever data dir a test or its worker uses.
os.environ.setdefault("PLAZA_MODEL_CACHE", str(REPO / "var" / "test" / "models"))

from config.settings import *  # noqa: E402,F403
from config.settings import DATA_DIR, DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a worker process can open the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-plaza.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test users

# BM25 rebuilt at every flush, so a test sees its writes in both methods at once.
PLAZA_BM25_REFRESH_S = int(os.environ.get("PLAZA_BM25_REFRESH_S") or 0)
PLAZA_INDEX_BATCH_WINDOW_MS = int(os.environ.get("PLAZA_INDEX_BATCH_WINDOW_MS") or 0)
