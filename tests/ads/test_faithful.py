"""ads.creative.faithful: a draft says only what its brief says. Each failure a new user
saw on a fresh install (drafts for "Trailrunner 3" running shoes and a Spanish coffee
subscription) is pinned here, beside drafts that must pass: the demo set Plaza trains its
default adapter on, and the worked examples the base model is shown."""

from __future__ import annotations

import pytest

from ads.creative.check import Creative
from ads.creative.faithful import (
    FAITHFULNESS_CHECKS,
    BriefFacts,
    check_faithful,
    facts_to_keep,
    product_named,
    repair_product_name,
)
from ads.datasets import DEFAULT_SET_CSV, dataset_from_csv
from ads.prompts import EXAMPLES, body_prompt, headline_prompt

SHOES = BriefFacts.of(
    product="Trailrunner 3",
    description="Lightweight trail running shoes with a grippy sole and a waterproof upper, "
    "for runners who head off-road.",
    keywords=("trail", "grip", "waterproof"),
)
COFFEE = BriefFacts.of(
    product="Café Origen",
    description="Suscripción de café de especialidad: cada mes recibes en casa 250 g de café "
    "recién tostado de pequeños productores.",
    language="es",
)
GOOD_HEADLINE = "Trailrunner 3 Grips Every Trail"
GOOD_BODY = "A waterproof upper and a grippy sole keep you moving when the path turns to mud."


def failed(headline: str, body: str, facts: BriefFacts = SHOES) -> dict[str, str]:
    results = check_faithful(Creative(headline, body, "Shop now"), facts)
    assert set(results) == set(FAITHFULNESS_CHECKS)
    return {name: r.detail for name, r in results.items() if not r.ok}


def test_a_faithful_draft_passes_every_check():
    assert failed(GOOD_HEADLINE, GOOD_BODY) == {}
    assert (
        failed(
            "Tu café recién tostado cada mes",
            "Con Café Origen recibes en casa 250 g de café de pequeños productores, "
            "tostado para ti.",
            COFFEE,
        )
        == {}
    )


def test_a_misnamed_product_is_an_invented_name():
    """ "Ride 3 is the best running shoe" for Trailrunner 3: the name and the claim fail."""
    found = failed("Ride 3 is the best running shoe for off-road riding.", GOOD_BODY)
    assert "Ride" in found["invented"] and "best" in found["claims"]


def test_the_product_is_named_as_the_brief_writes_it_or_repaired():
    draft = Creative("trailrunner 3 grips", "TrailRunner  3 has a grippy sole.", "Shop now")
    assert not product_named(draft, SHOES)
    assert "written otherwise" in failed(draft.headline, draft.body)["product"]
    repaired = repair_product_name(draft.body, SHOES)
    assert repaired == "Trailrunner 3 has a grippy sole."
    assert product_named(Creative(draft.headline, repaired, ""), SHOES)
    # A draft that does not name it passes on its own: naming is counted per job.
    assert "product" not in failed("Grip for Every Trail", GOOD_BODY)


def test_invented_products_and_figures_fail():
    found = failed(
        "Trailrunner 3: Grip for Every Trail",
        "Ride Waterproof in a backpack. 10 miles of trail running, 2-3 days of hiking.",
    )
    for invented in ("10", "2", "Waterproof"):
        assert invented in found["invented"]
    # The brief's own numbers are facts: "Fill 12 pockets" for a 12-pocket tower is fine.
    tower = BriefFacts.of(product="Sprout Tower 12", description="A tower with 12 pockets.")
    post = "Fill 12 pockets with basil and mint."
    assert failed("Sprout Tower 12 Grows Herbs", post, tower) == {}


def test_unsubstantiated_superlatives_fail_unless_the_brief_says_them():
    found = failed(GOOD_HEADLINE, "We are the best running shoes for trail running.")
    assert "best" in found["claims"]
    assert "claims" in failed(GOOD_HEADLINE, "Lighter than any trail shoe, with a grippy sole.")
    assert "claims" in failed(GOOD_HEADLINE, f"{GOOD_BODY} Guaranteed.")
    assert "claims" in failed(GOOD_HEADLINE, f"The #1 trail shoe. {GOOD_BODY}")
    proven = BriefFacts.of(
        product="Trailrunner 3",
        description="Trail running shoes with a grippy sole, voted best trail shoe by readers.",
    )
    assert "claims" not in failed(GOOD_HEADLINE, "Voted best trail shoe, grippy sole.", proven)
    found = failed("Café Origen, el mejor café", "Café recién tostado cada mes.", COFFEE)
    assert "el mejor" in found["claims"]


def test_filler_and_repetition_fail():
    assert (
        "It can be easier to buy."
        in failed(GOOD_HEADLINE, f"It can be easier to buy. {GOOD_BODY}")["grounded"]
    )
    assert "body_adds" in failed("Trailrunner 3 Grips the Trail", "Trailrunner 3 grips the trail.")
    found = failed(GOOD_HEADLINE, "The best grip, the best upper, the best shoe on any trail.")
    assert "best" in found["repetition"]
    # A hook question may stand alone; a post of nothing but hooks may not.
    assert failed(GOOD_HEADLINE, f"Muddy morning? {GOOD_BODY}") == {}
    assert "grounded" in failed(GOOD_HEADLINE, "Muddy morning? Ready to go?")


