"""ml.index.SegmentedIndex: exactness, recall, upsert/delete semantics, filters, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.index import IndexConfig, IndexFormatError, IndexLockedError, SegmentedIndex

REPO = Path(__file__).resolve().parents[2]
D = 16


def unit(rng: np.random.Generator, n: int, d: int = D) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(vectors: dict[int, np.ndarray], queries: np.ndarray, k: int, keep=lambda i: True):
    """Exact top-k by inner product over the model dict, ids ordered by (-score, id)."""
    ids = np.array([i for i in vectors if keep(i)], dtype=np.int64)
    if not len(ids):
        return np.empty((len(queries), 0)), np.empty((len(queries), 0), np.int64)
    matrix = np.stack([vectors[i] for i in ids])
    scores = queries @ matrix.T
    order = np.lexsort((np.broadcast_to(ids, scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def flat(**changes) -> IndexConfig:
    return IndexConfig(**{"factory": "Flat", "seal_size": 50, "min_seal": 1, **changes})


def test_flat_segments_match_brute_force_exactly(tmp_path):
    """With flat segments, results equal numpy brute force across active and sealed data."""
    rng = np.random.default_rng(1)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    model = {}
    for start in range(0, 230, 23):  # several seals and an active remainder
        ids = np.arange(start, start + 23)
        vectors = unit(rng, 23)
        idx.upsert(ids, vectors, ids * 60)
        idx.commit()
        model.update(zip(ids.tolist(), vectors, strict=True))
    assert idx.stats()["sealed_segments"] >= 3 and idx.stats()["active_vectors"] > 0
    queries = unit(rng, 7)
    scores, ids = idx.search(queries, 10)
    want_scores, want_ids = brute(model, queries, 10)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (7, 10)


@pytest.mark.integration
@pytest.mark.parametrize("factory", ["HNSW32", "IVF{nlist},Flat"])
def test_trained_segments_reach_recall_095_at_default_settings(tmp_path, factory):
    """Sealed trained segments keep recall@10 >= 0.95 against exact search."""
    rng = np.random.default_rng(2)
    d, n = 384, 20_000
    # Posts and questions cluster by topic: a mixture, not uniform noise.
    centres = unit(rng, 200, d)

    def sample(m: int) -> np.ndarray:
        x = centres[rng.integers(0, 200, m)] + 0.9 * unit(rng, m, d)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    vectors = sample(n)
    config = IndexConfig(factory=factory, seal_size=n)
    idx = SegmentedIndex.open(tmp_path, dim=d, config=config)
    idx.upsert(np.arange(n), vectors, np.arange(n))
    idx.commit()
    assert idx.stats()["segments"][0]["factory"] != "Flat"
    queries = sample(200)
    _, got = idx.search(queries, 10)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)])
    assert recall >= 0.95, recall


def test_upsert_replaces_wherever_the_id_lives(tmp_path):
    """An id re-upserted moves: found by its new vector, never twice, old copy tombstoned."""
    rng = np.random.default_rng(3)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    vectors = unit(rng, 60)
    idx.upsert(np.arange(60), vectors, np.arange(60))
    idx.commit()  # seals: ids 0..59 live in a sealed segment
    new = unit(rng, 2)
    idx.upsert([5, 5], new, [100, 101])  # the later duplicate wins
    assert len(idx) == 60
    _, ids = idx.search(new[1:], 3)
    assert ids[0, 0] == 5 and list(ids[0]).count(5) == 1
    _, ids = idx.search(vectors[5:6], 60)
    assert list(ids[0]).count(5) == 1  # the stale sealed copy is not returned
    assert idx.stats()["tombstones"] == 1


def test_delete_and_readd(tmp_path):
    rng = np.random.default_rng(4)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    vectors = unit(rng, 60)
    idx.upsert(np.arange(60), vectors, np.arange(60))
    idx.commit()
    idx.delete([3, 4, 999])  # 999 is unknown: ignored
    assert len(idx) == 58
    _, ids = idx.search(vectors[3:5], 5)
    assert 3 not in ids and 4 not in ids
    idx.upsert([3], vectors[3:4], [3])
    _, ids = idx.search(vectors[3:4], 1)
    assert ids[0, 0] == 3 and len(idx) == 59


def test_pads_with_minus_one_only_when_fewer_match(tmp_path):
    rng = np.random.default_rng(5)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    empty_scores, empty_ids = idx.search(unit(rng, 2), 3)
    assert (empty_ids == -1).all() and np.isneginf(empty_scores).all()
    idx.upsert([1, 2], unit(rng, 2), [0, 0])
    _, ids = idx.search(unit(rng, 1), 3)
    assert sorted(ids[0, :2]) == [1, 2] and ids[0, 2] == -1


@pytest.mark.integration
@pytest.mark.parametrize("factory", ["HNSW32", "IVF{nlist},Flat", "IVF{nlist},PQ8"])
def test_filtered_search_is_never_short(tmp_path, factory):
    """Time windows and allow-lists return k results whenever k matches exist."""
    rng = np.random.default_rng(6)
    n = 12_000
    vectors = unit(rng, n, 64)
    ts = rng.integers(0, 1_000_000, n)
    idx = SegmentedIndex.open(
        tmp_path, dim=64, config=IndexConfig(factory=factory, seal_size=10_000)
    )
    idx.upsert(np.arange(n), vectors, ts)
    idx.commit()
    idx.delete(np.arange(0, n, 3))  # a third of everything tombstoned
    queries = unit(rng, 20, 64)
    live = np.ones(n, bool)
    live[::3] = False
    for since, until, allow in [
        (None, None, None),
        (100_000, 400_000, None),
        (500_000, 503_000, None),  # a sliver: ~36 vectors
        (None, None, rng.choice(n, 40, replace=False)),
        (0, 900_000, rng.choice(n, 3_000, replace=False)),
    ]:
        match = live.copy()
        if since is not None:
            match &= (ts >= since) & (ts < until)
        if allow is not None:
            allowed = np.zeros(n, bool)
            allowed[allow] = True
            match &= allowed
        _, ids = idx.search(queries, 10, since=since, until=until, allow_ids=allow)
        expected = min(10, int(match.sum()))
        assert ((ids >= 0).sum(axis=1) == expected).all(), (since, until, expected)
        assert match[ids[ids >= 0]].all()  # every result passes the filters and is live


def test_time_bounds_prune_whole_segments(tmp_path):
    rng = np.random.default_rng(7)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    for day in range(4):  # four sealed days
        ids = np.arange(day * 50, day * 50 + 50)
        idx.upsert(ids, unit(rng, 50), day * 86_400 + np.arange(50))
        idx.commit()
    _, ids = idx.search(unit(rng, 1), 100, since=86_400, until=2 * 86_400)
    assert set(ids[0][ids[0] >= 0]) == set(range(50, 100))
    _, ids = idx.search(unit(rng, 1), 5, since=10, until=10)
    assert (ids == -1).all()


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda i: i.upsert([1], np.zeros((1, D), np.float64), [0]), TypeError, "float32"),
        (lambda i: i.upsert([1], np.zeros((1, D + 1), np.float32), [0]), ValueError, f"(n, {D})"),
        (lambda i: i.upsert([1, 2], np.zeros((1, D), np.float32), [0]), ValueError, "same length"),
        (lambda i: i.upsert([-1], np.zeros((1, D), np.float32), [0]), ValueError, ">= 0"),
        (lambda i: i.upsert([1.5], np.zeros((1, D), np.float32), [0]), TypeError, "integers"),
        (lambda i: i.upsert([1], np.full((1, D), np.nan, np.float32), [0]), ValueError, "NaN"),
        (lambda i: i.upsert([1], np.zeros((1, D), np.float32), [0.5]), TypeError, "timestamps"),
        (lambda i: i.search(np.zeros((1, D), np.float32), 0), ValueError, "k:"),
        (lambda i: i.search(np.zeros(D, np.float32), 3), ValueError, "queries"),
        (lambda i: i.search(np.zeros((1, D), np.float32), 3, since="2022"), TypeError, "since"),
    ],
)
def test_bad_input_is_refused_at_the_door(tmp_path, call, error, fragment):
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    with pytest.raises(error, match=None) as caught:
        call(idx)
    assert fragment in str(caught.value)
    assert len(idx) == 0


def test_bad_factory_and_wrong_dim_are_named(tmp_path):
    with pytest.raises(ValueError, match="not a FAISS factory string"):
        SegmentedIndex.open(tmp_path / "a", dim=D, config=IndexConfig(factory="NoSuchIndex"))
    SegmentedIndex.open(tmp_path / "b", dim=D, config=flat()).close()
    with pytest.raises(ValueError, match=f"holds {D}-d vectors, not 8-d"):
        SegmentedIndex.open(tmp_path / "b", dim=8)
    with pytest.raises(IndexFormatError):
        SegmentedIndex.open(tmp_path / "c", dim=D, readonly=True)


def test_committed_data_survives_reopen_and_uncommitted_does_not(tmp_path):
    rng = np.random.default_rng(8)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    vectors = unit(rng, 70)
    idx.upsert(np.arange(60), vectors[:60], np.arange(60))
    idx.commit()
    idx.upsert(np.arange(60, 70), vectors[60:], np.arange(60, 70))
    idx.delete([0])
    idx.commit()
    idx.upsert([500], unit(rng, 1), [0])  # never committed
    idx.close()
    again = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    assert len(again) == 69
    _, ids = again.search(vectors[65:66], 1)
    assert ids[0, 0] == 65
    _, ids = again.search(vectors[0:1], 70)
    assert 0 not in ids and 500 not in ids


def test_one_writer_many_readers(tmp_path):
    """A second writer gets a clear error; readers see each new generation."""
    rng = np.random.default_rng(9)
    writer = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    writer.upsert([1], unit(rng, 1), [0])
    reader = SegmentedIndex.open(tmp_path, dim=D, readonly=True)
    second = SegmentedIndex.open(tmp_path, dim=D)
    with pytest.raises(IndexLockedError, match=f"pid {os.getpid()}"):
        second.upsert([2], unit(rng, 1), [0])
    with pytest.raises(PermissionError):
        reader.delete([1])
    assert len(reader) == 0  # not committed yet
    writer.commit()
    assert len(reader) == 1
    for step in range(3):
        writer.upsert(
            np.arange(10 + step * 40, 50 + step * 40), unit(rng, 40), np.zeros(40, np.int64)
        )
        writer.commit()
        assert len(reader) == 1 + 40 * (step + 1)
    writer.close()
    second.upsert([2], unit(rng, 1), [0])  # the lock is free now
    second.commit()


def test_second_writer_in_another_process_is_refused(tmp_path):
    writer = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    writer.upsert([1], np.ones((1, D), np.float32), [0])
    script = (
        "import numpy as np, sys\n"
        "from ml.index import SegmentedIndex, IndexLockedError\n"
        f"idx = SegmentedIndex.open({str(tmp_path)!r}, dim={D})\n"
        "try:\n"
        f"    idx.delete([1])\n"
        "except IndexLockedError as exc:\n"
        "    print('refused:', exc); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "open for writing by another process" in result.stdout


def test_compaction_drops_tombstones_and_keeps_results(tmp_path):
    rng = np.random.default_rng(10)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat(seal_size=100))
    vectors = unit(rng, 100)
    idx.upsert(np.arange(100), vectors, np.arange(100))
    idx.commit()
    idx.delete(np.arange(0, 100, 2))
    queries = unit(rng, 5)
    before = idx.search(queries, 10)
    assert idx.compact() == 1
    assert idx.stats()["tombstones"] == 0 and len(idx) == 50
    after = idx.search(queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    reopened = SegmentedIndex.open(tmp_path, dim=D, readonly=True)
    np.testing.assert_array_equal(reopened.search(queries, 10)[1], after[1])


# --- property test: random operation sequences against a dict model -----------------------

operation = st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.integers(0, 40), min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 45), min_size=1, max_size=6)),
    st.tuples(st.just("commit"), st.just([])),
    st.tuples(st.just("reopen"), st.just([])),
    st.tuples(st.just("compact"), st.just([])),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.integration
@given(ops=st.lists(operation, min_size=1, max_size=25), seed=st.integers(0, 2**16))
def test_random_operations_match_a_dict_model(tmp_path_factory, ops, seed):
    """Any sequence of upserts, deletes, commits, reopens and compactions behaves like a dict."""
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("prop")
    config = flat(seal_size=8, compact_ratio=0.3)
    idx = SegmentedIndex.open(path, dim=D, config=config)
    model: dict[int, tuple[np.ndarray, int]] = {}
    committed: dict[int, tuple[np.ndarray, int]] = {}
    for kind, ids in ops:
        if kind == "upsert":
            vectors, ts = unit(rng, len(ids)), rng.integers(0, 1000, len(ids))
            idx.upsert(ids, vectors, ts)
            for i, v, t in zip(ids, vectors, ts, strict=True):
                model[i] = (v, int(t))
        elif kind == "delete":
            idx.delete(ids)
            for i in ids:
                model.pop(i, None)
        elif kind in ("commit", "compact"):
            idx.commit() if kind == "commit" else idx.compact()
            committed = dict(model)
        else:
            idx.close()
            idx = SegmentedIndex.open(path, dim=D, config=config)
            model = dict(committed)
        assert len(idx) == len(model)
    queries = unit(rng, 3)
    vectors = {i: v for i, (v, _) in model.items()}
    _, got = idx.search(queries, 50)
    _, want = brute(vectors, queries, 50)
    for row_got, row_want in zip(got, want, strict=True):
        assert sorted(row_got[row_got >= 0]) == sorted(row_want)
    _, got = idx.search(queries, 50, since=200, until=700)
    _, want = brute(vectors, queries, 50, keep=lambda i: 200 <= model[i][1] < 700)
    for row_got, row_want in zip(got, want, strict=True):
        assert sorted(row_got[row_got >= 0]) == sorted(row_want)
    idx.close()


# --- crash safety -------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from ml.index import SegmentedIndex, IndexConfig
    path, start = sys.argv[1], int(sys.argv[2])
    idx = SegmentedIndex.open(path, dim=16, config=IndexConfig(
        factory="Flat", seal_size=300, min_seal=1, checkpoint_bytes=40_000))
    rng = np.random.default_rng(start)
    batch = start
    while True:
        ids = np.arange(batch * 50, batch * 50 + 50)
        v = rng.standard_normal((50, 16)).astype(np.float32)
        idx.upsert(ids, v / np.linalg.norm(v, axis=1, keepdims=True), ids)
        idx.delete(ids[:5] - 25) if batch else None
        idx.commit()
        print(batch, flush=True)
        batch += 1
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("delay", [0.35, 0.8, 1.3, 2.1])
def test_sigkill_during_commits_never_corrupts(tmp_path, delay):
    """A writer killed at any moment leaves an index that opens at a committed generation
    and holds every batch whose commit had returned."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(delay + 1.5)  # import time, then a stream of commits, seals and checkpoints
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    done = [int(line) for line in out.split()]
    assert done, "the writer never committed"
    idx = SegmentedIndex.open(tmp_path, dim=16, readonly=True)
    n = len(idx)

    def committed(last: int) -> set[int]:
        """Batch b adds ids 50b..50b+49 and deletes five of batch b-1's."""
        added = {i for b in range(last + 1) for i in range(b * 50, b * 50 + 50)}
        return added - {i for b in range(1, last + 1) for i in range(b * 50 - 25, b * 50 - 20)}

    # The kill may land after the next commit was durable but before it printed.
    expected = next(
        (committed(last) for last in (done[-1], done[-1] + 1) if len(committed(last)) == n), None
    )
    assert expected is not None, f"{n} live vectors after batch {done[-1]} was committed"
    probe = np.eye(16, dtype=np.float32)
    _, ids = idx.search(probe, n)
    found = set(ids[ids >= 0].tolist())
    assert found == expected
    # The writer can pick up where the dead one stopped.
    writer = SegmentedIndex.open(tmp_path, dim=16)
    writer.upsert([10**9], probe[:1], [0])
    writer.commit()
    assert len(writer) == n + 1


