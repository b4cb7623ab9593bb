"""Drafting on a fresh install, as a new advertiser would: three briefs of Plaza's own
(English, Spanish, one with banned terms) drafted with the shipped default adapter give 8
kept drafts each, every one passing every hard and faithfulness check when checked again
from its saved text, with the product named in at least three of four; a brief carrying
the advertiser's own text gets variations that keep its facts. The real bundled model
(Gemma 3 270M through llama.cpp), the real retrieval encoder."""

from __future__ import annotations

import pytest

from ads.briefs import Brief, limits
from ads.creative.check import Creative, check_creative
from ads.creative.faithful import BriefFacts, check_faithful, product_named
from ads.creative.text import find_banned_terms
from ads.models import AdCreative, Campaign
from ads.selectors import adapter_for_campaign
from ads.services import drafting

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

BRIEFS = [
    {
        "product": "Trailrunner 3",
        "description": "Lightweight trail running shoes with a grippy sole and a waterproof "
        "upper, for runners who head off-road.",
        "audience": "trail runners",
        "keywords": ["trail", "grip", "waterproof"],
        "objective": "sales",
    },
    {
        "product": "Café Origen",
        "description": "Suscripción de café de especialidad: cada mes recibes en casa 250 g de "
        "café recién tostado de pequeños productores.",
        "language": "es",
        "keywords": ["café", "suscripción"],
        "objective": "suscripciones",
    },
    {
        "product": "Nimbus Notes",
        "description": "A note-taking app that syncs across phone and laptop and works "
        "offline, free for personal use.",
        "keywords": ["notes", "offline", "sync"],
        "banned_terms": ["free", "cheap", "best"],
        "objective": "app installs",
        "landing_url": "https://nimbus.example/notes",
    },
]


def facts_of(campaign: Campaign) -> BriefFacts:
    return Brief.from_campaign(campaign).facts


def saved_drafts(campaign: Campaign, n: int, seed: int) -> list[AdCreative]:
    job = drafting.draft_job_create(campaign=campaign, n=n, seed=seed, enqueue=False)
    job = drafting.draft_job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    assert job.adapter is not None and job.adapter.name == "plaza-default"
    return list(AdCreative.objects.filter(job=job).order_by("rank"))


def assert_passes_everything(campaign: Campaign, creative: AdCreative) -> None:
    draft = Creative(creative.headline, creative.body, creative.cta)
    report = check_creative(
        draft,
        limits=limits(),
        banned_terms=campaign.banned_terms,
        landing_url=campaign.landing_url,
        category=campaign.category,
    )
    assert report.passed, (creative.headline, creative.body, report.failed)
    faithful = check_faithful(draft, facts_of(campaign))
    failed = {name: r.detail for name, r in faithful.items() if not r.ok}
    assert not failed, (creative.headline, creative.body, failed)
    assert creative.checks["faithful"] is True and creative.checks["unfaithful"] == []


def test_three_own_briefs_give_eight_faithful_drafts_each(advertisers, data_dir):
    for i, brief in enumerate(BRIEFS):
        campaign = Campaign.objects.create(advertiser=advertisers["acme"], name=f"c{i}", **brief)
        assert adapter_for_campaign(campaign=campaign).name == "plaza-default"
        creatives = saved_drafts(campaign, n=8, seed=101 + i)
        assert len(creatives) == 8, [c.headline for c in creatives]
        for creative in creatives:
            assert_passes_everything(campaign, creative)
            text = f"{creative.headline}\n{creative.body}"
            assert not find_banned_terms(text, campaign.banned_terms)
        facts = facts_of(campaign)
        named = sum(product_named(Creative(c.headline, c.body, c.cta), facts) for c in creatives)
        assert named >= 6, [c.headline for c in creatives]
        headlines = {c.headline.casefold() for c in creatives}
        assert len(headlines) == len(creatives)


def test_variations_of_the_advertisers_own_text_keep_its_facts(advertisers, data_dir):
    own_headline = "Trailrunner 3: 280 g of grip for muddy trails"
    own_body = "The Trailrunner 3 weighs 280 g and keeps your feet dry with a waterproof upper."
    campaign = Campaign.objects.create(
        advertiser=advertisers["acme"],
        name="rewrite",
        **BRIEFS[0],
        own_headline=own_headline,
        own_body=own_body,
    )
    creatives = saved_drafts(campaign, n=4, seed=7)
    assert creatives
    for creative in creatives:
        assert_passes_everything(campaign, creative)
        assert "280" in f"{creative.headline} {creative.body}"
        assert "Trailrunner 3" in f"{creative.headline} {creative.body}"
        assert creative.prompt.startswith("Rewrite this ad headline in English")
        assert (creative.headline, creative.body) != (own_headline, own_body)
