"""ads.creative: the hard checks, repairs and ranking every ad creative goes through."""

from __future__ import annotations

import ast
import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from ads.creative.categories import CategoryDecision, brief_category
from ads.creative.check import Creative, check_creative
from ads.creative.limits import DEFAULT_BANNED_TERMS, DEFAULT_LIMITS, CreativeLimits
from ads.creative.rank import cta_for_objective, drop_near_duplicates, rank
from ads.creative.repair import prepare_creative, repair
from ads.creative.text import (
    body_length,
    find_banned_terms,
    find_emoji,
    normalize_text,
    text_length,
)

REPO = Path(__file__).resolve().parents[2]
LANDING = "https://acme.example.com/offer"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # ZWJ family, 7 code points
FLAG = "\U0001f1ea\U0001f1f8"  # Spain: two regional indicators
THUMB = "\U0001f44d\U0001f3fd"  # thumbs up, medium skin tone


def creative(headline="Plan your week in one place", body="Boards and chat.", cta="Learn more"):
    return Creative(headline=headline, body=body, cta=cta)


def words(n: int) -> str:
    """A body of exactly n characters made of whole words."""
    text = " ".join(["word"] * (n // 5 + 1))[:n]
    return text[:-1] + "x" if text.endswith(" ") else text


# --- lengths -----------------------------------------------------------------------------


def test_headline_limit_is_inclusive_at_70():
    """A 70-character headline passes, 71 fails, and the report says how long it was."""
    ok = check_creative(creative(headline="h" * 70))
    too_long = check_creative(creative(headline="h" * 71))
    assert ok.checks["headline_length"].ok and ok.passed
    assert not too_long.checks["headline_length"].ok and not too_long.passed
    assert too_long.as_dict()["checks"]["headline_length"]["length"] == 71


def test_body_limit_is_280_without_a_link():
    """Without a link, a 280-character body passes and 281 fails."""
    assert len(words(280)) == 280
    assert check_creative(creative(body=words(280))).checks["body_length"].ok
    assert not check_creative(creative(body=words(281))).checks["body_length"].ok


def test_body_limit_is_257_when_the_landing_url_is_appended():
    """The landing URL appended costs 23 characters however long it is: 257 passes, 258 fails."""
    long_url = "https://acme.example.com/" + "x" * 100
    assert check_creative(creative(body=words(257)), landing_url=long_url).passed
    report = check_creative(creative(body=words(258)), landing_url=long_url)
    assert not report.checks["body_length"].ok
    assert report.checks["body_length"].data["length"] == 281


def test_a_link_in_the_body_counts_as_23_and_is_not_appended_twice():
    """A URL inside the body counts 23 whatever its length, and when it is on the landing
    site the landing URL is not appended again."""
    url = LANDING + "?utm_source=" + "x" * 60
    fits, over = words(256) + " " + url, words(257) + " " + url
    assert body_length(fits, landing_url=LANDING) == 280
    assert check_creative(creative(body=fits), landing_url=LANDING).passed
    assert not check_creative(creative(body=over), landing_url=LANDING).passed


def test_length_counts_what_people_see():
    """A ZWJ family, a flag, a skin-toned thumb or an accent written as two code points
    is one character each, so they do not eat the headline's room."""
    assert [text_length(s) for s in (FAMILY, FLAG, THUMB, "e\u0301")] == [1, 1, 1, 1]
    assert len(FAMILY) == 7
    assert check_creative(creative(headline="h" * 69 + FAMILY)).checks["headline_length"].ok
    assert not check_creative(creative(headline="h" * 70 + FLAG)).checks["headline_length"].ok


# --- emoji and hashtags --------------------------------------------------------------------


def test_multi_codepoint_emoji_count_as_one():
    """Each of a ZWJ family, a flag, a skin-toned emoji and a keycap counts as one emoji;
    text symbols like ™ and ✔ (without U+FE0F) are not emoji."""
    assert find_emoji(f"a {FAMILY} b {FLAG} c {THUMB} 1\ufe0f\u20e3 ™ ✔") == [
        FAMILY,
        FLAG,
        THUMB,
        "1\ufe0f\u20e3",
    ]
    assert check_creative(creative(body=f"Family time {FAMILY} ™")).checks["emoji"].ok
    two = check_creative(creative(headline=f"Go {FLAG}", body=f"Now {THUMB}"))
    assert not two.checks["emoji"].ok
    assert two.checks["emoji"].data["count"] == 2


def test_emoji_repair_keeps_the_first():
    """prepare_creative keeps the first emoji (headline before body) and drops the rest."""
    made, report, repairs = prepare_creative(
        creative(headline=f"Plan your week {FAMILY}", body=f"Boards {FLAG} and chat {THUMB}.")
    )
    assert made is not None and report.passed
    assert made.headline == f"Plan your week {FAMILY}"
    assert made.body == "Boards and chat."
    assert any("emoji" in repair for repair in repairs)


def test_hashtags_fail_unless_allowed():
    """A hashtag fails the check by default and passes with allow_hashtags; "#1" and a
    link's #fragment are not hashtags."""
    tagged = creative(body="Our #summer sale is on")
    assert not check_creative(tagged).checks["hashtags"].ok
    assert check_creative(tagged, limits=CreativeLimits(allow_hashtags=True)).passed
    plain = creative(body=f"We are #1 in town, see {LANDING}#prices")
    assert check_creative(plain, landing_url=LANDING).checks["hashtags"].ok


def test_hashtag_repair_keeps_words_and_drops_tag_tails():
    """Inline hashtags lose their '#', a tail of tags only is dropped."""
    made, _, repairs = prepare_creative(
        creative(headline="The #Summer sale", body="Our #summer sale is on.\n#sale #deal")
    )
    assert made is not None
    assert (made.headline, made.body) == ("The Summer sale", "Our summer sale is on.")
    assert "hashtags removed" in repairs


# --- banned terms --------------------------------------------------------------------------


def test_banned_terms_match_whole_words_only():
    """A banned "free" hits "Free" and "FREE!" but not "freedom" or "carefree"."""
    assert find_banned_terms("Feel the freedom, carefree", ["free"]) == []
    assert find_banned_terms("Try it FREE!", ["free"]) == ["free"]
    report = check_creative(creative(body="Freedom to plan"), banned_terms=["free"])
    assert report.checks["banned_terms"].ok


def test_banned_terms_ignore_accents_case_spacing_and_punctuation():
    """ "risk free" hits "Risk-Free", "risk  free" and "RiskFree"; "préstamo" hits "PRESTAMO"
    and "dinero facil" hits "Dinero fácil"."""
    for text in ("Totally Risk-Free", "risk  free", "RiskFree plan", "risk_free"):
        assert find_banned_terms(text, ["risk free"]) == ["risk free"], text
    assert find_banned_terms("PRESTAMO al instante", ["préstamo"]) == ["préstamo"]
    assert find_banned_terms("Dinero fácil ya", ["dinero facil"]) == ["dinero facil"]


def test_global_and_advertiser_lists_both_apply_and_are_never_repaired():
    """The global list applies without the advertiser's; the report says which list each
    match came from; a creative with a banned term is dropped, not repaired."""
    body = "Guaranteed returns on every cheap plan."
    report = check_creative(creative(body=body), banned_terms=["cheap"])
    data = report.checks["banned_terms"].data
    assert (data["advertiser"], data["global"]) == (["cheap"], ["guaranteed returns"])
    assert not report.passed and report.failed == ["banned_terms"]
    made, report, _ = prepare_creative(creative(body=body))
    assert made is None and report.checks["banned_terms"].data["matched"] == ["guaranteed returns"]
    assert "risk-free" in DEFAULT_BANNED_TERMS


# --- regulated categories -----------------------------------------------------------------


def test_declared_categories_follow_the_policy():
    """A declared housing brief goes to review; declared politics and pharma are blocked."""
    housing = brief_category(declared="housing", text="Nice flats")
    assert (housing.category, housing.source, housing.action) == ("housing", "declared", "review")
    assert brief_category(declared="politics", text="").action == "block"
    assert brief_category(declared="pharma", text="").action == "block"
    report = check_creative(creative(), category="housing")
    assert report.passed and report.needs_review


def test_detected_categories_in_english_and_spanish():
    """Keywords find an undeclared category, in English or Spanish, with the words that
    matched; a blocked one fails the creative's category check."""
    politics = brief_category(declared="", text="Vote for our candidate on Sunday")
    assert (politics.category, politics.source, politics.action) == (
        "politics",
        "detected",
        "block",
    )
    assert politics.matched == ("vote", "candidate")
    credit = brief_category(declared="", text="Préstamos rápidos sin papeleo")
    assert (credit.category, credit.action) == ("credit", "review")
    assert brief_category(declared="", text="Alquiler de pisos en Madrid").category == "housing"
    report = check_creative(creative(body="Elections are coming: vote for change"))
    assert not report.checks["category"].ok and not report.passed


def test_a_stricter_detected_category_overrides_the_declared_one():
    """A brief declared as health that sells prescription medication is pharma: blocked."""
    decision = brief_category(declared="health", text="Order your prescription medication online")
    assert (decision.category, decision.source, decision.action) == ("pharma", "detected", "block")


def test_the_briefs_decision_can_be_passed_whole():
    """check_creative takes the brief's decision as `category`: it keeps it, unless the
    creative's own words are stricter; results read as dicts too."""
    brief = brief_category(declared="", text="Apartments for rent in Madrid")
    report = check_creative(creative(), category=brief)
    assert report.passed and report.needs_review
    assert report.checks["category"]["category"] == "housing"
    assert report.checks["category"]["ok"] is True
    stricter = check_creative(creative(body="Vote in the election"), category=brief)
    assert stricter.category.category == "politics" and "category" in stricter.failed
    made, _, _ = prepare_creative(creative(), category=brief)
    assert made is not None


def test_one_weak_keyword_does_not_flag():
    """Ordinary words that only sometimes mean a regulated category need a second one:
    rentals, prescription lenses, career coaching, a flavour vote are not regulated."""
    for text in (
        "Campervan rentals with unlimited kilometres",
        "Eyeglasses with prescription lenses included",
        "Coding bootcamp with career coaching",
        "Vote for your favourite flavour",
    ):
        assert brief_category(declared="", text=text) == CategoryDecision(), text


def test_demo_briefs_flag_only_insurance():
    """Of the demo briefs, only car insurance is flagged (financial, review)."""
    with (REPO / "ads" / "demo" / "creatives.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    flagged = {
        row["desc"]: (decision.category, decision.action)
        for row in rows
        if (
            decision := brief_category(declared="", text=f"{row['desc']}\n{row['output']}")
        ).category
    }
    assert list(flagged.values()) == [("financial", "review")]
    assert next(iter(flagged)).startswith("Car insurance")


def test_category_policy_comes_from_the_limits():
    """A policy from settings changes the action, and unlisted categories are not acted on."""
    limits = CreativeLimits.from_mapping({"category_policy": {"politics": "review"}})
    decision = brief_category(declared="", text="Vote in the election", limits=limits)
    assert (decision.category, decision.action) == ("politics", "review")
    assert brief_category(declared="housing", text="", limits=limits).action is None
    with pytest.raises(ValueError, match="unknown regulated category 'sports'"):
        brief_category(declared="sports", text="")


# --- repair --------------------------------------------------------------------------------

VOCABULARY = (
    "plan week boards chat teams and or with for your the a de y con Free 50 "
    "people, calendars: end-to-end café ñandú über - – ! great. really? done! "
    f"{FAMILY} {FLAG} (new) “quoted” Acme's 20% €9.99 self-hosted"
).split()


def test_repair_never_cuts_a_word():
    """Over many random texts and limits, a repaired text is made of the original's whole
    words (the last one may lose only trailing punctuation), fits the limit, and does not
    end on a dangling connector or comma."""
    rng = random.Random(20240611)
    checked = 0
    for _ in range(400):
        tokens = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 40))]
        text = " ".join(token + ("\n" if rng.random() < 0.05 else "") for token in tokens)
        limit = rng.randint(5, 150)
        result = repair(text, limit)
        source = normalize_text(text, multiline=True)
        if result is None:
            continue
        checked += 1
        assert text_length(result) <= limit
        assert source.startswith(result)
        got, original = result.split(), source.split()
        assert got[:-1] == original[: len(got) - 1]
        last, whole = got[-1], original[len(got) - 1]
        assert whole.startswith(last) and not any(c.isalnum() for c in whole[len(last) :])
        if text_length(source) > limit:
            assert len(got) >= 3 and text_length(result) >= 0.4 * limit
            assert last.casefold() not in {"and", "or", "with", "for", "the", "a", "de", "y"}
            assert not result.endswith((",", ":", "-", "–"))
        else:
            assert result == source
    assert checked > 100


