"""Gunicorn's configuration for Plaza's web tier: `gunicorn -c config/gunicorn.py`.

Uvicorn workers run the ASGI application (config/asgi.py): a page or an API call runs in a
worker's thread pool as before, while an answer's event stream waits on the event loop, so
readers following answers never pin a worker. Each worker holds torch and FAISS to
PLAZA_WEB_THREADS threads (one unless set), so the workers together use the cores they
share instead of fighting over them.

Environment (gunicorn's own GUNICORN_CMD_ARGS and flags still win over these):
    PLAZA_BIND          address to serve on (default 127.0.0.1:8000; containers: 0.0.0.0:8000)
    WEB_CONCURRENCY     worker processes (default: the CPUs this process may use)
    PLAZA_WEB_TIMEOUT   seconds a worker may stay silent before it is restarted (default 120)
    DATABASE_POOL_SIZE  PostgreSQL connections per worker (default here 8, pooled)

/metrics adds up every worker's figures: each writes them to files under
PROMETHEUS_MULTIPROC_DIR (default PLAZA_DATA_DIR/metrics), as prometheus_client's
multiprocess mode requires; an earlier run's files are removed at start.
"""

import os
from pathlib import Path

from ml.cpus import usable_cpus

wsgi_app = "config.asgi:application"
worker_class = "uvicorn_worker.UvicornWorker"
bind = [os.environ.get("PLAZA_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY") or usable_cpus())
timeout = int(os.environ.get("PLAZA_WEB_TIMEOUT") or 120)
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# gunicorn's control socket is one path per user: two servers on a host would share it.
control_socket_disable = True
# The client's address in the access log and REMOTE_ADDR only from a proxy on this host.
forwarded_allow_ips = "127.0.0.1,::1"

# Every request runs in a thread of its own under ASGI: a connection kept per thread would
# never be reused, so connections close after each request, and PostgreSQL's come from a
# pool per worker (config/settings.py).
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
os.environ.setdefault("DATABASE_POOL_SIZE", "8")

_metrics_dir = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    or Path(os.environ.get("PLAZA_DATA_DIR") or "var") / "metrics"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)  # the workers inherit it


def on_starting(server) -> None:
    # Figures of an earlier run's workers would be added to this run's: their files go
    # (prometheus_client's *.db files only, whatever else the folder holds).
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    """Before a worker takes requests: one search, so torch, the encoder and the live
    generation's readers are loaded (about ten seconds) by then and no reader waits."""
    from django.db import connections

    from search.selectors import search_posts

    try:
        search_posts(query="warm up", k=1)
    except Exception:  # noqa: BLE001 - a failed warm-up only makes the first search slower
        worker.log.exception("warm-up search failed")
    finally:
        connections.close_all()
