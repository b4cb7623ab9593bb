"""The index generations as one process sees them: the live one, encoders, and (for the
`faiss` search backend) folders, readers, the writer.

Every backend reads the live generation (of the configured backend) and its encoder from
here. A `faiss` generation lives in `PLAZA_DATA_DIR/index/<name>/`: `vectors/` (an ml.index
SegmentedIndex) and `bm25/` (ml.bm25 builds, one folder per build, `current.json`
naming the newest). The database says which generation is live (`IndexGeneration`).

Every process opens what it needs once and keeps it: readers (web, workers) reload when
a generation's files change; the one writer (the index worker) keeps the vector index
open with its lock. Encoders load lazily, once per process and model, never in a
forking parent (ml.embeddings drops them after a fork).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Max

from ml.bm25 import BM25Index, FreshDocs, tokenize
from ml.embeddings import Encoder, EncoderConfig, get_encoder
from ml.index import IndexConfig, SegmentedIndex
from ml.registry import model_languages
from posts.models import Post
from search.models import IndexGeneration

logger = logging.getLogger(__name__)

_lock = threading.RLock()
_live: tuple[float, IndexGeneration | None] = (0.0, None)
_readers: dict[str, GenerationReader] = {}
_writer: tuple[str, SegmentedIndex] | None = None
_builders: dict[str, SegmentedIndex] = {}  # generations being filled by a rebuild
LIVE_CACHE_S = 1.0  # how long a process trusts its idea of the live generation
# Posts changed this long before a BM25 build began are checked too: a transaction that
# was open while the build read the table may have committed after it. (One open longer is
# caught by the next build, which its own flush asks for.)
FRESH_MARGIN = timedelta(seconds=5)
FRESH_MAX = 5_000  # newest changed posts searched beside a build (a rebuild is due long before)


def index_root() -> Path:
    return Path(settings.DATA_DIR) / "index"


def generation_folder(name: str) -> Path:
    return index_root() / name


def index_config() -> IndexConfig:
    return IndexConfig(
        factory=settings.PLAZA_INDEX_FACTORY, seal_size=settings.PLAZA_INDEX_SEAL_SIZE
    )


def encoder_for(model: str) -> Encoder:
    return get_encoder(EncoderConfig(model=model, device=settings.PLAZA_DEVICE))


def encoder_languages(model: str) -> tuple[str, ...] | None:
    """The languages the encoder was trained on (setting, else its model card); None = any."""
    configured = settings.PLAZA_EMBED_LANGUAGES
    if configured is not None:
        return configured or None
    return model_languages(model)


def live_generation(*, fresh: bool = False) -> IndexGeneration | None:
    """The live generation, re-read from the database at most once a second."""
    global _live
    checked, generation = _live
    if fresh or time.monotonic() - checked > LIVE_CACHE_S:
        generation = (
            IndexGeneration.objects.served().filter(state=IndexGeneration.State.LIVE).first()
        )
        _live = (time.monotonic(), generation)
    return generation


def forget_live() -> None:
    """Drop the cached live generation (after a swap in this process, and in tests)."""
    global _live
    _live = (0.0, None)


class GenerationReader:
    """Read access to one generation: its vector index, its newest BM25 build, its encoder."""

    def __init__(self, generation: IndexGeneration):
        self.name = generation.name
        self.model = generation.embed_model
        self.folder = generation_folder(generation.name)
        self.index = SegmentedIndex.open(
            self.folder / "vectors", generation.dim, config=index_config(), readonly=True
        )
        self._bm25: BM25Index | None = None
        self._bm25_version: str | None = None
        self._bm25_built_from: datetime | None = None
        self._bm25_lock = threading.Lock()
        self._fresh: tuple[tuple, FreshDocs | None] = ((), None)  # (stamp, docs)

    @property
    def encoder(self) -> Encoder:
        return encoder_for(self.model)

    @property
    def languages(self) -> tuple[str, ...] | None:
        return encoder_languages(self.model)

    @property
    def bm25(self) -> BM25Index | None:
        """The newest BM25 build of this generation (None before the first)."""
        current = bm25_current(self.folder)
        version = current["version"] if current else None
        if version != self._bm25_version:
            with self._bm25_lock:
                if version != self._bm25_version:
                    try:
                        self._bm25 = BM25Index.load(self.folder / "bm25" / version)
                        self._bm25_version = version
                        built_from = current.get("built_from")  # absent: no fresh posts known
                        self._bm25_built_from = built_from and datetime.fromisoformat(built_from)
                    except FileNotFoundError:  # replaced under us: keep the previous one
                        logger.info("bm25 build %s vanished while loading", version)
        return self._bm25

    def bm25_fresh(self) -> FreshDocs | None:
        """The posts changed since the BM25 build began: the visible ones to search beside
        it, all of them to mask in it (ml.bm25.FreshDocs). None before the first build."""
        bm25 = self.bm25
        if bm25 is None or self._bm25_built_from is None:
            return None
        changed = Post.objects.filter(updated_at__gte=self._bm25_built_from - FRESH_MARGIN)
        # One cheap aggregate (the updated_at index) says whether anything changed since
        # the last call; the fresh documents are rebuilt only then.
        figures = changed.aggregate(n=Count("id"), last=Max("updated_at"))
        stamp = (self._bm25_version, figures["n"], figures["last"])
        if stamp == self._fresh[0]:
            return self._fresh[1]
        rows = list(
            changed.order_by("-updated_at").values_list(
                "id", "text", "created_at", "is_hidden", "deleted_at", "content_hash"
            )[:FRESH_MAX]
        )
        in_build = bm25.tags_of([row[0] for row in rows])
        fresh, replaced = [], []
        for pk, text, created_at, is_hidden, deleted_at, content_hash in rows:
            ts = int(created_at.timestamp())
            visible = not is_hidden and deleted_at is None
            if visible and in_build.get(pk) == tag_of(content_hash, ts):
                continue  # the build has this very text
            if pk in in_build:
                replaced.append(pk)
            if visible:
                fresh.append((pk, tokenize(text) or ["\x00"], ts))
        docs = FreshDocs(
            [pk for pk, _, _ in fresh],
            [tokens for _, tokens, _ in fresh],
            [ts for _, _, ts in fresh],
            replaced=replaced,
        )
        self._fresh = (stamp, docs)
        return docs


def reader_for(generation: IndexGeneration) -> GenerationReader:
    with _lock:
        reader = _readers.get(generation.name)
        if reader is None:
            # A new live generation: forget older ones (requests still using them keep
            # their own reference until they finish).
            _readers.clear()
            reader = _readers[generation.name] = GenerationReader(generation)
        return reader


def writer_for(generation: IndexGeneration) -> SegmentedIndex:
    """This process's writable handle on the generation's vectors (takes the writer lock
    at the first write; a second process gets ml.index.IndexLockedError)."""
    global _writer
    with _lock:
        if _writer is not None and _writer[0] == generation.name:
            return _writer[1]
        if _writer is not None:
            _writer[1].close()
        index = SegmentedIndex.open(
            generation_folder(generation.name) / "vectors", generation.dim, config=index_config()
        )
        _writer = (generation.name, index)
        return index


def builder_for(generation: IndexGeneration) -> SegmentedIndex:
    """This process's writable handle on a generation being built (the rebuild's writer)."""
    with _lock:
        index = _builders.get(generation.name)
        if index is None:
            folder = generation_folder(generation.name) / "vectors"
            index = SegmentedIndex.open(folder, generation.dim, config=index_config())
            _builders[generation.name] = index
        return index


def builder_close(generation: IndexGeneration) -> None:
    with _lock:
        index = _builders.pop(generation.name, None)
    if index is not None:
        index.close()


def holds_writer(name: str) -> bool:
    """Whether this process has the generation's vectors open for writing."""
    return _writer is not None and _writer[0] == name


