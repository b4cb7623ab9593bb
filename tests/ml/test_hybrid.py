"""ml.hybrid: per-query method weights, weighted RRF, recency, and hybrid_search's plumbing.

hybrid_search runs here over a real SegmentedIndex and BM25Index with a fake encoder (a
bag-of-words random projection); tests/integration runs the same path with the real one.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from ml.bm25 import BM25Index, tokenize
from ml.hybrid import Fused, FusionConfig, fuse, hybrid_search, method_weights, recency_boost
from ml.index import IndexConfig, SegmentedIndex

DIM = 32


# --- method_weights ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query_lang", "encoder", "hit_langs", "want"),
    [
        # Both native: plain RRF.
        ("en", ("en",), ["en"] * 10, {"dense": 1.0, "bm25": 1.0}),
        # Neither native: plain RRF too.
        ("es", ("en",), ["en"] * 10, {"dense": 1.0, "bm25": 1.0}),
        # Only BM25 native: it leads.
        ("es", ("en",), ["es"] * 10, {"dense": 0.01, "bm25": 1.0}),
        # Only dense native: it leads.
        ("en", ("en", "fr"), ["es"] * 10, {"dense": 1.0, "bm25": 0.01}),
        # No BM25 hits: BM25 is not native.
        ("en", ("en",), [], {"dense": 1.0, "bm25": 0.01}),
        # Encoder languages unknown (None): dense counts as native.
        ("es", None, ["en"] * 10, {"dense": 1.0, "bm25": 0.01}),
        ("es", None, ["es"] * 10, {"dense": 1.0, "bm25": 1.0}),
        # Query language unknown: both count 1.
        (None, ("en",), ["es"] * 10, {"dense": 1.0, "bm25": 1.0}),
        ("", ("en",), ["es"] * 10, {"dense": 1.0, "bm25": 1.0}),
        # Regional codes compare by their base language, case-insensitively.
        ("es-MX", ("en-US",), ["ES"] * 10, {"dense": 0.01, "bm25": 1.0}),
        # Posts of unknown language count as the query's language.
        ("es", ("en",), [""] * 10, {"dense": 0.01, "bm25": 1.0}),
        # Half the window in the query's language is enough; less than half is not.
        ("es", ("en",), ["es"] * 5 + ["en"] * 5, {"dense": 0.01, "bm25": 1.0}),
        ("es", ("en",), ["es"] * 4 + ["en"] * 6, {"dense": 1.0, "bm25": 1.0}),
        # Only the first lang_window (10) hits decide.
        ("es", ("en",), ["es"] * 10 + ["en"] * 30, {"dense": 0.01, "bm25": 1.0}),
    ],
)
def test_method_weights(query_lang, encoder, hit_langs, want):
    """The native side leads and the other gets tiebreak_weight; otherwise both count 1."""
    got = method_weights(query_lang=query_lang, encoder_languages=encoder, bm25_hit_langs=hit_langs)
    assert got == want


def test_method_weights_follow_the_config():
    """tiebreak_weight and lang_window come from the FusionConfig passed in."""
    config = FusionConfig(tiebreak_weight=0.2, lang_window=2)
    got = method_weights(
        query_lang="es",
        encoder_languages=("en",),
        bm25_hit_langs=["es", "es", "en", "en", "en"],
        config=config,
    )
    assert got == {"dense": 0.2, "bm25": 1.0}


# --- fuse ----------------------------------------------------------------------------------


def test_fuse_sums_reciprocal_ranks():
    """Each id scores sum(weight / (rrf_k + rank)) over the lists that hold it; best first."""
    fused = fuse({"dense": [1, 2, 3], "bm25": [3, 1]})
    assert [f.id for f in fused] == [1, 3, 2]
    by_id = {f.id: f for f in fused}
    assert by_id[1].score == pytest.approx(1 / 61 + 1 / 62)
    assert by_id[3].score == pytest.approx(1 / 63 + 1 / 61)
    assert by_id[2].score == pytest.approx(1 / 62)
    assert by_id[1].ranks == {"dense": 1, "bm25": 2}
    assert by_id[2].ranks == {"dense": 2}


def test_fuse_applies_weights_and_rrf_k():
    """A method's weight scales its contribution; rrf_k offsets every rank."""
    config = FusionConfig(rrf_k=10)
    fused = fuse({"dense": [1, 2], "bm25": [2, 1]}, {"dense": 1.0, "bm25": 0.01}, config)
    assert [f.id for f in fused] == [1, 2]
    assert fused[0].score == pytest.approx(1 / 11 + 0.01 / 12)
    assert fused[1].score == pytest.approx(1 / 12 + 0.01 / 11)
    # Weights left out count 1; a weight of 0 keeps the id but adds nothing.
    fused = fuse({"dense": [1], "bm25": [2]}, {"bm25": 0.0}, config)
    assert [(f.id, f.score) for f in fused] == [(1, pytest.approx(1 / 11)), (2, 0.0)]