def test_compaction_merges_segments_down_to_the_limit(tmp_path):
    """Many small sealed segments merge, neighbours in time, into at most max_segments."""
    rng = np.random.default_rng(11)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat(seal_size=20, max_segments=2))
    vectors = unit(rng, 100)
    for day in range(5):
        ids = np.arange(day * 20, day * 20 + 20)
        idx.upsert(ids, vectors[ids], day * 86_400 + np.arange(20))
        idx.commit()
    idx.delete([0, 1])
    assert idx.stats()["sealed_segments"] == 5
    queries = unit(rng, 4)
    before = idx.search(queries, 30)
    assert idx.compact() >= 4
    stats = idx.stats()
    assert stats["sealed_segments"] == 2 and stats["tombstones"] == 0 and len(idx) == 98
    spans = sorted((s["min_ts"], s["max_ts"]) for s in stats["segments"])
    assert spans[0][1] < spans[1][0]  # each merged segment is a contiguous slice of time
    np.testing.assert_array_equal(idx.search(queries, 30)[1], before[1])


# --- tags and entries() -------------------------------------------------------------------


def model_entries(model: dict[int, int]) -> tuple[list[int], list[int]]:
    """The (ids, tags) entries() should return for a dict of id -> tag."""
    ids = sorted(model)
    return ids, [model[i] for i in ids]


