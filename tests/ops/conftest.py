"""Fixtures for the ops tests: signed-in clients, an index folder of their own, a
filesystem broker of their own, and a few posts to index."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

# (external id, author, lang, text, day in March 2023)
POSTS = [
    ("o1", "ana", "en", "The night bus timetable changes on Monday", 1),
    ("o2", "ben", "en", "Fresh bread from the corner bakery sells out by nine", 2),
    ("o3", "cleo", "es", "La biblioteca municipal abre también los domingos", 3),
    ("o4", "dan", "en", "Roadworks close the bridge to cyclists this weekend", 4),
    ("o5", "eve", "en", "A new community garden opens behind the station", 5),
]


@pytest.fixture
def staff_client(client, make_user):
    client.force_login(make_user("opsstaff", staff=True))
    return client


@pytest.fixture
def member_client(client, make_user):
    """Signed in, not staff."""
    client.force_login(make_user("member"))
    return client


@pytest.fixture
def index_dir(settings, tmp_path):
    """A data folder (index, BM25 builds) of this test's own; handles closed around it."""
    from search import indexes

    indexes.close_all()
    settings.DATA_DIR = tmp_path
    settings.PLAZA_INDEX_FACTORY = "Flat"  # sealed segments build at once for a handful
    yield tmp_path
    indexes.close_all()


@pytest.fixture
def ops_posts(db, index_dir):
    """POSTS written (not indexed yet): a dict of external id to Post."""
    from posts.ingest import PostRow
    from posts.models import Post
    from posts.services import post_upsert_many

    post_upsert_many(
        rows=[
            PostRow(
                source="plaza",
                external_id=external_id,
                author=author,
                text=text,
                lang=lang,
                created_at=datetime(2023, 3, day, 9, tzinfo=UTC),
                likes=0,
                reposts=0,
                replies=0,
            )
            for external_id, author, lang, text, day in POSTS
        ]
    )
    return {post.external_id: post for post in Post.objects.all()}


@pytest.fixture
def fs_broker(tmp_path):
    """The Celery app pointed at a filesystem broker of this test's own (as config/celery.py
    sets one up); yields a function that publishes n messages to a queue through kombu."""
    from kombu import Connection, Exchange, Queue
    from kombu.transport import filesystem

    from config.settings import celery_broker_options

    options = celery_broker_options("filesystem://", tmp_path / "fs-broker")
    transport_options = options["broker_transport_options"]

    def publish(queue: str, n: int) -> None:
        with Connection("filesystem://", transport_options=transport_options) as conn:
            target = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)
            with conn.Producer() as producer:
                for i in range(n):
                    producer.publish(
                        {"n": i}, exchange=target.exchange, routing_key=queue, declare=[target]
                    )

    publish.transport_options = transport_options
    # kombu keeps the filesystem transport's bindings for the whole process and skips a
    # binding it already made: in a fresh folder messages would go nowhere.
    filesystem.Transport.global_state.clear()
    with celery_broker("filesystem://", transport_options):
        yield publish
    filesystem.Transport.global_state.clear()


@pytest.fixture
def down_broker():
    """The Celery app pointed at a Redis that is not there (nothing listens on port 1)."""
    with celery_broker("redis://127.0.0.1:1/0", {}):
        yield


@contextmanager
def celery_broker(url: str, transport_options: dict):
    """The Celery app's broker settings changed for a while, then put back. Celery reads
    the CELERY_BROKER_URL variable before its own setting, so that changes too."""
    from celery import current_app

    conf = current_app.conf
    saved = conf.broker_url, conf.broker_transport_options, os.environ.get("CELERY_BROKER_URL")
    conf.broker_url, conf.broker_transport_options = url, transport_options
    os.environ["CELERY_BROKER_URL"] = url
    try:
        yield
    finally:
        conf.broker_url, conf.broker_transport_options, variable = saved
        if variable is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = variable
