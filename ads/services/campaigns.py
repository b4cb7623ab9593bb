"""Campaigns: a brief written for one of an advertiser's products.

    campaign = campaign_create(
        advertiser=acme, name="Spring boots", description="Waterproof leather hiking boots",
        keywords=["waterproof"], created_by=request.user,
    )

The studio's form and the API check the fields (the advertiser is one the user acts for,
the description says enough to draft) before they call in.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from ads.models import Advertiser, Campaign


@transaction.atomic
def campaign_create(
    *,
    advertiser: Advertiser,
    name: str,
    description: str,
    product: str = "",
    audience: str = "",
    tone: str = "",
    language: str = "en",
    objective: str = "",
    keywords: Sequence[str] = (),
    landing_url: str = "",
    banned_terms: Sequence[str] = (),
    category: str = "",
    own_headline: str = "",
    own_body: str = "",
    created_by=None,
) -> Campaign:
    """A new campaign of the advertiser's, written by the user `created_by` (or nobody)."""
    return Campaign.objects.create(
        advertiser=advertiser,
        name=name,
        product=product,
        description=description,
        audience=audience,
        tone=tone,
        language=language,
        objective=objective,
        keywords=list(keywords),
        landing_url=landing_url,
        banned_terms=list(banned_terms),
        category=category,
        own_headline=own_headline,
        own_body=own_body,
        created_by=created_by,
    )