def assert_entries(idx: SegmentedIndex, model: dict[int, int]) -> None:
    ids, tags = idx.entries()
    assert ids.dtype == np.int64 and tags.dtype == np.int64
    assert (ids.tolist(), tags.tolist()) == model_entries(model)


def test_entries_list_live_ids_with_their_tags_sorted_by_id(tmp_path):
    """entries() gives every live id once, sorted by id, with the tag it was upserted with;
    without tags the tag is 0; an empty index has no entries."""
    rng = np.random.default_rng(20)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    assert_entries(idx, {})
    idx.upsert([30, 10, 20], unit(rng, 3), [0, 0, 0], [333, 111, 222])
    idx.upsert([5], unit(rng, 1), [0])
    assert_entries(idx, {5: 0, 10: 111, 20: 222, 30: 333})


def test_tags_survive_commit_and_reopen(tmp_path):
    """Committed tags come back after a reopen (from the log); uncommitted ones do not;
    a read-only reader sees the committed tags too."""
    rng = np.random.default_rng(21)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    idx.upsert(np.arange(10), unit(rng, 10), np.arange(10), np.arange(10) * 7 + 1)
    idx.commit()
    idx.upsert([3], unit(rng, 1), [3], [-5])  # never committed
    idx.close()
    committed = {i: i * 7 + 1 for i in range(10)}
    again = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    assert_entries(again, committed)
    reader = SegmentedIndex.open(tmp_path, dim=D, readonly=True)
    assert_entries(reader, committed)
    again.upsert([3, 40], unit(rng, 2), [3, 40], [99, 400])
    again.commit()
    assert_entries(reader, committed | {3: 99, 40: 400})  # the reader reloads


