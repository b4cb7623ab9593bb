"""The vector index of posts: time-partitioned FAISS segments with crash-safe persistence.

    idx = SegmentedIndex.open(path, dim=384)          # creates the folder if new
    idx.upsert(ids, vectors, timestamps, tags)        # int64 (n,), float32 (n, d), int64 (n,) x2
    idx.delete(ids)                                   # unknown ids are ignored
    idx.commit()                                      # durable when it returns
    scores, ids = idx.search(queries, k, since=None, until=None, allow_ids=None)
    len(idx)                                          # live vectors
    ids, tags = idx.entries()                         # every live id and its tag, by id

A *tag* is an int64 the caller stores beside each vector (Plaza stores a hash of the text
it embedded), so a caller can diff the index against its source of truth without
re-embedding anything.

Scores are inner products (the encoder's vectors are unit length, so cosine).

Layout. New vectors go to the *active* segment, an `IndexIDMap2` over a flat index. When
it holds `seal_size` vectors (or its oldest insert is `seal_age_s` old) a commit *seals*
it: the vectors are rebuilt into a trained index chosen by a factory string (HNSW, IVF,
IVF-PQ), stored with their ids and timestamps and a raw copy on disk (memory-mapped, read
only for exact fallbacks and compaction). Sealed segments never change: upserting an id
that lives in one, or deleting it, sets a *tombstone* there, honoured at query time by
a FAISS bitmap selector and dropped when `compact()` rebuilds the segment.

Durability. `commit()` appends the operations since the last commit to a write-ahead log
file, then writes a new JSON manifest (generation + 1) listing the sealed segments, the
active segment's snapshot, the tombstones file and the log files. Every file is written
to a temporary name, fsynced and renamed, and the folder is fsynced, so a crash at any
point leaves the previous or the new generation, never a torn one. The log is folded
into a snapshot once it outgrows the active segment (a checkpoint), so a commit writes
only what changed (about 1.5 MB for 1,000 384-d upserts) whatever the index size.

Readers and writers. Any number of processes may open the folder to search; they reload
when the manifest's generation changes. The first write (upsert, delete, commit) takes
an exclusive file lock: a second writer gets `IndexLockedError`.

Filters. `since`/`until` (unix seconds; since inclusive, until exclusive) skip segments
outside the window; inside a boundary segment they, `allow_ids` and the tombstones become
one FAISS selector. A segment that comes back short of the matches it holds is searched
again with a wider beam, then exactly over its raw vectors, so a filtered search returns
k results whenever k matching live vectors exist.

GPU. With faiss built for GPUs and a GPU present, sealed IVF and flat segments are
searched on the GPU; HNSW stays on the CPU. The CPU path is the one tested here.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK_FILE = "writer.lock"
# Below this many matching vectors a segment is searched exactly over its raw vectors.
EXACT_BELOW = 2048


class IndexLockedError(RuntimeError):
    """Another process holds the index open for writing."""


class IndexFormatError(RuntimeError):
    """The folder does not hold an index this code can read."""


@dataclass
class IndexConfig:
    """How segments are built and searched. Defaults come from bench/index.py's sweep."""

    factory: str = "HNSW32"  # FAISS factory string for sealed segments; "{nlist}" is filled in
    seal_size: int = 200_000  # a commit seals the active segment once it holds this many
    seal_age_s: int = 6 * 3600  # ... or once its oldest vector is this old (and >= min_seal)
    min_seal: int = 1_000  # age alone never seals fewer vectors than this
    ef_search: int = 128  # HNSW beam width at query time
    nprobe: int = 32  # IVF lists scanned at query time
    checkpoint_bytes: int = 64 << 20  # fold the log into a snapshot past max(this, active size)
    compact_ratio: float = 0.2  # compact() rebuilds sealed segments with more tombstones than this
    max_segments: int = 8  # compact() merges neighbouring sealed segments down to this many
    use_gpu: bool = True  # search sealed IVF/flat segments on a GPU when faiss has one

    def __post_init__(self) -> None:
        for name in (
            "seal_size",
            "min_seal",
            "ef_search",
            "nprobe",
            "checkpoint_bytes",
            "max_segments",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"IndexConfig.{name} must be at least 1")
        if self.seal_age_s < 0:
            raise ValueError("IndexConfig.seal_age_s must be >= 0")
        if not 0.0 < self.compact_ratio <= 1.0:
            raise ValueError("IndexConfig.compact_ratio must be in (0, 1]")
        if self.min_seal > self.seal_size:
            raise ValueError("IndexConfig.min_seal must not exceed IndexConfig.seal_size")


