"""ml.bm25: tokens, BM25 scores, exact filtered top-k, phrase lookups, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.bm25 import BM25Index, contains_phrase, fold, tokenize, words

# Accented words, words that differ only by accents, and stopwords of both languages, so
# folding, stopword removal and phrases across stopwords all get exercised.
VOCAB = [
    "médico", "hospital", "vacuna", "dosis", "tercera", "canción", "niño", "año",
    "football", "match", "bread", "rain", "london", "madrid", "café", "precio",
    "covid", "19", "lluvia", "calle", "agua", "sal", "harina", "pan",
    "de", "la", "el", "en", "the", "in", "of", "and",
]  # fmt: skip
STOP = {"de", "la", "el", "en", "the", "in", "of", "and"}


def corpus(seed: int, n: int = 200):
    """n random posts: ids shuffled and sparse, timestamps in [0, 1000), three languages."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(10, 10 + 3 * n, 3))[:n].astype(np.int64)
    texts = []
    for _ in range(n):
        chosen = rng.choice(VOCAB, rng.integers(0, 12))
        # Vary case and accents the way people type: MÉDICO, medico, Médico.
        texts.append(
            " ".join(
                w.upper() if rng.random() < 0.15 else fold(w) if rng.random() < 0.2 else w
                for w in chosen
            )
        )
    ts = rng.integers(0, 1000, n)
    langs = rng.choice(["es", "en", ""], n).tolist()
    return ids, texts, ts, langs


def brute_top(bm25: BM25Index, query: str, mask: np.ndarray):
    """Every document with a positive masked score, as (score, id) best first, id on ties."""
    scores = np.where(mask, bm25.scores(query), 0.0)
    hits = np.flatnonzero(scores > 0)
    order = np.lexsort((bm25.ids[hits], -scores[hits]))
    return scores[hits][order], bm25.ids[hits][order]


def filter_mask(ids, ts, allow, since, until) -> np.ndarray:
    mask = np.ones(len(ids), bool)
    if allow is not None:
        mask &= np.isin(ids, np.asarray(list(allow), dtype=np.int64))
    if since is not None:
        mask &= ts >= since
    if until is not None:
        mask &= ts < until
    return mask


def test_tokens_are_folded_words_without_stopwords_or_lone_letters():
    """tokenize lower-cases, folds accents, drops stopwords and single letters, keeps digits."""
    assert tokenize("Médico en EL Hospital: niño, AÑO") == ["medico", "hospital", "nino", "ano"]
    assert tokenize("a 5 x covid-19") == ["5", "covid", "19"]
    assert tokenize("in the de la") == []
    assert words("In THE médico") == ["in", "the", "medico"]  # words keeps stopwords
    assert fold("CANCIÓN Ñandú") == "cancion nandu"


def test_contains_phrase_needs_contiguous_words_in_order():
    """contains_phrase matches a contiguous run of words, not a scattered or reordered one."""
    text = ["la", "tercera", "dosis", "de", "la", "vacuna"]
    assert contains_phrase(text, ["tercera", "dosis"])
    assert contains_phrase(text, ["de", "la", "vacuna"])
    assert not contains_phrase(text, ["dosis", "tercera"])
    assert not contains_phrase(text, ["tercera", "vacuna"])
    assert not contains_phrase(text, ["vacuna", "nueva"])  # runs off the end
    assert contains_phrase(text, [])


