"""Hybrid ranking: fuse the dense and BM25 rankings, weighting each by how far to trust it.

    weights = method_weights(query_lang="es", encoder_languages=("en",), bm25_hit_langs=[...])
    fused = fuse({"dense": dense_ids, "bm25": bm25_ids}, weights, config)
    fused = recency_boost(fused, timestamps_by_id, now, config)    # optional

Reciprocal rank fusion (Cormack et al., 2009) sums 1 / (rrf_k + rank) over the methods that
found a post. Plain RRF trusts both methods equally, and loses to the better one whenever
the other is weak for this query. Two signals, both read from the query and the
retrieval itself (never from relevance labels), say whether each side works in the
query's own language:

- dense is *native* when the query's language is among the encoder's (its model card
  says which: all-MiniLM-L6-v2 is English). An English encoder embeds a Spanish query
  poorly.
- BM25 is *native* when most of its top `lang_window` hits are written in the query's
  language (posts of unknown language count as a match). Lexical matches inside one
  language are evidence; a Spanish query matching English posts only through names,
  numbers and shared spellings is weaker evidence.

When both sides are native, or neither is, they count the same: plain RRF (when both
are weak their agreement is the best evidence there is). When only one is native, it
leads and the other counts `tiebreak_weight`: small enough that the leader's order
stands at the top (one rank step there is worth more than the other side's whole
contribution), large enough to order what the leader leaves tied or unranked.
When the query's language cannot be told, both count 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class FusionConfig:
    """How rankings are fused. Defaults are the usual RRF constant and a cautious discount."""

    rrf_k: int = 60  # RRF's rank offset: larger flattens the difference between ranks
    tiebreak_weight: float = 0.01  # weight of the non-native side when only one is native
    lang_window: int = 10  # BM25 hits whose languages decide the BM25 weight
    recency_half_life_days: float = 7.0  # a post this old gets half the recency boost
    recency_weight: float = 0.5  # the boost for a post made now, relative to its fused score

    def __post_init__(self) -> None:
        # Written as "not (ok)" so NaN, which fails every comparison, is refused too.
        if not self.rrf_k >= 0:
            raise ValueError("FusionConfig.rrf_k must be >= 0")
        if not 0.0 <= self.tiebreak_weight <= 1.0:
            raise ValueError("FusionConfig.tiebreak_weight must be in [0, 1]")
        if not isinstance(self.lang_window, int) or self.lang_window < 1:
            raise ValueError("FusionConfig.lang_window must be an int >= 1")
        if not self.recency_half_life_days > 0:
            raise ValueError("FusionConfig.recency_half_life_days must be positive")
        if not self.recency_weight >= 0:
            raise ValueError("FusionConfig.recency_weight must be >= 0")


@dataclass
class Fused:
    id: int
    score: float
    ranks: dict[str, int]  # method -> 1-based rank in that method's list


def _base(lang: str | None) -> str | None:
    return lang.split("-")[0].lower() if lang else None


def method_weights(
    *,
    query_lang: str | None,
    encoder_languages: Sequence[str] | None,
    bm25_hit_langs: Sequence[str],
    config: FusionConfig | None = None,
) -> dict[str, float]:
    """{"dense": w, "bm25": w} for one query; see the module docstring."""
    config = config or FusionConfig()
    lang = _base(query_lang)
    if lang is None:
        return {"dense": 1.0, "bm25": 1.0}
    dense_native = not encoder_languages or lang in {_base(x) for x in encoder_languages}
    window = [_base(x) for x in bm25_hit_langs[: config.lang_window]]
    bm25_native = bool(window) and 2 * sum(x in (lang, None, "") for x in window) >= len(window)
    if dense_native == bm25_native:
        return {"dense": 1.0, "bm25": 1.0}
    low = config.tiebreak_weight
    return {"dense": 1.0 if dense_native else low, "bm25": 1.0 if bm25_native else low}


def fuse(
    rankings: Mapping[str, Iterable[int]],
    weights: Mapping[str, float] | None = None,
    config: FusionConfig | None = None,
) -> list[Fused]:
    """Weighted RRF over ranked id lists (best first); returns every id, best first.

    Ties break by the best single rank, then by id, so pages are stable.
    """
    config = config or FusionConfig()
    weights = weights or {}
    found: dict[int, Fused] = {}
    for method, ids in rankings.items():
        weight = float(weights.get(method, 1.0))
        for rank, post_id in enumerate(ids, start=1):
            post_id = int(post_id)
            if post_id < 0:
                continue
            entry = found.get(post_id)
            if entry is None:
                entry = found[post_id] = Fused(post_id, 0.0, {})
            if method in entry.ranks:
                continue
            entry.ranks[method] = rank
            entry.score += weight / (config.rrf_k + rank)
    return sorted(found.values(), key=lambda f: (-f.score, min(f.ranks.values()), f.id))


def recency_boost(
    fused: list[Fused], timestamps: Mapping[int, float], now: float, config: FusionConfig
) -> list[Fused]:
    """Raise newer posts: score * (1 + weight * 0.5 ** (age_days / half_life)); re-sorted."""
    half_life_s = config.recency_half_life_days * 86400.0
    for entry in fused:
        age = max(0.0, now - float(timestamps.get(entry.id, -math.inf)))
        entry.score *= 1.0 + config.recency_weight * (
            0.5 ** (age / half_life_s) if math.isfinite(age) else 0.0
        )
    return sorted(fused, key=lambda f: (-f.score, min(f.ranks.values()), f.id))


@dataclass
class HybridResult:
    fused: list[Fused]  # every candidate, best first
    weights: dict[str, float]  # the weight each method counted with
    query_lang: str | None
    scores: dict[str, dict[int, float]]  # method -> {id: that method's own score}
    exhausted: bool  # no method had more candidates than it returned


def hybrid_search(
    query: str,
    *,
    index,
    bm25,
    encode: Callable[[list[str]], np.ndarray],
    encoder_languages: Sequence[str] | None,
    depth: int,
    allow_ids: np.ndarray | None = None,
    since: int | None = None,
    until: int | None = None,
    methods: Sequence[str] = ("dense", "bm25"),
    config: FusionConfig | None = None,
    detect: Callable[[str], str | None] | None = None,
    bm25_fresh=None,
) -> HybridResult:
    """Dense (`index`, an ml.index.SegmentedIndex) and BM25 (`bm25`, an ml.bm25.BM25Index or
    None; `bm25_fresh`, an ml.bm25.FreshDocs of posts newer than its build) over the same
    filters, each `depth` deep, fused with per-query weights.

    The LangChain retriever and `evaluate_search`'s faiss run rank through here.
    """
    dense = lexical = None
    lexical_langs: list[str] = []
    if "dense" in methods and index is not None and len(index):
        vector = encode([query])  # (1, d)
        found, ids = index.search(vector, depth, since=since, until=until, allow_ids=allow_ids)
        keep = ids[0] >= 0
        dense = (ids[0][keep], found[0][keep])
    if "bm25" in methods and bm25 is not None and len(bm25):
        found, ids = bm25.search(
            query, depth, allow_ids=allow_ids, since=since, until=until, fresh=bm25_fresh
        )
        lexical = (ids, found)
        window = ids[: (config or FusionConfig()).lang_window]
        lexical_langs = [str(x) for x in bm25.langs[bm25.positions_of(window)]]
    return hybrid_fuse(
        query,
        dense=dense,
        lexical=lexical,
        lexical_langs=lexical_langs,
        encoder_languages=encoder_languages,
        depth=depth,
        config=config,
        detect=detect,
    )


def hybrid_fuse(
    query: str,
    *,
    dense: tuple[np.ndarray, np.ndarray] | None,
    lexical: tuple[np.ndarray, np.ndarray] | None,
    lexical_langs: Sequence[str] = (),
    encoder_languages: Sequence[str] | None,
    depth: int,
    config: FusionConfig | None = None,
    detect: Callable[[str], str | None] | None = None,
) -> HybridResult:
    """Fuse a dense and a lexical ranking of `query` ((ids, scores), best first, each asked
    for `depth`; None when that method did not run) with per-query weights.
    `lexical_langs` are the languages of the lexical hits, best first.

    Every search backend ranks through here, and so does `evaluate_search`.
    """
    config = config or FusionConfig()
    rankings: dict[str, np.ndarray] = {}
    scores: dict[str, dict[int, float]] = {}
    exhausted = True
    for method, found in (("dense", dense), ("bm25", lexical)):
        if found is None:
            continue
        ids, method_scores = found
        rankings[method] = ids
        scores[method] = dict(
            zip(np.asarray(ids).tolist(), np.asarray(method_scores).tolist(), strict=True)
        )
        exhausted &= len(ids) < depth
    query_lang = detect(query) if detect is not None else None
    weights = method_weights(
        query_lang=query_lang,
        encoder_languages=encoder_languages,
        bm25_hit_langs=list(lexical_langs)[: config.lang_window] if lexical is not None else [],
        config=config,
    )
    if len(rankings) == 1:  # one method: its own order, whatever its weight
        weights = dict.fromkeys(rankings, 1.0)
    return HybridResult(fuse(rankings, weights, config), weights, query_lang, scores, exhausted)