def test_fuse_breaks_ties_by_best_rank_then_id():
    """Equal scores order by the best single rank, then by the smaller id."""
    config = FusionConfig(rrf_k=0)  # 1/1 == 1/2 + 1/2 exactly
    fused = fuse({"dense": [9, 2], "bm25": [5, 2]}, None, config)
    assert [f.score for f in fused] == [1.0, 1.0, 1.0]
    assert [f.id for f in fused] == [5, 9, 2]


def test_fuse_ignores_duplicates_within_a_list_and_negative_ids():
    """An id repeated in one list counts once (at its first rank); -1 padding is skipped."""
    fused = fuse({"dense": [4, 4, -1, 7], "bm25": [-1]})
    by_id = {f.id: f for f in fused}
    assert set(by_id) == {4, 7}
    assert by_id[4].score == pytest.approx(1 / 61) and by_id[4].ranks == {"dense": 1}


def test_fuse_of_nothing_is_empty():
    """No rankings, or empty ones, fuse to an empty list."""
    assert fuse({}) == []
    assert fuse({"dense": [], "bm25": np.array([], np.int64)}) == []


def test_fuse_accepts_numpy_ids_and_returns_python_ints():
    """numpy id arrays work and the fused ids are plain ints."""
    fused = fuse({"bm25": np.array([3, 1], np.int64)})
    assert [f.id for f in fused] == [3, 1] and all(type(f.id) is int for f in fused)


# --- recency_boost -------------------------------------------------------------------------

DAY = 86_400.0


def test_recency_lifts_the_newer_of_two_equal_posts():
    """Of two posts with equal fused scores, the newer one ranks first after the boost."""
    fused = fuse({"dense": [1], "bm25": [2]})  # equal scores; id 1 first by id
    assert [f.id for f in fused] == [1, 2]
    now = 100 * DAY
    boosted = recency_boost(fused, {1: now - 30 * DAY, 2: now - DAY}, now, FusionConfig())
    assert [f.id for f in boosted] == [2, 1]


def test_recency_boost_math_and_missing_timestamps():
    """score * (1 + weight * 0.5 ** (age / half_life)); unknown or future times as stated."""
    config = FusionConfig(recency_half_life_days=7, recency_weight=0.5)
    now = 1000 * DAY
    entries = [Fused(i, 1.0, {"dense": i}) for i in (1, 2, 3, 4)]
    timestamps = {1: now - 7 * DAY, 2: now, 3: now + DAY}  # 4 has no timestamp
    boosted = {f.id: f.score for f in recency_boost(entries, timestamps, now, config)}
    assert boosted[1] == pytest.approx(1.25)  # one half-life old: half the boost
    assert boosted[2] == pytest.approx(1.5)  # made now: the whole boost
    assert boosted[3] == pytest.approx(1.5)  # from the future: counted as now
    assert boosted[4] == pytest.approx(1.0)  # unknown time: no boost


def test_recency_boost_keeps_a_clear_order():
    """A small boost does not overturn a large score gap, and weight 0 changes nothing."""
    fused = fuse({"dense": [1, 2, 3]}, None, FusionConfig(rrf_k=0))  # 1, 1/2, 1/3
    now = 50 * DAY
    ts = {1: 0.0, 2: now - DAY, 3: now}
    mild = recency_boost(fused, ts, now, FusionConfig(recency_weight=0.1))
    assert [f.id for f in mild] == [1, 2, 3]
    fused = fuse({"dense": [1, 2, 3]})
    off = recency_boost(fused, ts, now, FusionConfig(recency_weight=0.0))
    assert [f.id for f in off] == [1, 2, 3]
    assert [f.score for f in off] == pytest.approx([1 / 61, 1 / 62, 1 / 63])