def test_repair_drops_dangling_connectors_and_punctuation():
    """A cut that would end on "with", "and" or a comma ends on the word before."""
    assert repair("Boards, calendars and chat with your team", 35) == "Boards, calendars and chat"
    assert repair("Shared boards, calendars, chat and more for everyone", 30) == (
        "Shared boards, calendars, chat"
    )


def test_repair_prefers_a_sentence_end_that_keeps_most_of_the_text():
    """When a full sentence keeps most of the room, the cut falls after it."""
    text = "Plan the week with shared boards. Chat with the team in one place today."
    assert repair(text, 50) == "Plan the week with shared boards."
    # The sentence end would keep too little: cut at a word instead.
    assert repair("Plan it. Shared boards and calendars for the whole team", 40) == (
        "Plan it. Shared boards and calendars"
    )


def test_repair_gives_up_rather_than_say_too_little():
    """Fewer than three words, less than 40% of the limit, or one overlong word: None."""
    assert repair("Supercalifragilisticexpialidocious", 10) is None
    assert repair("Plan with everything you could need for a week", 12) is None
    assert repair("Go now. " + "x" * 200, 100) is None
    assert repair("Short enough", 70) == "Short enough"


def test_prepare_shortens_an_overlong_body_to_fit_with_the_link():
    """An overlong body is shortened at a word boundary to fit next to the landing URL."""
    body = " ".join(["Boards, calendars and chat for teams."] * 10)
    made, report, repairs = prepare_creative(creative(body=body), landing_url=LANDING)
    assert made is not None and report.passed
    assert body.startswith(made.body) and made.body.endswith(".")
    assert text_length(made.body) <= 257
    assert any(repair.startswith("body shortened") for repair in repairs)