def test_a_spanish_brief_drafted_in_english_or_about_a_chef_fails():
    found = failed(
        "Café Origen en tu casa cada mes",
        "Fresh specialty coffee delivered to your door every month, roasted by small farmers.",
        COFFEE,
    )
    assert "written in en" in found["language"]
    assert (
        "chef"
        in failed(
            "Café Origen en tu casa", "Nuestro chef prepara el café recién tostado para ti.", COFFEE
        )["invented"]
    )


def test_a_variation_keeps_the_advertisers_facts():
    own = BriefFacts.of(
        product="Trailrunner 3",
        description="Trail running shoes with a grippy sole.",
        own_text=("Trailrunner 3: 280 g of grip",),
    )
    assert failed("Trailrunner 3 at 280 g", "A grippy sole for every trail run.", own) == {}
    found = failed("Light Shoes for the Trail", "A grippy sole for every trail run.", own)
    assert "280" in found["keeps_facts"] and "Trailrunner 3" in found["keeps_facts"]


def test_a_rewrite_prompt_lists_the_facts_its_variation_must_keep():
    """The product where the original names it and each number with its word, less what
    the drafted headline keeps already; numbers compared as the checks compare them."""
    own = "Trailrunner 3: 280 g of grip\nThe Trailrunner 3 weighs 280 g, 1,000 km of wear."
    assert facts_to_keep(own, SHOES) == ["Trailrunner 3", "280 g", "1,000 km"]
    assert facts_to_keep(own, SHOES, written="Trailrunner 3 at 280 g") == ["1,000 km"]
    assert facts_to_keep(own, SHOES, written="280 g, 1000 km: Trailrunner 3") == []
    assert facts_to_keep("Grip for muddy trails", SHOES) == []
    coffee = facts_to_keep("Café Origen: 250 g al mes, 3,5 € el envío, 100% arábica", COFFEE)
    assert coffee == ["Café Origen", "250 g", "3,5 €", "100%"]
    fields = {"description": "Trail shoes.", "product": "Trailrunner 3"}
    prompt = headline_prompt(**fields, original="Trailrunner 3: 280 g")
    assert prompt.endswith("Original: Trailrunner 3: 280 g\nKeep: Trailrunner 3; 280 g\nHeadline:")
    post = body_prompt(**fields, headline="Light", original="It weighs 280 g.")
    assert post.endswith("Original: It weighs 280 g.\nKeep: 280 g\nPost:")
    assert "Keep:" not in headline_prompt(**fields, original="Grip for muddy trails")
    assert "Keep:" not in headline_prompt(**fields)  # not a rewrite
    # The post's list leaves out what the drafted headline kept, names the headline's facts.
    kept = body_prompt(**fields, headline="280 g", original="Light.", original_headline="280 g")
    assert "Keep:" not in kept
    lost = body_prompt(**fields, headline="Light", original="Grip.", original_headline="At 280 g")
    assert lost.endswith("Original: Grip.\nKeep: 280 g\nPost:")


@pytest.mark.parametrize("language", sorted(EXAMPLES))
def test_the_worked_examples_the_base_model_sees_are_faithful(language):
    for brief, headline, post, other_headline, other_post in EXAMPLES[language]:
        facts = BriefFacts.of(
            product=brief.product,
            description=brief.description,
            language=language,
            keywords=brief.keywords,
        )
        assert failed(headline, post, facts) == {}, headline
        assert failed(other_headline, other_post, facts) == {}, other_headline


def test_every_row_of_the_default_adapters_demo_set_is_faithful():
    """The default adapter learns exactly what it sees: every row passes every check,
    names its product in the headline or the post, in English and Spanish."""
    dataset = dataset_from_csv(DEFAULT_SET_CSV)
    rows = dataset.train + dataset.eval
    assert not dataset.errors and len(rows) >= 200
    assert {row.language for row in rows} == {"en", "es"}
    assert dataset.tasks == ("headline", "body", "rewrite")
    for row in rows:
        facts = BriefFacts.of(
            product=row.product,
            description=row.desc,
            language=row.language,
            keywords=row.keywords,
        )
        draft = Creative(row.output, row.body, "Learn more")
        assert failed(draft.headline, draft.body, facts) == {}, (row.product, row.output)
        assert product_named(draft, facts), row.product
        # Its variant rewords it and keeps every fact (numbers, the product's name).
        kept = BriefFacts.of(
            product=row.product,
            description=row.desc,
            language=row.language,
            keywords=row.keywords,
            own_text=(row.output, row.body),
        )
        variant = (row.variant_headline, row.variant_body)
        assert failed(*variant, kept) == {}, (row.product, variant)
        # It teaches rewriting both ways: the row keeps its variant's facts too.
        back = BriefFacts.of(
            product=row.product,
            description=row.desc,
            language=row.language,
            keywords=row.keywords,
            own_text=variant,
        )
        assert failed(row.output, row.body, back) == {}, (row.product, row.output)
        assert row.variant_headline.casefold() != row.output.casefold()


def test_the_default_adapter_learns_to_keep_what_a_rewrite_prompt_lists():
    """Every rewritten post it is trained on keeps each fact its prompt's Keep line lists
    (the number, or the product's name), so the line means what it says."""
    dataset = dataset_from_csv(DEFAULT_SET_CSV)
    posts = [e for e in dataset.train_examples() if e.prompt.startswith("Rewrite this ad post")]
    listed = [e for e in posts if "\nKeep: " in e.prompt]
    assert len(listed) >= len(posts) // 2
    for example in listed:
        keep = example.prompt.split("\nKeep: ")[1].split("\n")[0].split("; ")
        for fact in keep:
            assert fact.split()[0] in example.completion, (fact, example.completion)
