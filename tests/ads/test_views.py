"""The adapters pages check who asks: members see their advertiser's runs and adapters
and shared adapters, never another advertiser's (404, ids tell nothing); starting and
cancelling need the training permission; signed-out visitors are sent to sign in."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ads.models import Adapter, TrainingRun
from tests.ads.conftest import SMALL_MODEL

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def acme_run(advertisers):
    return TrainingRun.objects.create(
        adapter_name="acme-v1",
        base_model=SMALL_MODEL,
        scope="advertiser",
        advertiser=advertisers["acme"],
        dataset="demo",
        steps=10,
        step=4,
        loss_history=[[1, 3.2], [2, 3.0], [3, 2.9], [4, 2.7]],
    )


def test_signed_out_visitors_are_sent_to_sign_in(acme_run):
    for url in (
        "/ads/adapters",
        f"/ads/training/{acme_run.pk}",
        f"/ads/training/{acme_run.pk}/progress",
    ):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/?next="
        )


def test_a_member_follows_their_run_and_another_advertiser_gets_404(advertisers, acme_run):
    alice, bob = _client(advertisers["alice"]), _client(advertisers["bob"])
    page = alice.get(f"/ads/training/{acme_run.pk}")
    assert page.status_code == 200 and b"loss-chart" in page.content
    progress = alice.get(f"/ads/training/{acme_run.pk}/progress").json()
    assert progress["step"] == 4 and progress["loss_history"][-1] == [4, 2.7]
    for url in (f"/ads/training/{acme_run.pk}", f"/ads/training/{acme_run.pk}/progress"):
        assert bob.get(url).status_code == 404
    assert bob.post(f"/ads/training/{acme_run.pk}/cancel").status_code == 404
    assert not TrainingRun.objects.get(pk=acme_run.pk).cancel_requested
    assert alice.post(f"/ads/training/{acme_run.pk}/cancel").status_code == 302
    assert TrainingRun.objects.get(pk=acme_run.pk).cancel_requested
    assert _client(advertisers["staff"]).get(f"/ads/training/{acme_run.pk}").status_code == 200


def test_the_adapters_list_shows_shared_and_own_adapters_only(advertisers, acme_run):
    for name, scope, advertiser in (
        ("shared-all", "global", None),
        ("acme-own", "advertiser", advertisers["acme"]),
        ("globex-own", "advertiser", advertisers["globex"]),
    ):
        Adapter.objects.create(
            name=name, base_model=SMALL_MODEL, scope=scope, advertiser=advertiser
        )
    page = _client(advertisers["alice"]).get("/ads/adapters").content.decode()
    assert "shared-all" in page and "acme-own" in page and "acme-v1" in page
    assert "globex-own" not in page
    staff_page = _client(advertisers["staff"]).get("/ads/adapters").content.decode()
    assert "globex-own" in staff_page and "acme-v1" in staff_page


def test_a_member_starts_a_run_on_an_uploaded_csv_for_their_advertiser_only(
    advertisers, data_dir, django_capture_on_commit_callbacks
):
    """The upload is kept under the data dir and checked before the run is queued; a
    member cannot train for another advertiser or for everyone; a bad CSV is a 400 that
    names the problem."""
    csv = (
        "desc,output\n"
        + "".join(
            f'"Product {i} helps small shops sell more online",Sell More Online {i}\n'
            for i in range(30)
        )
    ).encode()
    alice = _client(advertisers["alice"])
    form = {"name": "acme-upload", "steps": 5, "learning_rate": 2e-4, "rank": 8}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        created = alice.post(
            "/ads/adapters",
            form
            | {
                "advertiser": advertisers["acme"].pk,
                "dataset": SimpleUploadedFile("mine.csv", csv, "text/csv"),
            },
        )
    assert created.status_code == 302 and len(queued) == 1
    run = TrainingRun.objects.get(adapter_name="acme-upload")
    assert run.advertiser == advertisers["acme"] and run.dataset.startswith(str(data_dir))
    assert run.train_examples + run.eval_examples == 30

    refused = alice.post(
        "/ads/adapters", form | {"name": "x2", "advertiser": advertisers["globex"].pk}
    )
    assert refused.status_code == 400 and not TrainingRun.objects.filter(adapter_name="x2")
    bad = alice.post(
        "/ads/adapters",
        form
        | {
            "name": "x3",
            "advertiser": advertisers["acme"].pk,
            "dataset": SimpleUploadedFile("bad.csv", b"headline\nhi\n", "text/csv"),
        },
    )
    assert bad.status_code == 400 and b"missing column" in bad.content


def test_starting_a_run_needs_the_training_permission(advertisers, make_user):
    viewer = make_user("viewer")
    advertisers["acme"].members.add(viewer)
    client = _client(viewer)
    assert b"Start training" not in client.get("/ads/adapters").content
    assert client.post("/ads/adapters", {"name": "nope", "steps": 3}).status_code == 403


def test_performance_rows_with_numbers_too_large_are_reported_not_a_500(advertisers):
    """POST /api/ads/performance: a day's count above review.MAX_DAILY_COUNT (10**12) is a
    row error naming the field; the good row beside it is stored."""
    from ads.models import AdCreative, Campaign

    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"], name="c", description="two words"
    )
    creative = AdCreative.objects.create(campaign=campaign, headline="h", body="b", cta="Shop now")
    rows = [
        {"creative_id": creative.pk, "impressions": 10**24, "clicks": 1},
        {"creative_id": creative.pk, "impressions": 100, "clicks": 5, "day": "2024-01-02"},
    ]
    response = _client(advertisers["alice"]).post(
        "/api/ads/performance", {"rows": rows}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "imported": 1,
        "errors": ["rows[0]: impressions: must be at most 1000000000000"],
    }
