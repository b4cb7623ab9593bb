"""The search JSON API: auth, parameters, operators, paging, and the staff status figures."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

URL = "/api/search"


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.token.key}")
    return client


@pytest.fixture
def reader(make_user):
    return make_user("reader")


@pytest.mark.integration
def test_finds_a_post_by_its_words_and_says_which_methods_found_it(reader, indexed_posts):
    """A word of one post puts it first, found by BM25 and dense, with the post's fields,
    the matched (folded) term and an absolute link to its page."""
    response = client_for(reader).get(URL, {"q": "football match", "k": 3})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["query"] == "football match"
    assert body["generation"]
    assert set(body["weights"]) == {"dense", "bm25"}
    top = body["results"][0]
    post = indexed_posts["3"]
    assert top["id"] == post.pk and top["external_id"] == "3" and top["source"] == "plaza"
    assert top["author"] == "ben" and top["text"] == post.text and top["lang"] == "en"
    assert (top["likes"], top["reposts"], top["replies"]) == (45, 4, 2)
    assert top["created_at"].startswith("2022-01-06T12:00:00")
    assert top["url"] == f"http://testserver/posts/{post.pk}"
    assert set(top["found_by"]) == {"dense", "bm25"} == set(top["ranks"])
    assert set(top["method_scores"]) == {"dense", "bm25"}
    assert top["matched_terms"] == ["football", "match"]
    assert isinstance(top["score"], float)
    assert len(body["results"]) == 3 and body["next_offset"] == 3
    assert "total" in body["timings_ms"]


@pytest.mark.integration
def test_operators_filter_and_are_echoed(reader, indexed_posts):
    """from: and lang: restrict the results, and the parsed filters come back."""
    body = client_for(reader).get(URL, {"q": "from:ben football -arsenal"}).json()
    assert body["filters"] == {
        "phrases": [],
        "excluded": ["arsenal"],
        "authors": ["ben"],
        "lang": None,
        "since": None,
        "until": None,
    }
    assert [hit["external_id"] for hit in body["results"]] == ["4"]
    body = client_for(reader).get(URL, {"q": "café lang:es"}).json()
    assert body["results"][0]["external_id"] == "12"
    assert body["results"][0]["matched_terms"] == ["cafe"]
    assert {hit["lang"] for hit in body["results"]} == {"es"}


@pytest.mark.integration
def test_search_requires_a_signed_in_user(client, reader, indexed_posts):
    """Anonymous requests are refused (401); a token or a session may search."""
    assert APIClient().get(URL, {"q": "bread"}).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert bad.get(URL, {"q": "bread"}).status_code == 401
    assert client_for(reader).get(URL, {"q": "bread"}).status_code == 200
    client.force_login(reader)
    assert client.get(URL, {"q": "bread"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": "0"}, "k"),
        ({"k": "101"}, "k"),
        ({"k": "ten"}, "k"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"recency": "maybe"}, "recency"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": None}, "q"),
        ({"k": ""}, "k"),
        ({"offset": ""}, "offset"),
        ({"recency": "yes"}, "recency"),
        ({"recency": ""}, "recency"),
        ({"k": "1_0"}, "k"),
    ],
)
def test_bad_parameters_are_400_with_the_field(reader, index_dir, params, field):
    """Out-of-range or malformed k, offset, recency, and an empty q, are field errors; so is
    a parameter given empty (k=), never read as left out."""
    query = {"q": "bread", **params}
    query = {name: value for name, value in query.items() if value is not None}
    response = client_for(reader).get(URL, query)
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("bread since:2022-13-40", "since:2022-13-40: not a date"),
        ("bread lang:!!", "lang:!!: not a language code"),
        ("from: bread", "from: needs a value"),
        ("bread since:2022-02-01 until:2022-01-01", "is not before until:2022-01-01"),
    ],
)
def test_a_malformed_operator_is_400_with_its_message(reader, index_dir, q, says):
    """A QueryError comes back as {"q": [message]}, the message naming the operator."""
    response = client_for(reader).get(URL, {"q": q})
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["q"] and says in body["q"][0]


@pytest.mark.integration
def test_pages_are_disjoint_and_end(reader, indexed_posts):
    """Following next_offset walks every result once; the last page's next_offset is null."""
    client = client_for(reader)
    seen: list[int] = []
    offset, pages = 0, 0
    while offset is not None:
        body = client.get(URL, {"q": "bread", "k": 5, "offset": offset}).json()
        ids = [hit["id"] for hit in body["results"]]
        assert ids and not set(ids) & set(seen)
        seen += ids
        offset, pages = body["next_offset"], pages + 1
        assert pages < 10
    assert len(seen) == len(set(seen)) == len(indexed_posts)
    assert pages == 3


@pytest.mark.integration
def test_recency_boost_is_accepted(reader, indexed_posts):
    """recency=1 still answers the query (the boost reorders, never filters)."""
    plain = client_for(reader).get(URL, {"q": "bread", "recency": "0"}).json()
    boosted = client_for(reader).get(URL, {"q": "bread", "recency": "1"}).json()
    assert {h["id"] for h in plain["results"]} == {h["id"] for h in boosted["results"]}


def test_without_an_index_the_search_answers_empty(reader, index_dir):
    """Before anything is indexed the API answers 200 with no results, not an error."""
    body = client_for(reader).get(URL, {"q": "bread"}).json()
    assert body["results"] == [] and body["next_offset"] is None and body["generation"] is None


@pytest.mark.integration
def test_status_is_for_staff(make_user, reader, indexed_posts):
    """The ops figures: staff get them, other users 403, anonymous 401."""
    staff = make_user("ops", staff=True)
    response = client_for(staff).get(URL + "/status")
    assert response.status_code == 200
    figures = response.json()
    assert figures["queued"] == 0
    assert figures["generation"]["vectors"] == len(indexed_posts)
    assert figures["generation"]["bm25_docs"] == len(indexed_posts)
    assert client_for(reader).get(URL + "/status").status_code == 403
    assert APIClient().get(URL + "/status").status_code == 401


def test_openapi_schema_describes_the_search_api(reader):
    """/api/schema documents both endpoints with their parameters and response fields."""
    response = client_for(reader).get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    search = schema["paths"]["/api/search"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"q", "k", "offset", "recency"}
    assert "/api/search/status" in schema["paths"]
    hit = schema["components"]["schemas"]["SearchHit"]["properties"]
    assert {"id", "url", "found_by", "matched_terms", "method_scores"} <= set(hit)