def test_tags_survive_checkpoints(tmp_path):
    """When the log is folded into a snapshot at every commit, the tags still come back."""
    rng = np.random.default_rng(22)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat(checkpoint_bytes=1))
    model = {}
    for step in range(3):
        ids = np.arange(step * 5, step * 5 + 5)
        idx.upsert(ids, unit(rng, 5), ids, ids + 1000 * (step + 1))
        idx.commit()
        model.update({int(i): int(i) + 1000 * (step + 1) for i in ids})
    assert idx.stats()["log_files"] == 0  # the state lives in a snapshot
    idx.close()
    assert_entries(SegmentedIndex.open(tmp_path, dim=D, readonly=True), model)


def test_tags_survive_seal_delete_replace_and_compact(tmp_path):
    """Tags follow their vectors into sealed segments and through compaction; a deleted id
    leaves entries(); re-upserting an id, sealed or active, replaces its tag; all of it
    after a reopen too."""
    rng = np.random.default_rng(23)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat(seal_size=1000, compact_ratio=0.05))
    model = {i: 10 * i for i in range(40)}
    idx.upsert(np.arange(40), unit(rng, 40), np.arange(40), np.arange(40) * 10)
    idx.seal()
    assert idx.stats()["sealed_segments"] == 1 and idx.stats()["active_vectors"] == 0
    assert_entries(idx, model)
    idx.upsert([40, 41], unit(rng, 2), [40, 41], [400, 410])  # active
    model |= {40: 400, 41: 410}
    idx.delete([1, 2, 3, 41])  # sealed and active ids
    for i in (1, 2, 3, 41):
        del model[i]
    idx.upsert([4, 40], unit(rng, 2), [4, 40], [-4, -40])  # replaces a sealed and an active id
    model |= {4: -4, 40: -40}
    assert_entries(idx, model)
    idx.commit()
    assert idx.stats()["tombstones"] == 4
    assert idx.compact() == 1
    assert idx.stats()["tombstones"] == 0
    assert_entries(idx, model)
    idx.close()
    assert_entries(SegmentedIndex.open(tmp_path, dim=D, readonly=True), model)


