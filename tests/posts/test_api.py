"""The posts JSON API: token auth, permissions, batch validation, edits and removal."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from posts.models import Post

pytestmark = pytest.mark.django_db

URL = "/api/posts"


def payload(*ids: str, **changes) -> dict:
    return {
        "posts": [
            {
                "id": i,
                "author": "ana",
                "text": f"post {i}",
                "created_at": "2022-05-01T12:00:00+02:00",
                "lang": "es",
                **changes,
            }
            for i in ids
        ]
    }


def client_for(user=None, token: str | None = None) -> APIClient:
    client = APIClient()
    key = token if token is not None else (user.token.key if user else None)
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def ingester(make_user):
    return make_user("ingest-bot", "posts.add_post", "posts.change_post", "posts.delete_post")


@pytest.fixture
def reader(make_user):
    return make_user("reader")


@pytest.mark.parametrize("token", [None, "wrong", ""])
@pytest.mark.parametrize("method", ["get", "post"])
def test_no_or_wrong_token_is_refused(token, method):
    """Without a valid token the API answers 401 and writes nothing."""
    client = client_for(token=token) if token is not None else APIClient()
    response = getattr(client, method)(URL, payload("1"), format="json")
    assert response.status_code == 401
    assert Post.objects.count() == 0


def test_a_reader_cannot_write(reader):
    response = client_for(reader).post(URL, payload("1"), format="json")
    assert response.status_code == 403
    assert Post.objects.count() == 0


def test_batch_create_then_update(ingester):
    """201 with the new ids; the same batch again updates the same rows."""
    client = client_for(ingester)
    response = client.post(URL, payload("a", "b"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["updated"], body["rejected"]) == (2, 0, [])
    assert [ref["external_id"] for ref in body["posts"]] == ["a", "b"]

    response = client.post(URL, payload("a", "b", text="edited"), format="json")
    assert response.status_code == 201
    assert (response.json()["created"], response.json()["updated"]) == (0, 2)
    assert set(Post.objects.values_list("text", flat=True)) == {"edited"}


def test_partly_bad_batch_keeps_good_posts_and_names_the_bad(ingester):
    """207: good posts are written; each bad one comes back with its index and field errors."""
    body = payload("ok1", "bad", "ok2")
    body["posts"][1]["created_at"] = "not a date"
    response = client_for(ingester).post(URL, body, format="json")
    assert response.status_code == 207
    rejected = response.json()["rejected"]
    assert rejected == [
        {
            "index": 1,
            "id": "bad",
            "errors": {"created_at": [rejected[0]["errors"]["created_at"][0]]},
        }
    ]
    assert "ISO 8601" in rejected[0]["errors"]["created_at"][0]
    assert set(Post.objects.values_list("external_id", flat=True)) == {"ok1", "ok2"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"wrong": []}, "list of posts"),
        ([], "list of posts"),
        ({"posts": []}, "between 1 and"),
        ({"posts": ["a string"]}, "not an object"),
        ({"posts": [{"id": "1"}]}, "missing fields"),
        (
            {"posts": [{"id": "1", "author": "a", "text": "", "created_at": "2022-01-01T00:00Z"}]},
            "empty",
        ),
    ],
)
def test_wholly_bad_payloads_are_400_with_reasons(ingester, body, fragment):
    response = client_for(ingester).post(URL, body, format="json")
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert Post.objects.count() == 0


def test_malformed_json_is_400_not_500(ingester):
    response = client_for(ingester).post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_batch_size_is_capped(ingester, settings):
    settings.PLAZA_API_MAX_BATCH = 3
    response = client_for(ingester).post(URL, payload(*"abcd"), format="json")
    assert response.status_code == 400
    assert "between 1 and 3" in response.json()["posts"][0]


def test_read_list_and_filters(ingester, reader):
    client_for(ingester).post(URL, payload("a", "b"), format="json")
    client_for(ingester).post(URL, payload("c", author="ben", lang="en"), format="json")
    client = client_for(reader)
    listed = client.get(URL).json()
    # Same created_at for all three: newest id first.
    assert [p["external_id"] for p in listed["results"]] == ["c", "b", "a"]
    only_ben = client.get(URL, {"author": "ben"}).json()["results"]
    assert [p["external_id"] for p in only_ben] == ["c"]
    assert only_ben[0]["author"] == "ben"
    assert client.get(URL, {"lang": "es"}).json()["results"][0]["lang"] == "es"
    assert client.get(URL, {"since": "yesterday"}).status_code == 400


def test_patch_edits_and_hides_then_delete(ingester, reader):
    """Hidden posts disappear for readers, not for moderators; a deleted post is a 404 for
    everyone (moderators are told it is deleted and still list it with include_removed),
    editing it a 409, deleting it again a 204."""
    pk = client_for(ingester).post(URL, payload("a"), format="json").json()["posts"][0]["id"]
    moderator = client_for(ingester)

    response = moderator.patch(f"{URL}/{pk}", {"text": "new words"}, format="json")
    assert response.status_code == 200 and response.json()["text"] == "new words"
    assert moderator.patch(f"{URL}/{pk}", {"text": "  "}, format="json").status_code == 400
    assert moderator.patch(f"{URL}/{pk}", {"likes": -3}, format="json").status_code == 400

    assert (
        client_for(reader).patch(f"{URL}/{pk}", {"hidden": True}, format="json").status_code == 403
    )
    assert moderator.patch(f"{URL}/{pk}", {"hidden": True}, format="json").json()["hidden"] is True
    assert client_for(reader).get(f"{URL}/{pk}").status_code == 404
    assert moderator.get(f"{URL}/{pk}").json()["hidden"] is True

    moderator.patch(f"{URL}/{pk}", {"hidden": False}, format="json")
    assert client_for(reader).delete(f"{URL}/{pk}").status_code == 403
    assert moderator.delete(f"{URL}/{pk}").status_code == 204
    assert client_for(reader).get(f"{URL}/{pk}").status_code == 404
    gone = moderator.get(f"{URL}/{pk}")
    assert gone.status_code == 404 and gone.json() == {"detail": "This post is deleted."}
    listed = moderator.get(URL, {"include_removed": "true"}).json()["results"]
    assert [(p["id"], p["deleted"]) for p in listed] == [(pk, True)]
    assert client_for(reader).get(URL, {"include_removed": "true"}).json()["results"] == []
    assert moderator.patch(f"{URL}/{pk}", {"text": "again"}, format="json").status_code == 409
    assert moderator.delete(f"{URL}/{pk}").status_code == 204
    assert Post.objects.get(pk=pk).deleted_at is not None


def test_openapi_schema_describes_the_posts_api(reader):
    response = client_for(reader).get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/posts", "/api/posts/{id}"} <= set(schema["paths"])
    assert "post" in schema["paths"]["/api/posts"]


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"until": ""}, "until", "is empty"),
        ({"author": ""}, "author", "is empty"),
        ({"include_removed": "yes"}, "include_removed", "valid boolean"),
        ({"source": " demo"}, "source", "not letters, digits"),
        ({"page_size": "0"}, "page_size", "from 1"),
        ({"page_size": "ten"}, "page_size", "from 1"),
    ],
)
def test_a_bad_or_empty_filter_is_a_400_naming_it(reader, params, field, says):
    """An empty parameter is not "left out", and a value the schema does not allow is
    refused by name: the parameter, and what was wrong."""
    response = client_for(reader).get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field] and says in body[field][0]


def test_a_large_page_size_reads_as_the_largest(ingester, reader):
    client_for(ingester).post(URL, payload("a", "b"), format="json")
    response = client_for(reader).get(URL, {"page_size": "100000"})
    assert response.status_code == 200 and len(response.json()["results"]) == 2


@pytest.mark.parametrize(
    "change",
    [{"likes": "5"}, {"likes": True}, {"hidden": 1}, {"hidden": "true"}, {"text": 5}],
)
def test_an_edit_takes_json_types_only(ingester, change):
    """PATCH takes the JSON type each field has in the schema: no "5" for 5, no 1 for true."""
    pk = client_for(ingester).post(URL, payload("a"), format="json").json()["posts"][0]["id"]
    response = client_for(ingester).patch(f"{URL}/{pk}", change, format="json")
    assert response.status_code == 400 and list(response.json()) == list(change)


def test_bodies_are_json_only(ingester):
    """A form body is a 415, not a misread batch."""
    response = client_for(ingester).post(URL, {"posts": "x"}, format="multipart")
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


def test_an_id_sent_as_a_whole_float_is_that_integer(ingester):
    """JSON has one kind of number: an id of 7.0 is the post 7, not a type error."""
    body = payload("x")
    body["posts"][0]["id"] = 7.0
    response = client_for(ingester).post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["posts"][0]["external_id"] == "7"
