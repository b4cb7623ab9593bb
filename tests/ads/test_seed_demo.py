"""manage.py seed_demo: the demo advertiser, its member (not staff, its admin) with a
password written to the file, three campaigns (English, Spanish, one in the health
category that goes to extra review) and their creatives, the shipped demo creative among
them approved. Twice gives the same rows and says what it found; the member signs in with
the written password and sees the three campaigns in the studio."""

from __future__ import annotations

import io
import json
import stat

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from ads.models import AdCreative, Advertiser, Campaign, CreativeEvent, Membership
from ads.seeding import DEMO_STUDIO

pytestmark = pytest.mark.django_db

SPEC = json.loads(DEMO_STUDIO.read_text(encoding="utf-8"))
CAMPAIGNS = [c["name"] for c in SPEC["campaigns"]]


def _seed(password_file) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--password-file", str(password_file), stdout=out)
    return out.getvalue()


def _rows() -> dict:
    return {
        model.__name__: sorted(model.objects.values_list("pk", flat=True))
        for model in (User, Advertiser, Membership, Campaign, AdCreative, CreativeEvent)
    }


def test_seed_creates_the_demo(tmp_path):
    """One advertiser, the member `demo` as its admin and not staff, the three campaigns
    with their briefs' languages and category, each with creatives; the password file is
    the member's password, readable by its owner only."""
    password_file = tmp_path / "demo-password.txt"
    out = _seed(password_file)
    assert "created advertiser 'Plaza Demo Co.'" in out
    assert f"Sign in at /accounts/login/ as 'demo': its password is in {password_file}" in out
    demo = User.objects.get(username="demo")
    assert not demo.is_staff and not demo.is_superuser and demo.is_active
    assert demo.check_password(password_file.read_text().strip())
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    advertiser = Advertiser.objects.get()
    assert Membership.objects.get(user=demo, advertiser=advertiser).role == "admin"
    campaigns = {c.name: c for c in Campaign.objects.filter(advertiser=advertiser)}
    assert sorted(campaigns) == sorted(CAMPAIGNS)
    assert {c.language for c in campaigns.values()} == {"en", "es"}
    assert [c.category for c in campaigns.values() if c.category] == ["health"]
    for campaign in campaigns.values():
        assert campaign.creatives.exists() and campaign.created_by == demo


def test_the_creatives_states_fit(tmp_path):
    """The shipped demo creative for the English brief (ads/demo/creatives.csv) is approved;
    the hand-written ones are drafts with their checks run: the health one waits for extra
    review, the one written to fail names its failed checks; every creative has its
    audit trail."""
    _seed(tmp_path / "pw")
    approved = AdCreative.objects.get(status=AdCreative.Status.APPROVED)
    assert approved.headline == "Plan Together Without the Chaos"
    assert approved.campaign.name == "Teamboard launch" and approved.checks["passed"]
    health = AdCreative.objects.filter(campaign__category="health")
    assert health.exists() and all(c.needs_review and c.status == "draft" for c in health)
    failing = AdCreative.objects.get(headline__startswith="The Only Project Tool")
    assert failing.status == "draft" and "banned_terms" in failing.checks["failed"]
    for creative in AdCreative.objects.all():
        assert creative.events.filter(action="created").exists()


def test_seed_twice_changes_nothing(tmp_path):
    """A second run finds everything, writes no row and leaves the password (file and
    account) as they were."""
    password_file = tmp_path / "demo-password.txt"
    _seed(password_file)
    before, password = _rows(), password_file.read_text()
    out = _seed(password_file)
    assert _rows() == before and password_file.read_text() == password
    assert "created" not in out
    for name in CAMPAIGNS:
        assert f"found campaign {name!r}" in out
    assert User.objects.get(username="demo").check_password(password.strip())


def test_seed_leaves_a_users_edits(tmp_path):
    """A campaign edited (or a creative deleted) after seeding is found, not restored."""
    _seed(tmp_path / "pw")
    campaign = Campaign.objects.get(name="Teamboard launch")
    campaign.description = "Edited by the newcomer."
    campaign.save(update_fields=["description"])
    campaign.creatives.filter(status="draft").delete()
    _seed(tmp_path / "pw")
    campaign.refresh_from_db()
    assert campaign.description == "Edited by the newcomer."
    assert not campaign.creatives.filter(status="draft").exists()


def test_the_member_signs_in_and_sees_the_three_campaigns(tmp_path):
    """Signing in at /accounts/login/ with the written password lands on the studio, which
    lists the three campaigns and the member's own invite form."""
    password_file = tmp_path / "demo-password.txt"
    _seed(password_file)
    client = Client()
    response = client.post(
        "/accounts/login/",
        {"username": "demo", "password": password_file.read_text().strip()},
    )
    assert response.status_code == 302 and response["Location"] == "/ads/studio"
    html = client.get("/ads/studio").content.decode()
    for name in ("Teamboard launch", "Café de la semana", "Physio at home"):
        assert name in html
    assert "You are not a member" not in html and 'action="/ads/members/invite"' in html


def test_a_found_member_without_its_file_is_told_how_to_set_one(tmp_path):
    """When the member exists but its password file is gone, the command says how to set a
    password instead of pointing at a missing file."""
    _seed(tmp_path / "first")
    out = _seed(tmp_path / "missing")
    assert "python manage.py changepassword demo" in out
    assert not (tmp_path / "missing").exists()


def test_seed_needs_a_migrated_database(tmp_path, monkeypatch):
    """On a database not migrated the command stops saying to run migrate."""
    from django.core.management import CommandError

    monkeypatch.setattr("ops.commands.database_needs_migrate", lambda: True)
    with pytest.raises(CommandError, match="migrate"):
        _seed(tmp_path / "pw")