# --- untrusted output: markup, links, CTA, empty fields ------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "Click <a href='x'>here</a>",
        "<script>alert(1)</script>",
        "Tap &lt;here&gt;",
        "Buy [Product Name] today",
        "Hi {first_name}",
        "bell\x07 here",
        "evil \u202etxt.exe",
    ],
)
def test_markup_and_control_characters_are_rejected(body):
    """HTML, entities, template placeholders, control and bidi characters fail the markup
    check and are not repaired."""
    report = check_creative(creative(body=body))
    assert not report.checks["markup"].ok
    made, report, _ = prepare_creative(creative(body=body))
    assert made is None and "markup" in report.failed


def test_links_off_the_landing_site_are_removed():
    """A link to another site fails the check; prepare_creative removes it and keeps a
    link to the landing site (any subdomain)."""
    body = "Compare plans at https://evil.example.net/x or https://www.acme.example.com/p"
    assert not check_creative(creative(body=body), landing_url=LANDING).checks["links"].ok
    made, _, repairs = prepare_creative(creative(body=body), landing_url=LANDING)
    assert made is not None
    assert made.body == "Compare plans at or https://www.acme.example.com/p"
    assert repairs == ["links removed: https://evil.example.net/x"]


def test_cta_must_be_allowed_and_is_repaired_from_the_objective():
    """An unknown CTA fails; prepare_creative fixes its case or uses the objective's CTA."""
    assert not check_creative(creative(cta="Click me")).checks["cta"].ok
    made, _, _ = prepare_creative(creative(cta="shop NOW!"))
    assert made.cta == "Shop now"
    made, _, repairs = prepare_creative(creative(cta="Click me"), objective="app installs")
    assert made.cta == "Download"
    assert repairs == ["CTA 'Click me' replaced by 'Download'"]


