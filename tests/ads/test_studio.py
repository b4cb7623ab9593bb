"""The ads studio and its API check who asks: a member of advertiser A never sees or acts
on B's campaigns, jobs or creatives through any page, API call or export (404: ids tell
nothing); reviews are audited; edits pass the hard checks; exports and performance
imports touch only the user's own creatives."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ads.models import AdCreative, Campaign, CreativeEvent, CreativePerformance, DraftJob

pytestmark = pytest.mark.django_db

PASSED = {"passed": True, "needs_review": False, "failed": [], "checks": {}}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def acme(advertisers):
    """Acme's campaign with a finished job and two drafts (rows written directly: these
    tests are about who may see and do what, not about the model)."""
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="Spring boots",
        product="Trailhead boots",
        description="Waterproof hiking boots for long spring walks",
        objective="sales",
        landing_url="https://acme.example/boots",
        banned_terms=["cheap"],
    )
    job = DraftJob.objects.create(campaign=campaign, n=2, status="succeeded", kept=2)
    creatives = [
        AdCreative.objects.create(
            campaign=campaign,
            job=job,
            headline=headline,
            body="Dry feet on every trail this spring.",
            cta="Shop now",
            checks=PASSED,
            rank=rank,
        )
        for rank, headline in enumerate(["Boots that love mud", "=HYPERLINK(1)"], start=1)
    ]
    return {"campaign": campaign, "job": job, "creatives": creatives}


def _acme_urls(acme) -> dict[str, list[str]]:
    campaign, job, creative = acme["campaign"].pk, acme["job"].pk, acme["creatives"][0].pk
    return {
        "get": [
            f"/ads/campaigns/{campaign}",
            f"/ads/campaigns/{campaign}/export.csv",
            f"/ads/jobs/{job}/progress",
            f"/api/ads/campaigns/{campaign}",
            f"/api/ads/campaigns/{campaign}/creatives",
            f"/api/ads/campaigns/{campaign}/export.csv",
            f"/api/ads/jobs/{job}",
        ],
        "post": [
            f"/ads/campaigns/{campaign}",
            f"/ads/campaigns/{campaign}/performance",
            f"/ads/creatives/{creative}/approve",
            f"/ads/creatives/{creative}/reject",
            f"/ads/creatives/{creative}/edit",
            f"/api/ads/campaigns/{campaign}/drafts",
            f"/api/ads/creatives/{creative}/approve",
            f"/api/ads/creatives/{creative}/reject",
            f"/api/ads/creatives/{creative}/edit",
        ],
    }


def test_another_advertiser_gets_404_on_every_page_endpoint_and_export(advertisers, acme):
    """Bob (Globex) reads and acts on nothing of Acme's: every page, API call and export
    answers 404, and nothing changes."""
    bob = _client(advertisers["bob"])
    urls = _acme_urls(acme)
    for url in urls["get"]:
        assert bob.get(url).status_code == 404, url
    body = {"n": 2, "headline": "Mine now", "body": "Taken over.", "cta": "Shop now"}
    for url in urls["post"]:
        assert bob.post(url, body).status_code == 404, url
    assert DraftJob.objects.filter(campaign=acme["campaign"]).count() == 1
    assert set(AdCreative.objects.values_list("status", flat=True)) == {"draft"}
    assert not CreativeEvent.objects.exists()
    # Lists never show Acme's campaign.
    assert b"Spring boots" not in bob.get("/ads/studio").content
    assert bob.get("/api/ads/campaigns").json() == {"campaigns": []}
    # A performance row for Acme's creative reads as unknown and is not stored.
    creative = acme["creatives"][0]
    rows = [{"creative_id": creative.pk, "impressions": 100, "clicks": 5}]
    answer = bob.post("/api/ads/performance", {"rows": rows}, content_type="application/json")
    assert answer.json()["imported"] == 0
    assert f"no creative {creative.pk} of yours" in answer.json()["errors"][0]
    assert not CreativePerformance.objects.exists()
    # Nor can Bob file a campaign under Acme.
    created = bob.post(
        "/api/ads/campaigns",
        {"advertiser": advertisers["acme"].pk, "name": "x", "description": "some product here"},
        content_type="application/json",
    )
    assert created.status_code == 400 and "advertiser" in created.json()
    page = bob.post(
        "/ads/studio",
        {
            "advertiser": advertisers["acme"].pk,
            "name": "x",
            "description": "a b c",
            "language": "en",
        },
    )
    assert page.status_code == 400
    assert Campaign.objects.count() == 1


def test_signed_out_visitors_are_sent_to_sign_in_and_the_api_refuses(acme):
    """Without a session the pages redirect to sign-in and the API answers 401/403."""
    urls = _acme_urls(acme)
    for url in [u for u in urls["get"] if not u.startswith("/api/")] + ["/ads/studio"]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/?next="
        ), url
    for url in [u for u in urls["get"] + urls["post"] if u.startswith("/api/")]:
        assert Client().get(url).status_code in (401, 403), url


def test_a_member_sees_their_campaign_and_the_studio_escapes_model_text(advertisers, acme):
    """Alice (Acme) sees the campaign with its drafts; model text is escaped on the page."""
    acme["creatives"][0].headline = "<script>alert(1)</script>"
    acme["creatives"][0].save()
    alice = _client(advertisers["alice"])
    page = alice.get(f"/ads/campaigns/{acme['campaign'].pk}")
    assert page.status_code == 200
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.content
    listed = alice.get(f"/api/ads/campaigns/{acme['campaign'].pk}/creatives").json()
    assert [c["rank"] for c in listed["creatives"]] == [1, 2]
    assert alice.get(f"/api/ads/jobs/{acme['job'].pk}").json()["kept"] == 2


def test_approve_edit_reject_are_audited_and_edits_pass_the_hard_checks(advertisers, acme):
    """Each decision and edit is recorded with who and what changed; an edit that breaks a
    hard check (a banned term, a headline over the limit) is refused and nothing changes;
    editing an approved creative sends it back to draft."""
    alice_user = advertisers["alice"]
    alice = _client(alice_user)
    creative = acme["creatives"][0]
    api = f"/api/ads/creatives/{creative.pk}"
    approved = alice.post(f"{api}/approve", {"note": "good"}, content_type="application/json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["reviewed_by"] == "alice"
    banned = {"headline": "Cheap boots for all", "body": "Dry feet.", "cta": "Shop now"}
    refused = alice.post(f"{api}/edit", banned, content_type="application/json")
    assert refused.status_code == 409 and "banned_terms" in refused.json()["detail"]
    long = banned | {"headline": "Boots " * 20}
    assert alice.post(f"{api}/edit", long, content_type="application/json").status_code == 409
    creative.refresh_from_db()
    assert creative.headline == "Boots that love mud" and creative.status == "approved"
    edit = {"headline": "Boots that love spring mud", "body": "Dry feet.", "cta": "Shop now"}
    edited = alice.post(f"{api}/edit", edit, content_type="application/json")
    assert edited.status_code == 200 and edited.json()["status"] == "draft"
    assert edited.json()["checks"]["passed"] is True
    rejected = alice.post(f"/ads/creatives/{creative.pk}/reject", {"note": "not now"})
    assert rejected.status_code == 302
    events = list(CreativeEvent.objects.filter(creative=creative))
    assert [e.action for e in events] == ["approved", "edited", "rejected"]
    assert all(e.user == alice_user for e in events)
    assert events[1].changes["headline"] == ["Boots that love mud", "Boots that love spring mud"]
    assert events[1].changes["status"] == ["approved", "draft"]
    assert events[2].note == "not now"


def test_a_regulated_creative_waits_for_a_plaza_reviewer(advertisers, acme, make_user):
    """A creative marked for extra review cannot be approved by the advertiser's member,
    only by a user with ads.approve_regulated."""
    creative = acme["creatives"][0]
    creative.needs_review = True
    creative.save()
    alice = _client(advertisers["alice"])
    refused = alice.post(f"/api/ads/creatives/{creative.pk}/approve", {}, "application/json")
    assert refused.status_code == 409 and "regulated" in refused.json()["detail"]
    reviewer = _client(make_user("reviewer", "ads.approve_regulated", staff=True))
    assert reviewer.post(f"/api/ads/creatives/{creative.pk}/approve").status_code == 200


def test_export_has_only_approved_creatives_with_formulas_made_inert(advertisers, acme):
    """The CSV export lists the campaign's approved creatives only, and a cell that starts
    like a spreadsheet formula is prefixed so it stays text."""
    alice = _client(advertisers["alice"])
    for creative in acme["creatives"]:
        alice.post(f"/api/ads/creatives/{creative.pk}/approve")
    AdCreative.objects.create(
        campaign=acme["campaign"], headline="Still a draft", body="b", cta="Shop now"
    )
    text = alice.get(f"/ads/campaigns/{acme['campaign'].pk}/export.csv").content.decode()
    lines = text.strip().splitlines()
    assert lines[0].startswith("creative_id,campaign,headline,body,cta")
    assert len(lines) == 3 and "Still a draft" not in text
    assert "'=HYPERLINK(1)" in text


def test_performance_import_keeps_good_rows_reports_bad_ones_and_feeds_training(advertisers, acme):
    """A CSV of impressions and clicks: good rows stored (re-importing a day replaces it),
    bad rows reported by line and field; approved creatives then become training rows
    weighted by CTR."""
    from ads.services.training import creative_training_rows

    alice_user = advertisers["alice"]
    alice = _client(alice_user)
    best, other = acme["creatives"]
    csv_text = (
        "creative_id,impressions,clicks,day\n"
        f"{best.pk},1000,80,2026-11-01\n"
        f"{other.pk},1000,5,2026-11-01\n"
        f"{best.pk},ten,1,2026-11-02\n"
        f"{best.pk},10,20,2026-11-02\n"
        f"{best.pk},500,40,2026-11-01\n"
    )
    upload = SimpleUploadedFile("perf.csv", csv_text.encode(), content_type="text/csv")
    response = alice.post(f"/ads/campaigns/{acme['campaign'].pk}/performance", {"file": upload})
    assert response.status_code == 302
    texts = [str(m) for m in response.wsgi_request._messages]
    assert "Imported 3 row(s)." in texts
    assert any("perf.csv:4: impressions: expected a whole number" in t for t in texts)
    assert any("perf.csv:5: clicks: 20 is more than impressions (10)" in t for t in texts)
    best.refresh_from_db()
    assert (best.impressions, best.clicks) == (500, 40)  # the day was replaced
    for creative in acme["creatives"]:
        alice.post(f"/api/ads/creatives/{creative.pk}/approve")
    rows = creative_training_rows(advertiser=advertisers["acme"])
    assert creative_training_rows(advertiser=advertisers["globex"]) == []
    weights = {row.output: row.weight for row in rows}
    assert weights["Boots that love mud"] > weights["=HYPERLINK(1)"]
    assert all(row.product == "Trailhead boots" and row.body for row in rows)
    assert all(row.desc.startswith("Waterproof") for row in rows)


def test_openapi_schema_describes_the_ads_api(advertisers):
    """/api/schema documents the ads endpoints, with the brief's fields."""
    response = _client(advertisers["alice"]).get(
        "/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/ads/campaigns",
        "/api/ads/campaigns/{campaign_id}/drafts",
        "/api/ads/creatives/{creative_id}/edit",
        "/api/ads/jobs/{job_id}",
        "/api/ads/performance",
    ):
        assert path in paths, path
    brief = response.json()["components"]["schemas"]["CampaignRequest"]["properties"]
    assert {"advertiser", "description", "banned_terms", "category"} <= set(brief)