def configured_model() -> str:
    return settings.PLAZA_EMBED_MODEL


def close_all() -> None:
    """Close every handle this process holds (tests, and before a folder is removed)."""
    global _writer
    with _lock:
        if _writer is not None:
            _writer[1].close()
            _writer = None
        for reader in _readers.values():
            reader.index.close()
        _readers.clear()
        for index in _builders.values():
            index.close()
        _builders.clear()
    forget_live()


# --- BM25 builds on disk -------------------------------------------------------------------


def bm25_current(folder: Path) -> dict | None:
    """{"version", "docs", "built_from"} of the newest BM25 build, or None."""
    try:
        current = json.loads((folder / "bm25" / "current.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return current if "version" in current else None


def bm25_publish(folder: Path, bm25: BM25Index, *, built_from: datetime) -> str:
    """Write a new BM25 build beside the others and point current.json at it atomically;
    keep the previous build (a reader may be loading it), remove older ones."""
    root = folder / "bm25"
    root.mkdir(parents=True, exist_ok=True)
    version = f"v{time.time_ns()}"
    bm25.save(root / version)
    tmp = root / "current.json.tmp"
    current = {"version": version, "docs": len(bm25), "built_from": built_from.isoformat()}
    tmp.write_text(json.dumps(current))
    tmp.replace(root / "current.json")
    builds = sorted(p.name for p in root.iterdir() if p.is_dir())
    for old in builds[:-2]:
        shutil.rmtree(root / old, ignore_errors=True)
    return version


def tag_of(content_hash: str, created_at_ts: int) -> int:
    """The index tag of a post: 64 bits of its content hash, mixed with its timestamp, as a
    signed int64. A post whose text, language or time changed gets a new tag."""
    value = int(content_hash[:16], 16) ^ (int(created_at_ts) * 0x9E3779B97F4A7C15)
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= (1 << 63) else value