def test_empty_fields_fail_and_odd_types_are_treated_as_empty():
    """An empty headline or body fails; a missing or non-string field is empty."""
    report = check_creative({"headline": "  ", "body": ["not", "text"]})
    assert report.checks["empty"].data["fields"] == ["headline", "body"]
    assert set(report.failed) == {"empty", "cta"}


def test_report_is_json_serialisable():
    """as_dict() gives plain JSON with ok/detail per check, passed and needs_review."""
    report = check_creative(creative(body=f"Hi {FAMILY} #tag"), category="credit")
    data = json.loads(json.dumps(report.as_dict()))
    assert data["passed"] is False and data["needs_review"] is True
    assert data["failed"] == ["hashtags"]
    assert set(data["checks"]) == {
        "empty",
        "headline_length",
        "body_length",
        "cta",
        "hashtags",
        "emoji",
        "banned_terms",
        "category",
        "markup",
        "links",
    }
    assert all({"ok", "detail"} <= set(check) for check in data["checks"].values())


# --- choosing among candidates ------------------------------------------------------------


def test_near_duplicates_keep_the_first():
    """Exact duplicates (case, spacing) go without vectors; with vectors, a text whose
    cosine to a kept one reaches the threshold goes too."""
    assert drop_near_duplicates(["Plan  it", "plan it", "Other"]) == [0, 2]
    vectors = np.eye(4, dtype=np.float32)  # (n, d)
    vectors[1] = vectors[0] * 0.95 + vectors[2] * 0.3
    vectors[1] /= np.linalg.norm(vectors[1])  # cosine to row 0: ~0.954
    texts = ["a", "b", "c", "d"]
    assert drop_near_duplicates(texts, vectors) == [0, 2, 3]
    assert drop_near_duplicates(texts, vectors, threshold=0.96) == [0, 1, 2, 3]


