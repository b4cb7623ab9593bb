"""posts announces its writes (posts.signals.posts_changed) and shows the panels other apps
register (posts.panels), knowing nothing of who listens or what they show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from posts.ingest import PostRow
from posts.models import Post
from posts.panels import post_panel_register, post_panels
from posts.services import (
    post_delete,
    post_restore,
    post_set_hidden,
    post_update,
    post_upsert_many,
)
from posts.signals import posts_changed

pytestmark = pytest.mark.django_db


def row(external_id: str, text: str) -> PostRow:
    return PostRow(
        source="plaza",
        external_id=external_id,
        author="ana",
        text=text,
        lang="en",
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
        likes=0,
        reposts=0,
        replies=0,
    )


@pytest.fixture
def notices():
    """Every posts_changed notice while the test runs: (sorted post ids, in a transaction)."""
    heard = []

    def receiver(sender, *, post_ids, **kwargs):
        heard.append((sorted(post_ids), connection.in_atomic_block))

    posts_changed.connect(receiver, dispatch_uid="tests.posts.notices")
    yield heard
    posts_changed.disconnect(dispatch_uid="tests.posts.notices")


def test_every_write_announces_its_posts_inside_its_transaction(notices):
    """A bulk upsert, an edit, hide, delete and restore each send one notice naming the
    posts written, from inside the write's transaction."""
    post_upsert_many(rows=[row("1", "Bridge closed"), row("2", "Bakery open")])
    one, two = (Post.objects.get(external_id=i).pk for i in ("1", "2"))
    post_update(post=Post.objects.get(pk=one), changes={"text": "Bridge open again"})
    post_set_hidden(post_ids=[two], hidden=True)
    post_delete(post_ids=[one])
    post_restore(post_ids=[one])
    assert notices == [
        ([one, two], True),
        ([one], True),
        ([two], True),
        ([one], True),
        ([one], True),
    ]


def test_a_write_rolled_back_takes_what_listeners_wrote_with_it():
    """search queues the posts for the index inside the write's transaction: when the write
    rolls back, so does the queue entry."""
    from search.models import IndexQueueEntry

    with pytest.raises(RuntimeError), transaction.atomic():
        post_upsert_many(rows=[row("3", "Roadworks this weekend")])
        assert IndexQueueEntry.objects.exists()
        raise RuntimeError("the request failed after the write")
    assert not Post.objects.exists() and not IndexQueueEntry.objects.exists()
    post_upsert_many(rows=[row("3", "Roadworks this weekend")])
    assert IndexQueueEntry.objects.filter(post_id=Post.objects.get().pk).exists()


def test_panels_show_in_order_and_a_failing_one_is_left_out(caplog):
    """A registered panel shows with its reader's context, one with nothing to show
    (None) and one that fails are left out, and the failure is logged."""
    post_upsert_many(rows=[row("4", "Night bus timetable")])
    post = Post.objects.get()

    def broken(*, post):
        raise ValueError("index unavailable")

    post_panel_register(name="tests-a", template="a.html", reader=lambda *, post: {"n": post.pk})
    post_panel_register(name="tests-none", template="none.html", reader=lambda *, post: None)
    post_panel_register(name="tests-broken", template="broken.html", reader=broken)
    try:
        shown = [(p.template, p.context) for p in post_panels(post=post)]
    finally:
        from posts import panels

        for name in ("tests-a", "tests-none", "tests-broken"):
            panels._panels.pop(name)
    assert ("a.html", {"n": post.pk}) in shown
    assert not {"none.html", "broken.html"} & {template for template, _ in shown}
    assert "the tests-broken panel failed" in caplog.text