# --- FusionConfig ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rrf_k": -1}, "rrf_k"),
        ({"tiebreak_weight": -0.1}, "tiebreak_weight"),
        ({"tiebreak_weight": 1.5}, "tiebreak_weight"),
        ({"lang_window": 0}, "lang_window"),
        ({"recency_half_life_days": 0}, "recency_half_life_days"),
        ({"recency_half_life_days": -3}, "recency_half_life_days"),
        ({"recency_weight": -0.5}, "recency_weight"),
    ],
)
def test_fusion_config_errors_name_the_field(changes, field):
    """An out-of-range setting raises ValueError naming FusionConfig.<field>."""
    with pytest.raises(ValueError, match=f"FusionConfig.{field}"):
        FusionConfig(**changes)


def test_fusion_config_accepts_the_edges():
    """The inclusive edges of each range are valid settings."""
    FusionConfig(rrf_k=0, tiebreak_weight=0.0, lang_window=1, recency_weight=0.0)
    FusionConfig(tiebreak_weight=1.0, recency_half_life_days=0.001)


@pytest.mark.parametrize("field", ["rrf_k", "recency_half_life_days", "recency_weight"])
def test_fusion_config_refuses_nan(field):
    """NaN is not a valid setting: it would make every fused or boosted score NaN."""
    with pytest.raises(ValueError, match=field):
        FusionConfig(**{field: float("nan")})


# --- hybrid_search ------------------------------------------------------------------------

POSTS = [
    ("es", "La tercera dosis de la vacuna llega a las farmacias"),
    ("es", "Vacunas contra la gripe en Madrid"),
    ("es", "Lluvias torrenciales inundan las calles de Valencia"),
    ("es", "El precio del café sube tras una mala cosecha"),
    ("en", "Football match results: Liverpool beat Arsenal"),
    ("en", "Heavy rain floods the streets of London"),
    ("en", "My sourdough bread recipe needs a cold fermentation"),
    ("en", "Coffee prices rise after a poor harvest in Brazil"),
    ("en", "Flu vaccines arrive at pharmacies in London"),
    ("en", "Bread and coffee for breakfast in Madrid"),
]
N = 40  # posts: POSTS four times over, with different ids and times


def encode(texts: list[str]) -> np.ndarray:
    """A deterministic bag-of-words random projection: shared tokens mean similar vectors."""
    out = np.zeros((len(texts), DIM), np.float32)
    for row, text in enumerate(texts):
        for token in tokenize(text) or ["<empty>"]:
            seed = zlib.crc32(token.encode())
            out[row] += np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        out[row] /= np.linalg.norm(out[row])
    return out