def test_scores_follow_the_lucene_bm25_formula():
    """scores() equals idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)) computed by hand,
    with accents and case folded on both sides."""
    texts = ["medico medico hospital", "hospital urgencias", "pan harina agua sal", "Médico rural"]
    bm25 = BM25Index.build([1, 2, 3, 4], texts)
    n_docs, df, k1, b = 4, 2, 1.2, 0.75
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    avgdl = (3 + 2 + 4 + 2) / 4
    want = [
        idf * tf / (tf + k1 * (1 - b + b * dl / avgdl)) if tf else 0.0
        for tf, dl in [(2, 3), (0, 2), (0, 4), (1, 2)]
    ]
    got = bm25.scores("MÉDICO")
    assert got.dtype == np.float32 and got.shape == (4,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_accented_query_and_document_match_either_way():
    """ "Médico" finds "medico" and "medico" finds "MÉDICO": folding applies to both sides."""
    bm25 = BM25Index.build([7, 8, 9], ["el medico rural", "MÉDICO de guardia", "pan y sal"])
    assert sorted(bm25.search("Médico", 10)[1].tolist()) == [7, 8]
    assert sorted(bm25.search("medico", 10)[1].tolist()) == [7, 8]


@pytest.mark.parametrize("seed", range(4))
def test_filtered_search_matches_brute_force(seed):
    """For random queries, allow-lists (with unknown ids), time windows and k, search()
    returns the brute-force top k of the masked scores: the same scores, never short while
    positively scored matches exist, every hit passing the filters, ties ordered by id."""
    ids, texts, ts, langs = corpus(seed)
    bm25 = BM25Index.build(ids, texts, ts, langs)
    rng = np.random.default_rng(100 + seed)
    checked_nonempty = 0
    for _ in range(60):
        query = " ".join(rng.choice(VOCAB + ["zzzunknown"], rng.integers(1, 4)))
        allow = None
        if rng.random() < 0.5:
            allow = rng.choice(ids, rng.integers(0, 60), replace=False).tolist()
            allow += [999_999, 1]  # ids the index does not hold are ignored
        since = int(rng.integers(0, 800)) if rng.random() < 0.5 else None
        until = int(rng.integers(200, 1001)) if rng.random() < 0.5 else None
        k = int(rng.integers(1, 40))
        got_scores, got_ids = bm25.search(query, k, allow_ids=allow, since=since, until=until)
        want_scores, want_ids = brute_top(bm25, query, filter_mask(ids, ts, allow, since, until))
        assert got_scores.dtype == np.float32 and got_ids.dtype == np.int64
        assert len(got_ids) == min(k, len(want_ids)), (query, allow, since, until, k)
        np.testing.assert_allclose(got_scores, want_scores[:k], rtol=1e-6)
        passes = filter_mask(ids, ts, allow, since, until)[bm25.positions_of(got_ids)]
        assert passes.all() and len(passes) == len(got_ids)
        if len(got_ids):
            checked_nonempty += 1
            kth = want_scores[min(k, len(want_ids)) - 1]
            # Above the cut the set is forced; every hit is scored as brute force scores it.
            assert set(want_ids[want_scores > kth].tolist()) <= set(got_ids.tolist())
            by_id = dict(zip(want_ids.tolist(), want_scores.tolist(), strict=True))
            np.testing.assert_allclose([by_id[i] for i in got_ids.tolist()], got_scores)
            # Best first, equal scores by ascending id.
            assert list(zip(-got_scores, got_ids, strict=True)) == sorted(
                zip(-got_scores, got_ids, strict=True)
            )
    assert checked_nonempty > 20  # the generated cases are not all empty


def test_equal_scores_at_the_cut_go_to_the_lowest_ids():
    """With more tied documents than k, the k lowest ids are returned, so a shallow search is
    a prefix of a deeper one (pages stay stable as the search depth grows)."""
    ids = np.arange(100, 130)[::-1]  # stored in descending id order
    bm25 = BM25Index.build(ids, ["alpha beta"] * 30)
    _, top5 = bm25.search("alpha", 5)
    _, top10 = bm25.search("alpha", 10)
    assert top5.tolist() == list(range(100, 105))
    assert top10[:5].tolist() == top5.tolist()


def test_selective_filter_still_returns_k():
    """A filter that keeps only low-scoring documents still yields k of them, not fewer."""
    texts = ["vacuna vacuna vacuna"] * 50 + ["vacuna pan harina agua sal"] * 10
    ts = [0] * 50 + [500] * 10
    bm25 = BM25Index.build(np.arange(60), texts, ts)
    scores, ids = bm25.search("vacuna", 8, since=500)
    assert sorted(ids.tolist()) == list(range(50, 58)) and (scores > 0).all()
    assert len(bm25.search("vacuna", 8, allow_ids=[3, 55])[1]) == 2
    assert len(bm25.search("vacuna", 8, allow_ids=[])[1]) == 0
    assert len(bm25.search("vacuna", 8, since=10, until=10)[1]) == 0


def test_only_positive_scores_are_returned():
    """Documents sharing no token with the query are never hits, however large k is."""
    bm25 = BM25Index.build([1, 2, 3], ["pan harina", "agua sal", "the of in"])
    scores, ids = bm25.search("pan", 10)
    assert ids.tolist() == [1] and scores[0] > 0
    assert len(bm25.search("de la", 10)[1]) == 0  # a stopword-only query matches nothing
    assert len(bm25.search("zzz", 10)[1]) == 0


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3", None])
def test_bad_k_is_refused(k):
    """k must be a positive int; anything else raises ValueError naming k."""
    bm25 = BM25Index.build([1], ["pan"])
    with pytest.raises(ValueError, match="k:"):
        bm25.search("pan", k)


def test_numpy_integer_k_is_accepted():
    """A numpy integer k works like an int."""
    bm25 = BM25Index.build([1, 2], ["pan", "pan sal"])
    assert len(bm25.search("pan", np.int64(1))[1]) == 1


def test_build_refuses_misaligned_or_duplicate_input():
    """build() names mismatched lengths and duplicate ids instead of indexing garbage."""
    with pytest.raises(ValueError, match="same length"):
        BM25Index.build([1, 2], ["pan"])
    with pytest.raises(ValueError, match="same length"):
        BM25Index.build([1, 2], ["pan", "sal"], timestamps=[0])
    with pytest.raises(ValueError, match="same length"):
        BM25Index.build([1, 2], ["pan", "sal"], langs=["es"])
    with pytest.raises(ValueError, match="own id"):
        BM25Index.build([1, 1], ["pan", "sal"])


def test_empty_index_answers_everything_with_nothing(tmp_path):
    """An index of no documents searches, looks up phrases and round-trips, all empty."""
    bm25 = BM25Index.build([], [])
    assert len(bm25) == 0
    for index in (bm25, (bm25.save(tmp_path), BM25Index.load(tmp_path))[1]):
        scores, ids = index.search("vacuna", 5, since=0)
        assert len(scores) == len(ids) == 0
        assert len(index.docs_with("vacuna")) == 0
        assert len(index.ids_with_phrase("in the", lambda ids: {})) == 0


def test_documents_without_tokens_stay_aligned_with_their_ids():
    """A post of only stopwords or punctuation takes no hits and does not shift the others."""
    bm25 = BM25Index.build([5, 6, 7], ["pan", "de la !!", "sal pan"], [10, 20, 30])
    assert len(bm25) == 3
    assert sorted(bm25.search("pan", 5)[1].tolist()) == [5, 7]
    assert bm25.search("sal", 5)[1].tolist() == [7]
    assert bm25.search("pan", 5, since=25)[1].tolist() == [7]


def test_docs_with_lists_exactly_the_documents_holding_a_token():
    """docs_with(token) gives the positions of the documents whose tokens include it."""
    ids, texts, ts, langs = corpus(7)
    bm25 = BM25Index.build(ids, texts, ts, langs)
    for token in {fold(w) for w in VOCAB} - STOP:
        want = [p for p, text in enumerate(texts) if token in tokenize(text)]
        assert sorted(bm25.docs_with(token).tolist()) == want, token
    assert len(bm25.docs_with("zzzunknown")) == 0


def test_positions_of_skips_unknown_ids_and_keeps_order():
    """positions_of maps ids to positions in the order given, dropping unknown ids."""
    bm25 = BM25Index.build([30, 10, 20], ["a1", "b2", "c3"])
    assert bm25.positions_of([20, 99, 30, 10]).tolist() == [2, 0, 1]
    assert bm25.positions_of([]).tolist() == []


def naive_has_phrase(text: str, phrase: str) -> bool:
    """Word-boundary substring check over the folded words: an independent oracle."""
    return f" {' '.join(words(phrase))} " in f" {' '.join(words(text))} "


@pytest.mark.parametrize("seed", range(3))
def test_ids_with_phrase_matches_a_naive_scan(seed):
    """ids_with_phrase finds exactly the posts whose folded words contain the phrase's,
    for phrases taken from the posts (with stopwords, case and accents changed) and
    phrases that occur nowhere."""
    ids, texts, ts, langs = corpus(seed, n=150)
    bm25 = BM25Index.build(ids, texts, ts, langs)
    text_by_id = dict(zip(ids.tolist(), texts, strict=True))

    def texts_of(asked):
        return {i: text_by_id[i] for i in asked.tolist()}

    rng = np.random.default_rng(50 + seed)
    phrases = ["in the", "de la", "médico de", "tercera dosis", "zzz vacuna", "covid 19"]
    for _ in range(40):
        source = words(texts[int(rng.integers(len(texts)))])
        if len(source) < 2:
            continue
        start = int(rng.integers(0, len(source) - 1))
        phrase = " ".join(source[start : start + int(rng.integers(1, 4))])
        phrases.append(phrase.upper() if rng.random() < 0.5 else phrase)
    matched = 0
    for phrase in phrases:
        want = sorted(i for i, text in text_by_id.items() if naive_has_phrase(text, phrase))
        got = bm25.ids_with_phrase(phrase, texts_of)
        assert got.dtype == np.int64
        assert sorted(got.tolist()) == want, phrase
        matched += bool(want)
    assert matched > 20


def test_phrase_lookup_verifies_order_and_only_reads_candidates():
    """A phrase's words in the wrong order do not match, and texts are asked only for the
    documents that hold every indexed word of the phrase."""
    texts = {
        1: "La tercera dosis llega",
        2: "dosis tercera",
        3: "la TERCERA, Dósis!",
        4: "pan y sal",
        5: "tercera vez",
    }
    bm25 = BM25Index.build(list(texts), list(texts.values()))
    asked = []

    def texts_of(ids):
        asked.extend(ids.tolist())
        return {i: texts[i] for i in ids.tolist()}

    assert sorted(bm25.ids_with_phrase("tercera dosis", texts_of).tolist()) == [1, 3]
    assert sorted(asked) == [1, 2, 3]
    assert bm25.ids_with_phrase("dosis tercera", texts_of).tolist() == [2]
    assert bm25.ids_with_phrase("tercera zzz", texts_of).tolist() == []
    assert bm25.ids_with_phrase("!!", texts_of).tolist() == []


def test_stopword_only_phrase_is_checked_on_every_document():
    """A phrase of only stopwords ("in the") has no index candidates: every document's text
    is checked, and exactly those containing it match."""
    texts = {1: "rain in the city", 2: "the rain in London", 3: "In The End", 4: "in a the"}
    bm25 = BM25Index.build(list(texts), list(texts.values()))
    asked = []

    def texts_of(ids):
        asked.extend(ids.tolist())
        return {i: texts[i] for i in ids.tolist()}

    assert sorted(bm25.ids_with_phrase("in the", texts_of).tolist()) == [1, 3]
    assert sorted(asked) == [1, 2, 3, 4]


def test_phrase_texts_missing_from_texts_of_do_not_match():
    """A candidate whose text texts_of cannot supply (deleted meanwhile) is not a match."""
    bm25 = BM25Index.build([1, 2], ["tercera dosis", "tercera dosis"])
    assert bm25.ids_with_phrase("tercera dosis", lambda ids: {2: "tercera dosis"}).tolist() == [2]


def test_save_and_load_give_identical_answers(tmp_path):
    """A saved and reloaded index answers searches, filters, phrases and token lookups
    exactly as the one that was built."""
    ids, texts, ts, langs = corpus(11)
    built = BM25Index.build(ids, texts, ts, langs)
    built.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert len(loaded) == len(built)
    np.testing.assert_array_equal(loaded.ids, built.ids)
    np.testing.assert_array_equal(loaded.ts, built.ts)
    assert loaded.langs.tolist() == langs
    text_by_id = dict(zip(ids.tolist(), texts, strict=True))

    def texts_of(asked):
        return {i: text_by_id[i] for i in asked.tolist()}

    rng = np.random.default_rng(12)
    for _ in range(20):
        query = " ".join(rng.choice(VOCAB, 2))
        allow = rng.choice(ids, 50, replace=False)
        for filters in ({}, {"allow_ids": allow}, {"since": 300, "until": 700}):
            want = built.search(query, 15, **filters)
            got = loaded.search(query, 15, **filters)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(
            loaded.ids_with_phrase(query, texts_of), built.ids_with_phrase(query, texts_of)
        )
    assert len(built.search("medico", 5)[1]) > 0  # the comparison above is not vacuous


def test_fresh_documents_score_on_the_builds_scale():
    """A fresh copy of an indexed document scores exactly what the build gives it, and a
    fresh document replaces its stale copy in results and obeys the filters."""
    from ml.bm25 import FreshDocs

    texts = [
        "the flight was delayed three hours",
        "coffee on the morning flight",
        "lost luggage again and again",
        "vuelo con retraso en el aeropuerto",
        "delayed delayed flight",
    ]
    bm25 = BM25Index.build(np.arange(1, 6), texts, timestamps=np.arange(5) * 10)
    copies = FreshDocs(np.arange(101, 106), [tokenize(t) for t in texts], np.arange(5) * 10)
    for query in ("delayed flight", "luggage", "vuelo retraso", "nothing here"):
        np.testing.assert_allclose(bm25.fresh_scores(query, copies), bm25.scores(query), atol=1e-5)

    edit = FreshDocs([2], [tokenize("zeppelin over the sea")], [15])
    assert len(bm25.search("coffee", 5, fresh=edit)[1]) == 0  # the stale copy is gone
    assert bm25.search("zeppelin", 5, fresh=edit)[1].tolist() == [2]
    assert bm25.search("zeppelin", 5, fresh=edit, since=16)[1].tolist() == []
    assert bm25.search("zeppelin", 5, fresh=edit, allow_ids=[1, 3])[1].tolist() == []
    merged = bm25.search("delayed flight zeppelin", 10, fresh=edit)[1].tolist()
    assert set(merged) == {1, 2, 5}
