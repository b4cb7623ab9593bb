"""A brief's own text ("rewrite my text"): the advertiser's headline and post text, both
optional, go in through the studio's form, the API and the admin alike (trimmed, at most
200 and 1000 characters, strings only), come back in the API's campaign answers and on
the campaign page (escaped), and stay the advertiser's: another advertiser's member gets
the 404 every other campaign view gives."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from ads.models import Adapter, Campaign
from tests.ads.conftest import SMALL_MODEL

pytestmark = pytest.mark.django_db

HEADLINE = "Boots that keep you dry, 30% off"
BODY = "Waterproof leather boots.\nFree returns for 60 days."


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _brief(advertisers, **fields) -> dict:
    return {
        "advertiser": advertisers["acme"].pk,
        "name": "Spring boots",
        "description": "Waterproof leather boots for spring walks",
        "language": "en",
    } | fields


@pytest.fixture
def acme_campaign(advertisers):
    return Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Spring boots",
        description="Waterproof leather boots for spring walks",
        own_headline=HEADLINE,
        own_body=BODY,
    )


def test_the_studio_form_stores_and_shows_the_own_text(advertisers):
    """Alice writes her own headline and post text in the studio's form: they are stored
    trimmed and shown on the campaign page, under the form's labels and hint."""
    alice = _client(advertisers["alice"])
    studio = alice.get("/ads/studio").content.decode()
    assert "Your headline (optional)" in studio and "Your post text (optional)" in studio
    assert "Plaza drafts variations that keep your facts." in studio
    response = alice.post(
        "/ads/studio", _brief(advertisers, own_headline=f"  {HEADLINE} ", own_body=f"\n{BODY}  ")
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.own_headline, campaign.own_body) == (HEADLINE, BODY)
    assert response["Location"] == reverse("ads:campaign", args=[campaign.pk])
    page = alice.get(response["Location"]).content.decode()
    assert "Boots that keep you dry, 30% off" in page
    assert "Waterproof leather boots.<br>Free returns for 60 days." in page


def test_the_studio_form_leaves_the_own_text_out_when_blank(advertisers):
    """Both fields are optional: a brief without them is created with empty own text."""
    response = _client(advertisers["alice"]).post("/ads/studio", _brief(advertisers))
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.own_headline, campaign.own_body) == ("", "")


@pytest.mark.parametrize(
    ("field", "value"),
    [("own_headline", "h" * 201), ("own_body", "b" * 1001)],
)
def test_the_studio_form_names_an_over_long_own_text_and_saves_nothing(advertisers, field, value):
    """Over 200 (headline) or 1000 (post text) characters is an error on that field."""
    response = _client(advertisers["alice"]).post(
        "/ads/studio", _brief(advertisers, **{field: value})
    )
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert not Campaign.objects.exists()


def test_the_limits_count_after_trimming(advertisers):
    """Whitespace around the text does not count towards the limits."""
    body = "b" * 1000
    alice = _client(advertisers["alice"])
    page = alice.post("/ads/studio", _brief(advertisers, own_body=f"  {body}\n"))
    assert page.status_code == 302
    api = alice.post(
        "/api/ads/campaigns",
        _brief(advertisers, own_headline=f" {'h' * 200} "),
        content_type="application/json",
    )
    assert api.status_code == 201 and api.json()["own_headline"] == "h" * 200
    assert sorted(Campaign.objects.values_list("own_body", flat=True)) == ["", body]


