"""The public search page, the highlight filter, similar posts on a post page, and /healthz."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from search.templatetags.search_extras import highlight

pytestmark = pytest.mark.django_db

URL = "/search"


def page_of(client, **params) -> str:
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


def result_ids(page: str) -> list[int]:
    """Post ids in the order the page lists them (each hit links its post's page once)."""
    return [int(pk) for pk in re.findall(r'<a class="time" href="/posts/(\d+)"', page)]


def test_an_empty_query_shows_just_the_form(client, index_dir):
    """No query and no filter: the form and the operator help, no results, no error; the
    navigation links to the search page."""
    page = page_of(client)
    assert 'name="q"' in page and 'name="author"' in page and 'name="since"' in page
    assert 'name="recency"' in page and "from:ana" in page and "-word" in page
    assert f'href="{URL}"' in page
    assert "<article" not in page and 'role="alert"' not in page
    assert "<article" not in page_of(client, q="  ")


@pytest.mark.integration
def test_results_show_methods_engagement_and_highlighted_terms(client, indexed_posts):
    """Each hit shows its author (linked to their posts), time, engagement, the methods that
    found it, and the query's words marked, found through accent folding."""
    page = page_of(client, q="football match")
    post = indexed_posts["3"]
    assert result_ids(page)[0] == post.pk
    assert "<mark>Football</mark> <mark>match</mark> results" in page
    assert 'href="/?author=ben"' in page and "@ben" in page
    assert "45 likes" in page and "4 reposts" in page and "2 replies" in page
    assert '<span class="method method-bm25">words</span>' in page
    assert '<span class="method method-dense">meaning</span>' in page
    page = page_of(client, q="cafe")
    assert "<mark>café</mark>" in page
    assert "<mark>caf" not in page.split("<mark>café</mark>", 1)[0].split("<article", 1)[-1]


@pytest.mark.integration
def test_a_script_in_a_post_renders_inert(client, indexed_posts):
    """Post text is escaped piece by piece around the marks: a <script> post shows as text."""
    page = page_of(client, q="bread crumbs")
    assert indexed_posts["9"].pk in result_ids(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>bread</mark> <mark>crumbs</mark>" in page
    assert "<script>alert" not in page


def test_the_highlight_filter_escapes_and_marks_whole_words():
    """Only whole words whose folded form is a matched term are marked; everything else is
    escaped, and line breaks become <br>."""
    html = highlight('<b>Café</b> & "cafés"\ncafe', ["cafe"])
    assert html == (
        "&lt;b&gt;<mark>Café</mark>&lt;/b&gt; &amp; &quot;cafés&quot;<br><mark>cafe</mark>"
    )
    assert highlight("<i>x</i>", []) == "&lt;i&gt;x&lt;/i&gt;"
    assert highlight("ﬁesta", ["fiesta"]) == "<mark>ﬁesta</mark>"


def test_a_bad_operator_shows_its_message(client, index_dir):
    """A malformed operator is reported on the page (200), naming it, never a 500."""
    page = page_of(client, q="bread since:2022-13-40")
    assert "since:2022-13-40: not a date" in page and 'role="alert"' in page
    assert "<article" not in page
    page = page_of(client, q="bread", since="2022-02-01", until="2022-01-01")
    assert "is not before until:2022-01-01" in page


def test_bad_form_fields_show_field_errors(client, index_dir):
    """Invalid dates, a bad language code or page number are field errors, not a 500."""
    page = page_of(client, q="bread", since="yesterday", lang="<x>", page="0")
    assert "Since: Enter a valid date." in page
    assert "Language: A language code, e.g. es or en." in page
    assert "Page: Ensure this value is greater than or equal to 1." in page
    assert "<article" not in page and "<x>" not in page


@pytest.mark.integration
def test_filter_fields_narrow_the_results(client, indexed_posts):
    """The author, language and date fields filter like their operators; form values stay."""
    page = page_of(client, q="football", author="@ben")
    assert set(result_ids(page)) == {indexed_posts["3"].pk, indexed_posts["4"].pk}
    assert 'value="@ben"' in page
    page = page_of(client, q="lluvia rain", lang="es")
    assert set(result_ids(page)) <= {p.pk for p in indexed_posts.values() if p.lang == "es"}
    page = page_of(client, q="bread", since="2022-01-10", until="2022-01-13")
    assert set(result_ids(page)) == {indexed_posts[i].pk for i in ("6", "7", "8")}
    page = page_of(client, author="cleo")  # filters alone: that author's posts, newest first
    assert result_ids(page) == [indexed_posts["6"].pk, indexed_posts["5"].pk]


@pytest.mark.integration
def test_paging_keeps_the_query_and_filters(client, indexed_posts):
    """Ten hits a page; next/previous links keep q and the filters; pages do not overlap."""
    first = page_of(client, q="bread", recency="1")
    assert len(result_ids(first)) == 10
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "q=bread" in next_link and "recency=1" in next_link and "page=2" in next_link
    assert 'rel="prev"' not in first
    second = client.get(URL + next_link).content.decode()
    assert len(result_ids(second)) == 2
    assert not set(result_ids(first)) & set(result_ids(second))
    assert 'rel="next"' not in second
    previous = re.search(r'<a rel="prev" href="([^"]+)"', second).group(1).replace("&amp;", "&")
    assert "page=1" in previous and "q=bread" in previous


def test_search_without_an_index_says_so(client, index_dir):
    """Before anything is indexed the page answers 200 and says the index is empty."""
    page = page_of(client, q="bread")
    assert "index is empty" in page and "<article" not in page


@pytest.mark.integration
def test_post_page_shows_similar_posts(client, indexed_posts):
    """A post page lists up to five posts close in meaning, linked, never the post itself."""
    post = indexed_posts["5"]  # sourdough bread
    page = client.get(reverse("posts:detail", args=[post.pk])).content.decode()
    assert "Similar posts" in page
    similar = page.split("Similar posts", 1)[1]
    links = [int(pk) for pk in re.findall(r'href="/posts/(\d+)"', similar)]
    assert 1 <= len(links) <= 5 and post.pk not in links
    assert indexed_posts["6"].pk in links  # the other bread post
    assert "<script>alert" not in page


def test_post_page_without_an_index_has_no_similar_posts(client, corpus_posts):
    """With no index the post page renders as before, without the similar posts section."""
    response = client.get(reverse("posts:detail", args=[corpus_posts["5"].pk]))
    assert response.status_code == 200
    assert "Similar posts" not in response.content.decode()


def test_healthz_reports_the_index(client, index_dir):
    """/healthz has an index section (queue, freshness lag, live generation) and stays
    healthy with no generation yet."""
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["index"] == {"queued": 0, "freshness_lag_s": 0.0, "generation": None}


@pytest.mark.integration
def test_healthz_counts_queued_posts(client, indexed_posts):
    """Changes waiting for the index show as queued, with their age as the lag."""
    from posts.services import post_set_hidden

    post_set_hidden(post_ids=[indexed_posts["1"].pk], hidden=True)
    body = client.get("/healthz").json()
    assert body["index"]["queued"] == 1
    assert body["index"]["freshness_lag_s"] >= 0
    assert body["index"]["generation"]