@pytest.fixture
def corpus(tmp_path):
    """A SegmentedIndex (some vectors sealed, some active) and a BM25Index over N posts."""
    ids = np.arange(1, N + 1, dtype=np.int64) * 10
    langs = [POSTS[i % len(POSTS)][0] for i in range(N)]
    texts = [POSTS[i % len(POSTS)][1] + " extra" * (i // len(POSTS)) for i in range(N)]
    ts = np.arange(N, dtype=np.int64) * 100
    config = IndexConfig(factory="Flat", seal_size=25, min_seal=1)
    index = SegmentedIndex.open(tmp_path / "index", dim=DIM, config=config)
    index.upsert(ids[:30], encode(texts[:30]), ts[:30])
    index.commit()  # seals the first 30
    index.upsert(ids[30:], encode(texts[30:]), ts[30:])
    index.commit()
    assert index.stats()["sealed_segments"] == 1 and index.stats()["active_vectors"] == 10
    bm25 = BM25Index.build(ids, texts, ts, langs)
    yield index, bm25, dict(zip(ids.tolist(), ts.tolist(), strict=True))
    index.close()


def search(corpus, query, **kwargs):
    index, bm25, _ = corpus
    kwargs.setdefault("depth", 10)
    kwargs.setdefault("encoder_languages", ("en",))
    return hybrid_search(query, index=index, bm25=bm25, encode=encode, **kwargs)


def test_bm25_only_returns_the_bm25_order(corpus):
    """methods=("bm25",) ranks exactly as BM25Index.search, with weight 1 and its scores."""
    _, bm25, _ = corpus
    result = search(corpus, "coffee bread Madrid", methods=("bm25",), depth=7)
    want_scores, want_ids = bm25.search("coffee bread Madrid", 7)
    assert [f.id for f in result.fused] == want_ids.tolist()
    assert result.weights == {"bm25": 1.0}
    assert set(result.scores) == {"bm25"}
    assert result.scores["bm25"] == pytest.approx(
        dict(zip(want_ids.tolist(), want_scores.tolist(), strict=True))
    )


def test_dense_only_returns_the_index_order(corpus):
    """methods=("dense",) ranks exactly as SegmentedIndex.search of the encoded query."""
    index, _, _ = corpus
    result = search(corpus, "rain in London", methods=("dense",), depth=12)
    _, want_ids = index.search(encode(["rain in London"]), 12)
    assert [f.id for f in result.fused] == want_ids[0].tolist()
    assert result.weights == {"dense": 1.0} and set(result.scores) == {"dense"}


def test_hybrid_fuses_both_rankings(corpus):
    """With both methods every candidate of either is fused, each with its rank on each side."""
    result = search(corpus, "coffee prices Brazil", depth=8)
    dense = list(result.scores["dense"])
    lexical = list(result.scores["bm25"])
    assert len(dense) == 8 and 0 < len(lexical) <= 8
    assert {f.id for f in result.fused} == set(dense) | set(lexical)
    for entry in result.fused:
        if "dense" in entry.ranks:
            assert dense[entry.ranks["dense"] - 1] == entry.id
        if "bm25" in entry.ranks:
            assert lexical[entry.ranks["bm25"] - 1] == entry.id
    assert result.fused == fuse({"dense": dense, "bm25": lexical}, result.weights)


def test_exhausted_says_whether_any_method_could_have_given_more(corpus):
    """exhausted is True only when every method returned fewer candidates than depth."""
    # Deeper than the corpus: neither side can give more.
    assert search(corpus, "coffee", depth=N + 5).exhausted
    # Dense always fills a shallow depth, so the hybrid is not exhausted.
    assert not search(corpus, "coffee", depth=5).exhausted
    # "sourdough" is in 4 posts: BM25 alone at depth 5 has given all it has.
    only_bm25 = search(corpus, "sourdough", methods=("bm25",), depth=5)
    assert len(only_bm25.fused) == 4 and only_bm25.exhausted
    assert not search(corpus, "sourdough", methods=("bm25",), depth=4).exhausted
    assert not search(corpus, "sourdough", depth=5).exhausted


def test_filters_hold_on_both_sides(corpus):
    """allow_ids and the time window restrict the dense and the BM25 candidates alike."""
    _, _, ts_by_id = corpus
    allow = np.array([10, 20, 80, 90, 100, 180, 330, 400, 9999], np.int64)
    result = search(corpus, "coffee bread vaccines London", allow_ids=allow, depth=20)
    allowed = set(allow.tolist())
    assert result.scores["dense"] and result.scores["bm25"]
    assert set(result.scores["dense"]) <= allowed and set(result.scores["bm25"]) <= allowed
    assert {f.id for f in result.fused} <= allowed
    assert len(result.scores["dense"]) == len(allowed) - 1  # every allowed, known post
    result = search(corpus, "coffee bread vaccines London", since=1000, until=2500, depth=40)
    assert result.scores["dense"] and result.scores["bm25"]
    assert all(1000 <= ts_by_id[f.id] < 2500 for f in result.fused)
    assert len(result.scores["dense"]) == 15


def test_weights_follow_the_detected_language(corpus):
    """A Spanish query over Spanish BM25 hits and an English encoder lets BM25 lead."""
    result = search(corpus, "tercera dosis vacuna", detect=lambda text: "es")
    assert result.query_lang == "es"
    assert result.weights == {"dense": 0.01, "bm25": 1.0}
    assert result.fused == fuse(
        {"dense": list(result.scores["dense"]), "bm25": list(result.scores["bm25"])},
        {"dense": 0.01, "bm25": 1.0},
    )
    undetected = search(corpus, "tercera dosis vacuna")
    assert undetected.query_lang is None and undetected.weights == {"dense": 1.0, "bm25": 1.0}


def test_a_missing_side_is_skipped(corpus, tmp_path):
    """With no BM25 index, or an empty vector index, the other side ranks alone."""
    index, bm25, _ = corpus
    result = hybrid_search(
        "coffee", index=index, bm25=None, encode=encode, encoder_languages=None, depth=5
    )
    assert set(result.scores) == {"dense"} and len(result.fused) == 5
    empty = SegmentedIndex.open(tmp_path / "empty", dim=DIM)
    result = hybrid_search(
        "coffee", index=empty, bm25=bm25, encode=encode, encoder_languages=None, depth=5
    )
    assert set(result.scores) == {"bm25"}
    assert [f.id for f in result.fused] == bm25.search("coffee", 5)[1].tolist()
    empty.close()