def test_replacing_upsert_keeps_the_new_tag_once(tmp_path):
    """An id upserted again, in another call or twice in one call, keeps only the last tag."""
    rng = np.random.default_rng(24)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    idx.upsert([7, 8], unit(rng, 2), [0, 0], [1, 2])
    idx.upsert([7, 7, 9], unit(rng, 3), [0, 0, 0], [3, 4, 5])
    idx.upsert([8], unit(rng, 1), [0], [6])
    idx.delete([9])
    idx.upsert([9], unit(rng, 1), [0], [7])
    assert_entries(idx, {7: 4, 8: 6, 9: 7})
    idx.commit()  # the collapsed log keeps each id's last operation and tag
    idx.close()
    assert_entries(SegmentedIndex.open(tmp_path, dim=D, readonly=True), {7: 4, 8: 6, 9: 7})


def test_tags_may_be_negative_but_ids_may_not(tmp_path):
    """Any int64 is a tag (a hash may be negative); a negative id is still refused."""
    rng = np.random.default_rng(25)
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    extreme = [np.iinfo(np.int64).min, -1, np.iinfo(np.int64).max]
    idx.upsert([1, 2, 3], unit(rng, 3), [0, 0, 0], np.array(extreme, np.int64))
    idx.commit()
    with pytest.raises(ValueError, match=">= 0"):
        idx.upsert([-2], unit(rng, 1), [0], [5])
    idx.close()
    assert_entries(
        SegmentedIndex.open(tmp_path, dim=D, readonly=True), dict(zip([1, 2, 3], extreme))
    )