def test_the_api_stores_and_shows_the_own_text(advertisers):
    """POST /api/ads/campaigns takes own_headline and own_body (trimmed); the answer, the
    campaign's detail and the list all show them."""
    alice = _client(advertisers["alice"])
    created = alice.post(
        "/api/ads/campaigns",
        _brief(advertisers, own_headline=f" {HEADLINE}\t", own_body=f"{BODY}\n"),
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    answer = created.json()
    assert (answer["own_headline"], answer["own_body"]) == (HEADLINE, BODY)
    campaign = Campaign.objects.get(pk=answer["id"])
    assert (campaign.own_headline, campaign.own_body) == (HEADLINE, BODY)
    detail = alice.get(f"/api/ads/campaigns/{campaign.pk}").json()
    assert (detail["own_headline"], detail["own_body"]) == (HEADLINE, BODY)
    listed = alice.get("/api/ads/campaigns").json()["campaigns"]
    assert [(c["own_headline"], c["own_body"]) for c in listed] == [(HEADLINE, BODY)]


def test_the_api_leaves_the_own_text_empty_when_not_sent(advertisers):
    created = _client(advertisers["alice"]).post(
        "/api/ads/campaigns", _brief(advertisers), content_type="application/json"
    )
    assert created.status_code == 201
    assert (created.json()["own_headline"], created.json()["own_body"]) == ("", "")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("own_headline", "h" * 201),
        ("own_body", "b" * 1001),
        ("own_headline", 7),
        ("own_body", 3.5),
        ("own_headline", ["a headline"]),
        ("own_body", {"text": "a body"}),
        ("own_body", True),
        ("own_headline", None),
    ],
)
def test_the_api_names_a_bad_own_text_and_saves_nothing(advertisers, field, value):
    """Too long, or not a string (a number, a list, an object, a boolean, null): a 400
    naming the field, in the API's usual field-errors shape, and no campaign."""
    response = _client(advertisers["alice"]).post(
        "/api/ads/campaigns", _brief(advertisers, **{field: value}), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    errors = response.json()
    assert list(errors) == [field]
    assert isinstance(errors[field], list) and all(isinstance(e, str) for e in errors[field])
    assert not Campaign.objects.exists()


def test_another_advertiser_cannot_read_or_change_the_own_text(advertisers, acme_campaign):
    """Bob (Globex) gets 404 on Acme's campaign page and API detail, does not see it in
    his list, and no request of his changes its own text."""
    bob = _client(advertisers["bob"])
    pk = acme_campaign.pk
    assert bob.get(f"/ads/campaigns/{pk}").status_code == 404
    assert bob.get(f"/api/ads/campaigns/{pk}").status_code == 404
    assert bob.get("/api/ads/campaigns").json() == {"campaigns": []}
    assert HEADLINE not in bob.get("/ads/studio").content.decode()
    assert bob.post(f"/ads/campaigns/{pk}", {"own_headline": "Bob's"}).status_code == 404
    for method in (bob.patch, bob.put):
        response = method(
            f"/api/ads/campaigns/{pk}", {"own_headline": "Bob's"}, content_type="application/json"
        )
        assert response.status_code in (404, 405)
    refused = bob.post(
        "/api/ads/campaigns",
        _brief(advertisers, own_headline="Bob's"),
        content_type="application/json",
    )
    assert refused.status_code == 400 and "advertiser" in refused.json()
    acme_campaign.refresh_from_db()
    assert (acme_campaign.own_headline, acme_campaign.own_body) == (HEADLINE, BODY)
    assert Campaign.objects.count() == 1
    alice_sees = _client(advertisers["alice"]).get(f"/api/ads/campaigns/{pk}").json()
    assert alice_sees["own_headline"] == HEADLINE


def test_html_in_the_own_text_is_escaped_on_the_campaign_page(advertisers):
    """Own text is shown as text: markup in it is escaped, never rendered."""
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Spring boots",
        description="Waterproof leather boots for spring walks",
        own_headline='<script>alert("h")</script> Dry <b>boots</b>',
        own_body='<img src=x onerror="alert(1)">\nSecond line',
    )
    page = _client(advertisers["alice"]).get(f"/ads/campaigns/{campaign.pk}").content.decode()
    assert "<script>alert" not in page and "<b>boots</b>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;h&quot;)&lt;/script&gt; Dry &lt;b&gt;boots&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;<br>Second line" in page


def test_the_campaign_page_shows_no_own_text_rows_when_there_is_none(advertisers):
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Spring boots",
        description="Waterproof leather boots for spring walks",
    )
    page = _client(advertisers["alice"]).get(f"/ads/campaigns/{campaign.pk}").content.decode()
    assert "your headline" not in page and "your post text" not in page


def test_the_admin_edits_the_own_text_with_the_same_limits(advertisers, make_user, acme_campaign):
    """Staff edit the own text in the admin: trimmed when saved; a post text over 1000
    characters is an error on that field and changes nothing."""
    staff = _client(make_user("root", superuser=True))
    url = reverse("admin:ads_campaign_change", args=[acme_campaign.pk])
    page = staff.get(url).content.decode()
    assert 'name="own_headline"' in page and 'name="own_body"' in page
    form = {
        "advertiser": acme_campaign.advertiser_id,
        "name": acme_campaign.name,
        "description": acme_campaign.description,
        "language": "en",
        "keywords": "[]",
        "banned_terms": "[]",
        "category": "",
        "own_headline": "  New headline ",
        "own_body": " New body\n",
    }
    saved = staff.post(url, form)
    assert saved.status_code == 302, saved.content
    acme_campaign.refresh_from_db()
    assert (acme_campaign.own_headline, acme_campaign.own_body) == ("New headline", "New body")
    refused = staff.post(url, form | {"own_body": "b" * 1001, "own_headline": "Other"})
    assert refused.status_code == 200
    assert list(refused.context["adminform"].form.errors) == ["own_body"]
    acme_campaign.refresh_from_db()
    assert acme_campaign.own_headline == "New headline"


def test_an_adapter_has_the_headline_task_by_default_and_the_admin_shows_it(make_user):
    """An adapter's tasks default to the headline prompt alone; its admin page shows them."""
    adapter = Adapter.objects.create(name="shared-v1", base_model=SMALL_MODEL)
    assert adapter.tasks == ["headline"]
    other = Adapter(name="shared-v2", base_model=SMALL_MODEL)
    assert other.tasks == ["headline"] and other.tasks is not adapter.tasks  # a list each
    staff = _client(make_user("root", superuser=True))
    page = staff.get(reverse("admin:ads_adapter_change", args=[adapter.pk])).content.decode()
    assert "Tasks" in page and "headline" in page