# --- checks at the door ------------------------------------------------------------------


def _as_ids(ids: Any, name: str = "ids", *, signed: bool = False) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of int64, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}: expected integers (int64), got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if not signed and array.size and array.min() < 0:
        raise ValueError(f"{name}: ids must be >= 0 (-1 marks 'no result'), got {array.min()}")
    return array


def _as_vectors(vectors: Any, dim: int, name: str) -> np.ndarray:
    if not isinstance(vectors, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array of float32 with shape (n, {dim})")
    if vectors.dtype != np.float32:
        raise TypeError(
            f"{name}: expected float32, got {vectors.dtype} (convert with .astype(np.float32))"
        )
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"{name}: expected shape (n, {dim}), got {vectors.shape}")
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValueError(f"{name}: row {bad} holds NaN or infinity")
    return np.ascontiguousarray(vectors)


def _as_time(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected unix seconds as an int or None, got {value!r}")
    return int(value)


# --- files -------------------------------------------------------------------------------


def _tags_of(arrays, n: int) -> np.ndarray:
    """The tags saved in an npz, or zeros for files written before tags existed."""
    return arrays["tags"] if "tags" in arrays.files else np.zeros(n, np.int64)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, write) -> None:
    """write(tmp_path) then fsync and rename over `path`; the folder is fsynced by callers."""
    tmp = path.with_name(f".tmp-{path.name}")
    write(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    _write_atomic(path, write)


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    _write_atomic(path, write)


def _save_faiss(path: Path, index: faiss.Index) -> None:
    _write_atomic(path, lambda tmp: faiss.write_index(index, str(tmp)))


def _release_memory() -> None:
    """Hand the heap a seal freed back to the OS (glibc keeps it otherwise)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# --- segments ----------------------------------------------------------------------------


def _params_for(index: faiss.Index, config: IndexConfig, selector, widen: int = 1):
    """Search parameters for the index type: beam/probes (times `widen`) and a selector."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=config.ef_search * widen)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return faiss.SearchParametersIVF(sel=selector, nprobe=min(ivf.nlist, config.nprobe * widen))
    return faiss.SearchParameters(sel=selector)


def _top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k columns per row of (m, c) candidate arrays, best first; pads with -1/-inf."""
    m, c = scores.shape
    if c < k:
        scores = np.hstack([scores, np.full((m, k - c), -np.inf, np.float32)])
        ids = np.hstack([ids, np.full((m, k - c), -1, np.int64)])
        c = k
    scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
    part = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k] if c > k else np.tile(np.arange(k), (m, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(scores, best, axis=1), np.take_along_axis(ids, best, axis=1)


class SealedSegment:
    """An immutable trained index over one time slice, with ids, times and tombstones."""

    def __init__(self, meta: dict, folder: Path, index: faiss.Index | None = None):
        self.meta = meta
        self.name: str = meta["name"]
        self.index = index if index is not None else faiss.read_index(str(folder / meta["index"]))
        arrays = np.load(folder / meta["arrays"])
        self.ids: np.ndarray = arrays["ids"]  # (n,) external id at each internal position
        self.ts: np.ndarray = arrays["ts"]  # (n,) unix seconds
        self.tags: np.ndarray = _tags_of(arrays, len(self.ids))  # (n,) caller's int64 per vector
        self.order: np.ndarray = np.argsort(self.ids, kind="stable")  # positions by id
        self.sorted_ids: np.ndarray = self.ids[self.order]
        self.vectors = np.load(folder / meta["vectors"], mmap_mode="r")  # (n, d), on disk
        self.min_ts, self.max_ts = int(meta["min_ts"]), int(meta["max_ts"])
        self.dead = np.zeros(len(self.ids), dtype=bool)  # tombstones by position
        self.n_dead = 0
        self._live_bitmap: np.ndarray | None = None
        self._plain_params = None  # search parameters without a selector, made once

    def __len__(self) -> int:
        return len(self.ids) - self.n_dead

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask over `ids` of those stored here, their positions)."""
        where = np.searchsorted(self.sorted_ids, ids)
        where = np.minimum(where, len(self.sorted_ids) - 1)
        found = self.sorted_ids[where] == ids if len(self.sorted_ids) else np.zeros(len(ids), bool)
        return found, self.order[where[found]]

    def kill(self, ids: np.ndarray) -> np.ndarray:
        """Tombstone the live ones among `ids`; returns the ids that were live here."""
        found, positions = self.positions(ids)
        positions = positions[~self.dead[positions]]
        if len(positions):
            self.dead[positions] = True
            self.n_dead = int(self.dead.sum())
            self._live_bitmap = None
        return self.ids[positions]

    def live_ids(self, ids: np.ndarray) -> np.ndarray:
        found, positions = self.positions(ids)
        return self.ids[positions[~self.dead[positions]]]

    def match_mask(self, since, until, allow: np.ndarray | None) -> np.ndarray | None:
        """Positions that pass every filter, or None when only the tombstones apply."""
        mask = None
        if (since is not None and self.min_ts < since) or (
            until is not None and self.max_ts >= until
        ):
            mask = np.ones(len(self.ids), dtype=bool)
            if since is not None:
                mask &= self.ts >= since
            if until is not None:
                mask &= self.ts < until
        if allow is not None:
            allowed = np.zeros(len(self.ids), dtype=bool)
            allowed[self.positions(allow)[1]] = True
            mask = allowed if mask is None else mask & allowed
        if mask is not None and self.n_dead:
            mask &= ~self.dead
        return mask

    def search(self, queries: np.ndarray, k: int, mask: np.ndarray | None, config: IndexConfig):
        n_match = int(mask.sum()) if mask is not None else len(self)
        if n_match == 0:
            return None
        if n_match <= EXACT_BELOW:
            positions = np.flatnonzero(mask if mask is not None else ~self.dead)
            return self._exact(queries, k, positions)
        if mask is None:
            if self._live_bitmap is None and self.n_dead:
                self._live_bitmap = np.packbits(~self.dead, bitorder="little")
            bitmap = self._live_bitmap
        else:
            bitmap = np.packbits(mask, bitorder="little")
        if bitmap is None:  # no filter, no tombstones: the same parameters every time
            if self._plain_params is None:
                self._plain_params = _params_for(self.index, config, None)
            selector, params = None, self._plain_params
        else:
            selector = faiss.IDSelectorBitmap(len(self.ids), faiss.swig_ptr(bitmap))
            params = _params_for(self.index, config, selector)
        want = min(k, n_match)
        scores, positions = self.index.search(queries, want, params=params)
        short = (positions >= 0).sum(axis=1) < want
        if short.any():  # a filter starved the beam: search those rows again, wider
            rows = np.flatnonzero(short)
            wide = _params_for(self.index, config, selector, widen=8)
            scores[rows], positions[rows] = self.index.search(queries[rows], want, params=wide)
            short = (positions >= 0).sum(axis=1) < want
        ids = np.where(positions >= 0, self.ids[np.maximum(positions, 0)], -1)
        if short.any():  # still short: exact over the matching raw vectors
            rows = np.flatnonzero(short)
            live = np.flatnonzero(mask if mask is not None else ~self.dead)
            scores[rows], ids[rows] = self._exact(queries[rows], want, live)
        return scores, ids

    def _exact(self, queries: np.ndarray, k: int, positions: np.ndarray):
        vectors = np.asarray(self.vectors[positions])  # (p, d) gathered from disk
        scores = queries @ vectors.T  # (m, p)
        return _top_k(
            scores.astype(np.float32), np.broadcast_to(self.ids[positions], scores.shape), k
        )


class ActiveSegment:
    """The segment that takes inserts: IndexIDMap2 over a flat index, plus times by position."""

    def __init__(self, dim: int):
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.ids = np.empty(0, np.int64)  # (n,) in the index's internal order
        self.ts = np.empty(0, np.int64)  # (n,)
        self.tags = np.empty(0, np.int64)  # (n,)
        self.first_insert: float | None = None  # wall time, for sealing by age

    def __len__(self) -> int:
        return len(self.ids)

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Remove the stored ones among `ids`; returns those removed."""
        present = np.isin(self.ids, ids)
        if not present.any():
            return np.empty(0, np.int64)
        removed = self.ids[present]
        self.index.remove_ids(faiss.IDSelectorBatch(removed))
        # Flat and IDMap2 both keep the remaining rows in order: mirror that.
        self.ids, self.ts, self.tags = self.ids[~present], self.ts[~present], self.tags[~present]
        return removed

    def add(self, ids: np.ndarray, vectors: np.ndarray, ts: np.ndarray, tags: np.ndarray) -> None:
        if not len(ids):
            return
        self.index.add_with_ids(vectors, ids)
        self.ids = np.concatenate([self.ids, ids])
        self.ts = np.concatenate([self.ts, ts])
        self.tags = np.concatenate([self.tags, tags])
        if self.first_insert is None:
            self.first_insert = time.time()

    def vectors(self) -> np.ndarray:
        return (
            self.index.index.reconstruct_n(0, len(self))
            if len(self)
            else np.empty((0, self.index.d), np.float32)
        )

    def search(self, queries: np.ndarray, k: int, since, until, allow):
        if not len(self):
            return None
        selector = None
        if since is not None or until is not None or allow is not None:
            mask = np.ones(len(self), dtype=bool)
            if since is not None:
                mask &= self.ts >= since
            if until is not None:
                mask &= self.ts < until
            if allow is not None:
                mask &= np.isin(self.ids, allow)
            if not mask.any():
                return None
            selector = faiss.IDSelectorBatch(self.ids[mask])
        want = min(k, len(self))
        return self.index.search(queries, want, params=faiss.SearchParameters(sel=selector))


# --- the index ---------------------------------------------------------------------------


class SegmentedIndex:
    """See the module docstring."""

    def __init__(self, path: Path, dim: int, config: IndexConfig, readonly: bool):
        self.path = path
        self.dim = dim
        self.config = config
        self.readonly = readonly
        self._lock = threading.RLock()
        self._lock_fd: int | None = None
        self._manifest: dict = {}
        self._manifest_stat: tuple | None = None
        self._sealed: list[SealedSegment] = []
        self._active = ActiveSegment(dim)
        # Writes since the last commit, in order: (ids, vectors, ts, tags); vectors None = delete.
        self._pending: list[tuple] = []
        self._gpu = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        dim: int = 384,
        *,
        config: IndexConfig | None = None,
        readonly: bool = False,
    ) -> SegmentedIndex:
        """Open the index in `path`, creating the folder and an empty index when new.

        Opening never locks: the first write takes the writer lock. `readonly=True` refuses
        writes altogether.
        """
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim: expected a positive int, got {dim!r}")
        config = config or IndexConfig()
        try:
            faiss.index_factory(dim, config.factory.format(nlist=16), faiss.METRIC_INNER_PRODUCT)
        except Exception as exc:  # noqa: BLE001 - FAISS raises RuntimeError with C++ text
            raise ValueError(
                f"IndexConfig.factory {config.factory!r} is not a FAISS factory string "
                f"for {dim}-d vectors: {str(exc).strip().splitlines()[-1]}"
            ) from None
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        index = cls(folder, dim, config, readonly)
        if not (folder / MANIFEST).exists():
            if readonly:
                raise IndexFormatError(f"{folder}: no index here (no {MANIFEST})")
            index._acquire_writer()
            index._write_manifest(index._new_manifest())
        index._load()
        return index

    def _new_manifest(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "generation": 0,
            "dim": self.dim,
            "next_file": 1,
            "sealed": [],
            "active": None,
            "tombstones": None,
            "log": [],
            "log_bytes": 0,
            "active_since": None,
        }

    def _read_manifest(self) -> tuple[dict, tuple]:
        path = self.path / MANIFEST
        stat = os.stat(path)
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise IndexFormatError(f"{path}: not a valid manifest ({exc})") from exc
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: format {manifest.get('format')} is not {FORMAT_VERSION}"
            )
        if manifest["dim"] != self.dim:
            raise ValueError(
                f"dim: the index at {self.path} holds {manifest['dim']}-d vectors, not {self.dim}-d"
            )
        return manifest, (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _load(self) -> None:
        """Load the newest generation; a reader retries if files vanish under it."""
        for attempt in range(5):
            manifest, stat = self._read_manifest()
            try:
                self._load_manifest(manifest)
            except FileNotFoundError:
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
            self._manifest, self._manifest_stat = manifest, stat
            return

    def _load_manifest(self, manifest: dict) -> None:
        by_name = {segment.name: segment for segment in self._sealed}
        sealed = []
        for meta in manifest["sealed"]:
            segment = by_name.get(meta["name"]) or SealedSegment(meta, self.path)
            segment.dead[:] = False
            segment.n_dead = 0
            segment._live_bitmap = None
            sealed.append(segment)
        if manifest["tombstones"]:
            tombstones = np.load(self.path / manifest["tombstones"])
            for segment in sealed:
                if segment.name in tombstones:
                    segment.dead[tombstones[segment.name]] = True
                    segment.n_dead = int(segment.dead.sum())
        active = ActiveSegment(self.dim)
        if manifest["active"]:
            active.index = faiss.read_index(str(self.path / manifest["active"]["index"]))
            arrays = np.load(self.path / manifest["active"]["arrays"])
            active.ids, active.ts = arrays["ids"], arrays["ts"]
            active.tags = _tags_of(arrays, len(active.ids))
        active.first_insert = manifest.get("active_since")
        self._sealed, self._active = sealed, active
        for name in manifest["log"]:
            with np.load(self.path / name) as log:
                tags = _tags_of(log, len(log["upsert_ids"]))
                self._apply(log["upsert_ids"], log["vectors"], log["ts"], tags, log["delete_ids"])
        self._place_on_gpu()

    def _maybe_reload(self) -> None:
        if self._lock_fd is not None:
            return  # the writer's memory is the newest state
        try:
            stat = os.stat(self.path / MANIFEST)
        except FileNotFoundError:
            return
        if (stat.st_ino, stat.st_mtime_ns, stat.st_size) != self._manifest_stat:
            self._load()

    # -- writing ---------------------------------------------------------------------------

    def _acquire_writer(self) -> None:
        if self._lock_fd is not None:
            return
        if self.readonly:
            raise PermissionError(f"{self.path}: opened read-only")
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IndexLockedError(
                f"{self.path} is open for writing by another process (pid {holder}); "
                "one writer at a time: send writes to that process (the index queue)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        if self._manifest:  # someone may have written since we loaded
            self._load()

    def upsert(self, ids: Any, vectors: Any, timestamps: Any, tags: Any = None) -> None:
        """Insert or replace vectors by id. Later duplicates in one call win.

        `tags` (int64 (n,), default zeros) are stored beside the vectors; see `entries()`.
        """
        ids = _as_ids(ids)
        vectors = _as_vectors(vectors, self.dim, "vectors")
        timestamps = np.asarray(timestamps)
        if timestamps.ndim != 1 or (
            timestamps.size and not np.issubdtype(timestamps.dtype, np.integer)
        ):
            raise TypeError(
                "timestamps: expected a 1-d array of int64 unix seconds, "
                f"got {timestamps.dtype} with shape {timestamps.shape}"
            )
        timestamps = timestamps.astype(np.int64, copy=False)
        tags = np.zeros(len(ids), np.int64) if tags is None else _as_ids(tags, "tags", signed=True)
        if not (len(ids) == len(vectors) == len(timestamps) == len(tags)):
            raise ValueError(
                f"ids, vectors, timestamps and tags must have the same length; got {len(ids)}, "
                f"{len(vectors)}, {len(timestamps)} and {len(tags)}"
            )
        if not len(ids):
            return
        with self._lock:
            self._acquire_writer()
            # Keep the last occurrence of each id.
            _, last = np.unique(ids[::-1], return_index=True)
            keep = np.sort(len(ids) - 1 - last)
            ids, vectors, timestamps, tags = ids[keep], vectors[keep], timestamps[keep], tags[keep]
            self._apply(ids, vectors, timestamps, tags, np.empty(0, np.int64))
            self._pending.append((ids, vectors, timestamps, tags))

    def delete(self, ids: Any) -> None:
        """Remove vectors by id; ids not in the index are ignored."""
        ids = np.unique(_as_ids(ids))
        if not len(ids):
            return
        with self._lock:
            self._acquire_writer()
            nothing = np.empty(0, np.int64)
            self._apply(nothing, np.empty((0, self.dim), np.float32), nothing, nothing, ids)
            self._pending.append((ids, None, None, None))

    def _apply(self, upsert_ids, vectors, ts, tags, delete_ids) -> None:
        """Deletes, then upserts (a replaced id is removed wherever it lives, then added)."""
        gone = np.concatenate([delete_ids, upsert_ids]).astype(np.int64)
        if len(gone):
            self._active.remove(gone)
            for segment in self._sealed:
                segment.kill(gone)
        self._active.add(upsert_ids, vectors, ts, tags)

    def commit(self) -> None:
        """Make every write so far durable; seal or checkpoint when due."""
        with self._lock:
            self._acquire_writer()
            manifest = dict(self._manifest)
            if self._pending:
                name = self._file_name(manifest, "log", "npz")
                _save_npz(self.path / name, **self._pending_collapsed())
                manifest["log"] = [*manifest["log"], name]
                manifest["log_bytes"] += (self.path / name).stat().st_size
                manifest["active_since"] = self._active.first_insert
                self._pending = []
                self._write_manifest(manifest)
            if self._seal_due():
                self._seal()
            elif self._manifest["log_bytes"] > max(
                self.config.checkpoint_bytes, len(self._active) * self.dim * 4
            ):
                self._checkpoint()

    def _pending_collapsed(self) -> dict[str, np.ndarray]:
        """The writes since the last commit as one log record: each id's last operation."""
        ids = np.concatenate([op[0] for op in self._pending])
        is_delete = np.concatenate([np.full(len(op[0]), op[1] is None) for op in self._pending])
        upserts = [op[1:] for op in self._pending if op[1] is not None]  # (vectors, ts, tags)
        vectors = (
            np.concatenate([v for v, _, _ in upserts])
            if upserts
            else np.empty((0, self.dim), np.float32)
        )
        ts = np.concatenate([t for _, t, _ in upserts]) if upserts else np.empty(0, np.int64)
        tags = np.concatenate([g for _, _, g in upserts]) if upserts else np.empty(0, np.int64)
        # Row of each operation in `vectors` (deletes have none).
        row = np.full(len(ids), -1, np.int64)
        row[~is_delete] = np.arange(len(vectors))
        _, last = np.unique(ids[::-1], return_index=True)
        final = len(ids) - 1 - last  # each id's last operation
        up, down = final[~is_delete[final]], final[is_delete[final]]
        return {
            "upsert_ids": ids[up],
            "vectors": vectors[row[up]].reshape(-1, self.dim),
            "ts": ts[row[up]],
            "tags": tags[row[up]],
            "delete_ids": ids[down],
        }

    def _seal_due(self) -> bool:
        n = len(self._active)
        if n >= self.config.seal_size:
            return True
        started = self._active.first_insert
        return (
            n >= self.config.min_seal
            and started is not None
            and time.time() - started >= self.config.seal_age_s
        )

    def _file_name(self, manifest: dict, kind: str, ext: str) -> str:
        number = manifest["next_file"]
        manifest["next_file"] = number + 1
        return f"{kind}-{number:08d}.{ext}"

    def _write_manifest(self, manifest: dict) -> None:
        """Publish a new generation (temp file, fsync, rename, fsync folder); then GC files."""
        previous = self._manifest
        manifest = {**manifest, "generation": manifest["generation"] + 1 if previous else 0}
        _fsync_dir(self.path)  # the files it names are durable before it is
        _write_atomic(
            self.path / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1))
        )
        _fsync_dir(self.path)
        stat = os.stat(self.path / MANIFEST)
        self._manifest, self._manifest_stat = (
            manifest,
            (stat.st_ino, stat.st_mtime_ns, stat.st_size),
        )
        self._collect_garbage(keep=[manifest, previous])

    def _collect_garbage(self, keep: list[dict]) -> None:
        """Delete files neither this generation nor the one before it names."""
        named = {MANIFEST, LOCK_FILE}
        for manifest in keep:
            if not manifest:
                continue
            named.update(manifest["log"])
            if manifest["tombstones"]:
                named.add(manifest["tombstones"])
            if manifest["active"]:
                named.update(manifest["active"].values())
            for meta in manifest["sealed"]:
                named.update((meta["index"], meta["arrays"], meta["vectors"]))
        for entry in self.path.iterdir():
            if entry.name not in named:
                entry.unlink(missing_ok=True)

    def _checkpoint(self, manifest: dict | None = None) -> None:
        """Fold the log into an active snapshot and a tombstones file."""
        manifest = dict(manifest or self._manifest)
        if len(self._active):
            active = {
                "index": self._file_name(manifest, "active", "faiss"),
                "arrays": self._file_name(manifest, "active", "npz"),
            }
            _save_faiss(self.path / active["index"], self._active.index)
            _save_npz(
                self.path / active["arrays"],
                ids=self._active.ids,
                ts=self._active.ts,
                tags=self._active.tags,
            )
            manifest["active"] = active
        else:
            manifest["active"] = None
        dead = {s.name: np.flatnonzero(s.dead) for s in self._sealed if s.n_dead}
        if dead:
            manifest["tombstones"] = self._file_name(manifest, "tombstones", "npz")
            _save_npz(self.path / manifest["tombstones"], **dead)
        else:
            manifest["tombstones"] = None
        manifest["sealed"] = [s.meta for s in self._sealed]
        manifest["log"], manifest["log_bytes"] = [], 0
        manifest["active_since"] = self._active.first_insert
        self._write_manifest(manifest)

    def _build_segment(
        self, manifest: dict, ids: np.ndarray, vectors: np.ndarray, ts: np.ndarray, tags
    ) -> SealedSegment:
        """Train and fill a sealed segment from (n, d) vectors; write its files."""
        n = len(ids)
        factory = self._factory_for(n)
        index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        inner = faiss.downcast_index(index)
        if getattr(inner, "do_polysemous_training", False):
            inner.do_polysemous_training = False  # 30x the training time, for a search we skip
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        meta = {
            "name": self._file_name(manifest, "segment", "d"),
            "factory": factory,
            "count": n,
            "min_ts": int(ts.min()),
            "max_ts": int(ts.max()),
        }
        stem = meta["name"]
        meta["index"], meta["arrays"], meta["vectors"] = (
            f"{stem}.faiss",
            f"{stem}.npz",
            f"{stem}.vectors.npy",
        )
        _save_faiss(self.path / meta["index"], index)
        _save_npz(self.path / meta["arrays"], ids=ids, ts=ts, tags=tags)
        _save_npy(self.path / meta["vectors"], vectors)
        return SealedSegment(meta, self.path, index=index)

    def _factory_for(self, n: int) -> str:
        """The configured factory, with {nlist} filled in; flat when n is too small to train."""
        nlist = max(1, min(int(math.sqrt(n)), n // 39))
        factory = self.config.factory.format(nlist=nlist)
        probe = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.try_extract_index_ivf(probe)
        needed = ivf.nlist * 39 if ivf is not None else 0  # FAISS's points-per-centroid floor
        if "PQ" in factory:
            needed = max(needed, 256 * 39)  # 256 codes per sub-quantizer
        return factory if n >= needed else "Flat"

    def _seal(self) -> None:
        """Turn the active segment into a sealed, trained one."""
        manifest = dict(self._manifest)
        active = self._active
        order = np.argsort(active.ts, kind="stable")  # time order: neighbours in time, in storage
        segment = self._build_segment(
            manifest,
            active.ids[order],
            active.vectors()[order],
            active.ts[order],
            active.tags[order],
        )
        logger.info(
            "sealed %s: %d vectors, %s", segment.name, len(segment.ids), segment.meta["factory"]
        )
        self._sealed.append(segment)
        self._active = ActiveSegment(self.dim)
        self._place_on_gpu()
        self._checkpoint(manifest)
        _release_memory()

    def compact(self) -> int:
        """Rebuild sealed segments whose tombstones exceed `compact_ratio`, then merge
        neighbours in time while there are more than `max_segments`; returns how many
        segments were rebuilt. Run it off the write path (beat): it holds the writer."""
        with self._lock:
            self._acquire_writer()
            self.commit()
            manifest = dict(self._manifest)
            groups = [
                [s] if s.n_dead <= self.config.compact_ratio * len(s.ids) else [s, None]
                for s in sorted(self._sealed, key=lambda s: (s.min_ts, s.max_ts))
            ]  # a trailing None marks a segment to rebuild
            while len(groups) > self.config.max_segments:
                sizes = [sum(len(s) for s in g if s) for g in groups]
                pair = min(range(len(groups) - 1), key=lambda i: sizes[i] + sizes[i + 1])
                merged = [s for s in groups[pair] + groups[pair + 1] if s] + [None]
                groups[pair : pair + 2] = [merged]
            rebuilt = 0
            sealed = []
            for group in groups:
                if group[-1] is not None:
                    sealed.append(group[0])
                    continue
                rebuilt += len(group) - 1
                parts = [(s, np.flatnonzero(~s.dead)) for s in group[:-1]]
                if sum(len(live) for _, live in parts):
                    sealed.append(
                        self._build_segment(
                            manifest,
                            np.concatenate([s.ids[live] for s, live in parts]),
                            np.concatenate([np.asarray(s.vectors[live]) for s, live in parts]),
                            np.concatenate([s.ts[live] for s, live in parts]),
                            np.concatenate([s.tags[live] for s, live in parts]),
                        )
                    )
            if rebuilt:
                self._sealed = sealed
                self._place_on_gpu()
                self._checkpoint(manifest)
                _release_memory()
            return rebuilt

    def seal(self) -> None:
        """Seal the active segment now, whatever its size (after committing)."""
        with self._lock:
            self.commit()
            if len(self._active):
                self._seal()

    def close(self) -> None:
        with self._lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> SegmentedIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            self._maybe_reload()
            return self._live_count()

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live id and its tag, sorted by id: int64 (n,), int64 (n,)."""
        with self._lock:
            self._maybe_reload()
            ids = [self._active.ids] + [s.ids[~s.dead] for s in self._sealed]
            tags = [self._active.tags] + [s.tags[~s.dead] for s in self._sealed]
            ids, tags = np.concatenate(ids), np.concatenate(tags)
            order = np.argsort(ids, kind="stable")
            return ids[order], tags[order]

    def _live_count(self) -> int:
        return len(self._active) + sum(len(s) for s in self._sealed)

    @property
    def generation(self) -> int:
        return self._manifest.get("generation", 0)

    def stats(self) -> dict:
        """Figures for the ops page: vectors, segments, tombstones, log size."""
        with self._lock:
            self._maybe_reload()
            return {
                "generation": self.generation,
                "vectors": self._live_count(),
                "active_vectors": len(self._active),
                "sealed_segments": len(self._sealed),
                "tombstones": sum(s.n_dead for s in self._sealed),
                "log_files": len(self._manifest.get("log", [])),
                "uncommitted": sum(len(op[0]) for op in self._pending),
                "segments": [
                    {k: s.meta[k] for k in ("name", "factory", "count", "min_ts", "max_ts")}
                    | {"tombstones": s.n_dead}
                    for s in self._sealed
                ],
            }

    def search(
        self,
        queries: Any,
        k: int,
        since: int | None = None,
        until: int | None = None,
        allow_ids: Iterable[int] | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top k live vectors by inner product per query: float32 (m, k), int64 (m, k).

        -1 ids (and -inf scores) pad a row only when fewer than k live vectors match.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k: expected a positive int, got {k!r}")
        k = int(k)
        queries = _as_vectors(queries, self.dim, "queries")
        since, until = _as_time(since, "since"), _as_time(until, "until")
        allow = None
        if allow_ids is not None:
            if not isinstance(allow_ids, np.ndarray):
                allow_ids = np.fromiter(allow_ids, dtype=np.int64)
            allow = np.unique(_as_ids(allow_ids, "allow_ids"))
        m = len(queries)
        with self._lock:
            self._maybe_reload()
            parts = []
            if allow is not None and not len(allow):
                pass
            elif since is None or until is None or since < until:
                for segment in self._sealed:
                    if (since is not None and segment.max_ts < since) or (
                        until is not None and segment.min_ts >= until
                    ):
                        continue
                    found = segment.search(
                        queries, k, segment.match_mask(since, until, allow), self.config
                    )
                    if found is not None:
                        parts.append(found)
                found = self._active.search(queries, k, since, until, allow)
                if found is not None:
                    parts.append(found)
        if not parts:
            return np.full((m, k), -np.inf, np.float32), np.full((m, k), -1, np.int64)
        if len(parts) == 1 and parts[0][1].shape[1] == k:  # one segment: already ranked
            scores, ids = parts[0]
            return np.where(ids < 0, -np.inf, scores).astype(np.float32), ids.astype(np.int64)
        scores = np.hstack([p[0] for p in parts]).astype(np.float32)
        ids = np.hstack([p[1] for p in parts]).astype(np.int64)
        return _top_k(scores, ids, k)

    # -- GPU -------------------------------------------------------------------------------

    def _place_on_gpu(self) -> None:
        if not self.config.use_gpu or not hasattr(faiss, "StandardGpuResources"):
            return
        if faiss.get_num_gpus() < 1:
            return
        if self._gpu is None:
            self._gpu = faiss.StandardGpuResources()
        for segment in self._sealed:
            inner = faiss.downcast_index(segment.index)
            if isinstance(inner, faiss.IndexHNSW) or getattr(segment, "on_gpu", False):
                continue
            try:
                segment.index = faiss.index_cpu_to_gpu(self._gpu, 0, segment.index)
                segment.on_gpu = True
            except RuntimeError as exc:  # not every index type has a GPU version
                logger.info("segment %s stays on the CPU: %s", segment.name, exc)