@pytest.mark.parametrize(
    ("tags", "error", "fragment"),
    [
        ([1], ValueError, "same length"),
        ([1, 2, 3], ValueError, "tags"),
        ([1.5, 2.5], TypeError, "tags"),
        ([[1, 2]], ValueError, "tags"),
    ],
)
def test_bad_tags_are_refused_at_the_door(tmp_path, tags, error, fragment):
    """Tags of the wrong length, type or shape raise before anything is written."""
    idx = SegmentedIndex.open(tmp_path, dim=D, config=flat())
    with pytest.raises(error) as caught:
        idx.upsert([1, 2], np.zeros((2, D), np.float32), [0, 0], tags)
    assert fragment in str(caught.value)
    assert len(idx) == 0 and idx.entries()[0].tolist() == []


tag_operation = st.one_of(
    st.tuples(st.just("upsert"), st.lists(st.integers(0, 30), min_size=1, max_size=10)),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 35), min_size=1, max_size=5)),
    st.tuples(st.just("commit"), st.just([])),
    st.tuples(st.just("seal"), st.just([])),
    st.tuples(st.just("reopen"), st.just([])),
    st.tuples(st.just("compact"), st.just([])),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(tag_operation, min_size=1, max_size=20), seed=st.integers(0, 2**16))
def test_entries_match_a_dict_model_under_random_operations(tmp_path_factory, ops, seed):
    """Any sequence of tagged upserts, deletes, commits, seals, reopens and compactions
    leaves entries() equal to a dict of id -> last tag."""
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("tags")
    config = flat(seal_size=6, compact_ratio=0.3, max_segments=3)
    idx = SegmentedIndex.open(path, dim=D, config=config)
    model: dict[int, int] = {}
    committed: dict[int, int] = {}
    for kind, ids in ops:
        if kind == "upsert":
            tags = rng.integers(-(2**62), 2**62, len(ids))
            idx.upsert(ids, unit(rng, len(ids)), rng.integers(0, 1000, len(ids)), tags)
            model.update(zip(ids, tags.tolist(), strict=True))
        elif kind == "delete":
            idx.delete(ids)
            for i in ids:
                model.pop(i, None)
        elif kind == "reopen":
            idx.close()
            idx = SegmentedIndex.open(path, dim=D, config=config)
            model = dict(committed)
        else:
            getattr(idx, kind)()
            committed = dict(model)
        assert_entries(idx, model)
        assert len(idx) == len(model)
    idx.close()