def test_near_duplicates_check_the_vectors():
    """Vectors of the wrong shape or not L2-normalised are refused with a clear error."""
    with pytest.raises(ValueError, match=r"shape \(len\(texts\), d\) = \(2, d\)"):
        drop_near_duplicates(["a", "b"], np.ones((3, 4)))
    with pytest.raises(ValueError, match="row 1 has norm 2.0000"):
        drop_near_duplicates(["a", "b"], np.array([[1.0, 0.0], [0.0, 2.0]]))


def test_rank_prefers_on_brief_copy_and_keeps_its_reasons():
    """A creative that names the product and keywords, fits the sweet spots and has the
    objective's CTA beats shouting copy; every point comes with its reason."""
    shouting = Creative("SALE SALE!!!", "Buy NOW!!!", "Learn more")
    good = Creative(
        "Acme budgeting that warns you before bills",
        "Acme sorts your spending automatically and warns you before a bill is due, "
        "so a late fee never catches you again. Try it for 30 days.",
        "Download",
    )
    ranked = rank(
        [shouting, good],
        brief_keywords=["budgeting", "bills"],
        product="Acme",
        objective="app installs",
        repairs=[["hashtags removed"], []],
    )
    assert [index for index, _, _ in ranked] == [1, 0]
    (_, best, reasons), (_, worst, bad) = ranked
    assert best > 0 > worst
    assert "+2 mentions the product 'Acme'" in reasons
    assert "+1 CTA 'Download' fits the objective" in reasons
    assert any("exclamation" in r for r in bad) and any("ALL CAPS" in r for r in bad)
    assert "-0.5 needed repairs: hashtags removed" in bad