def test_a_member_creates_a_campaign_and_bad_fields_are_named(advertisers):
    """POST /api/ads/campaigns files a brief under the member's advertiser; a bad category
    or a missing description is a 400 naming the field."""
    alice = _client(advertisers["alice"])
    brief = {
        "advertiser": advertisers["acme"].pk,
        "name": "Autumn boots",
        "description": "Warm boots for autumn walks",
        "keywords": ["warm"],
        "category": "health",
    }
    created = alice.post("/api/ads/campaigns", brief, content_type="application/json")
    assert created.status_code == 201 and created.json()["advertiser"] == "Acme"
    shown = alice.get(f"/api/ads/campaigns/{created.json()['id']}").json()
    assert shown["category_decision"]["action"] == "review"
    bad = alice.post(
        "/api/ads/campaigns",
        brief | {"category": "casino", "description": ""},
        content_type="application/json",
    )
    assert bad.status_code == 400 and {"category", "description"} <= set(bad.json())


def test_a_brief_too_thin_to_draft_is_refused_by_field_not_a_500(advertisers):
    """A campaign saved with a one-word description (e.g. through the admin) still shows;
    asking to draft it is a 400 naming the description, and no job is queued."""
    thin = Campaign.objects.create(
        advertiser=advertisers["acme"], name="thin", description="Boots", keywords="oops"
    )
    alice = _client(advertisers["alice"])
    assert alice.get(f"/ads/campaigns/{thin.pk}").status_code == 200
    assert alice.get(f"/api/ads/campaigns/{thin.pk}").status_code == 200
    page = alice.post(f"/ads/campaigns/{thin.pk}", {"n": 3})
    assert page.status_code == 400 and b"description" in page.content
    api = alice.post(f"/api/ads/campaigns/{thin.pk}/drafts", {"n": 3})
    assert api.status_code == 400 and "description" in api.json()["detail"]
    assert not DraftJob.objects.filter(campaign=thin).exists()
