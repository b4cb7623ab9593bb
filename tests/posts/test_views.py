"""The public post pages: anyone may read visible posts; text is escaped."""

from __future__ import annotations

import pytest
from django.urls import reverse

from posts.models import Author, Post
from posts.services import post_delete, post_save, post_set_hidden

pytestmark = pytest.mark.django_db


@pytest.fixture
def posts():
    ana = Author.objects.create(handle="ana")
    ben = Author.objects.create(handle="ben")
    made = []
    for i, (author, lang, text) in enumerate(
        [
            (ana, "es", "<img src=x onerror=alert(1)> lluvia en Madrid"),
            (ben, "en", "rain in London"),
            (ben, "en", "a hidden one"),
            (ana, "es", "a deleted one"),
        ]
    ):
        post = Post(
            external_id=str(i),
            author=author,
            lang=lang,
            text=text,
            created_at=f"2022-01-0{i + 1}T00:00:00Z",
        )
        made.append(post_save(post=post))
    post_set_hidden(post_ids=[made[2].pk], hidden=True)
    post_delete(post_ids=[made[3].pk])
    return made


def test_list_shows_visible_posts_escaped(client, posts):
    page = client.get(reverse("posts:list")).content.decode()
    assert "rain in London" in page and "lluvia en Madrid" in page
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert "a hidden one" not in page and "a deleted one" not in page


def test_list_filters_by_author_and_lang(client, posts):
    page = client.get(reverse("posts:list"), {"author": "@ben"}).content.decode()
    assert "rain in London" in page and "lluvia" not in page
    page = client.get(reverse("posts:list"), {"lang": "es"}).content.decode()
    assert "lluvia" in page and "London" not in page


def test_detail_of_removed_posts_is_404(client, posts):
    assert client.get(reverse("posts:detail", args=[posts[1].pk])).status_code == 200
    assert client.get(reverse("posts:detail", args=[posts[2].pk])).status_code == 404
    assert client.get(reverse("posts:detail", args=[posts[3].pk])).status_code == 404


def test_bad_page_numbers_do_not_break_the_list(client, posts):
    for page in ("0", "-1", "abc", "99999"):
        assert client.get(reverse("posts:list"), {"page": page}).status_code == 200


def test_health_and_api_docs(client):
    health = client.get("/healthz").json()
    assert (health["status"], health["database"]) == ("ok", True)
    assert health["index"]["generation"] is None  # nothing indexed: still healthy
    assert client.get("/api/docs").status_code == 200