@pytest.mark.parametrize(
    ("objective", "cta"),
    [
        ("Drive online sales", "Shop now"),
        ("Aumentar las ventas", "Shop now"),
        ("Newsletter sign-ups", "Subscribe"),
        ("Free trial sign ups", "Sign up"),
        ("App installs", "Download"),
        ("Descargas de la app", "Download"),
        ("Reservas de hotel", "Book now"),
        ("Generate leads", "Contact us"),
        ("Hiring engineers", "Apply now"),
        ("Brand awareness", "Learn more"),
        ("Tráfico web", "Learn more"),
        ("", "Learn more"),
    ],
)
def test_cta_for_objective(objective, cta):
    """An objective in English or Spanish maps to its CTA; anything else to "Learn more"."""
    assert cta_for_objective(objective, DEFAULT_LIMITS) == cta


def test_cta_for_objective_stays_within_the_allowed_list():
    """When the objective's CTA is not allowed, the answer is still an allowed one."""
    limits = CreativeLimits(allowed_ctas=("Get started",))
    assert cta_for_objective("sales", limits) == "Get started"


# --- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"body_max_chars": 0}, "body_max_chars must be an integer >= 1"),
        ({"headline_max_chars": "70"}, "headline_max_chars must be an integer"),
        ({"max_emoji": -1}, "max_emoji must be an integer >= 0"),
        ({"link_chars": 280}, r"link_chars \(280\) must be below body_max_chars"),
        ({"allowed_ctas": []}, "allowed_ctas must list at least one"),
        ({"banned_terms": "free"}, "banned_terms must be a list of strings"),
        ({"banned_terms": ["--"]}, "banned_terms: '--' has no letters"),
        ({"category_policy": {"sports": "block"}}, "unknown category 'sports'"),
        ({"category_policy": {"politics": "allow"}}, r"category_policy\['politics'\]"),
        ({"allow_hashtags": "no"}, "allow_hashtags must be true or false"),
        ({"repair_min_fraction": 1.0}, r"repair_min_fraction must be a number in \[0, 1\)"),
    ],
)
def test_limits_reject_bad_values_naming_the_field(values, message):
    """Each bad setting is refused with an error that names the field."""
    with pytest.raises(ValueError, match=message):
        CreativeLimits.from_mapping(values)


def test_from_mapping_refuses_unknown_keys_and_builds_from_lists():
    """Unknown keys are named; lists from settings become tuples; the rest keep defaults."""
    with pytest.raises(ValueError, match="unknown setting.s. body_limit, emoji_max"):
        CreativeLimits.from_mapping({"emoji_max": 2, "body_limit": 100})
    limits = CreativeLimits.from_mapping({"allowed_ctas": ["Learn more"], "max_emoji": 0})
    assert limits.allowed_ctas == ("Learn more",)
    assert limits.headline_max_chars == 70 and limits == CreativeLimits(
        allowed_ctas=("Learn more",), max_emoji=0
    )
    assert dict(CreativeLimits().category_policy) == {
        "politics": "block",
        "pharma": "block",
        "housing": "review",
        "employment": "review",
        "credit": "review",
        "health": "review",
        "financial": "review",
    }


def test_checks_module_does_not_import_django():
    """ads/creative/ is plain Python: services build the limits and call in."""
    imported: set[str] = set()
    for path in sorted((REPO / "ads" / "creative").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}  # fmt: skip
        imported |= {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
    assert not {name for name in imported if name.split(".")[0] in {"django", "rest_framework"}}
