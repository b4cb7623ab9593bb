"""The `faiss` backend, the embedded default: one host's index files.

Vectors in an ml.index SegmentedIndex and words in ml.bm25 builds, under
`PLAZA_DATA_DIR/index/<generation>/` (search.indexes opens them). One process writes
(the `index` worker holds the vector index's lock); every process reads. Author and
language filters become an id set read from the database, time filters the index's own
timestamps; both methods search inside them exactly.
"""

from __future__ import annotations

import shutil

import numpy as np
from django.utils import timezone

from ml.index import SegmentedIndex
from posts.models import Post
from search import indexes
from search.backends.base import Filters, Ranked, SearchBackend
from search.models import IndexGeneration


def _texts_of(ids: np.ndarray) -> dict[int, str]:
    return dict(Post.objects.filter(pk__in=ids.tolist()).values_list("id", "text"))


def vectors_of(vectors) -> np.ndarray:
    return np.asarray(vectors, np.float32)


def _ts(moment) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


class FaissBackend(SearchBackend):
    name = "faiss"

    # --- reads -------------------------------------------------------------------------------

    def _reader(self, generation: IndexGeneration) -> indexes.GenerationReader:
        return indexes.reader_for(generation)

    def _index(self, generation: IndexGeneration) -> SegmentedIndex:
        if indexes.holds_writer(generation.name):
            return indexes.writer_for(generation)
        return self._reader(generation).index

    def _allow(self, generation: IndexGeneration, filters: Filters) -> np.ndarray | None:
        """The ids the filters allow (None: any), computed once per Filters."""
        key = ("faiss-allow", generation.name)
        if key in filters.cache:
            return filters.cache[key]
        allow: np.ndarray | None = None
        if filters.author_ids is not None or filters.lang:
            posts = Post.objects.visible()
            if filters.author_ids is not None:
                posts = posts.filter(author_id__in=filters.author_ids)
            if filters.lang:
                posts = posts.filter(lang=filters.lang)
            allow = np.fromiter(posts.values_list("id", flat=True).iterator(), np.int64)
        if filters.allow_ids is not None:
            allow = filters.allow_ids if allow is None else np.intersect1d(allow, filters.allow_ids)
        if filters.deny_ids is not None and len(filters.deny_ids):
            if allow is None:
                allow, _ = self._index(generation).entries()
            allow = np.setdiff1d(allow, filters.deny_ids)
        filters.cache[key] = allow
        return allow

    def dense(self, generation, vector, *, depth, filters) -> Ranked:
        index = self._index(generation)
        if not len(index):
            return Ranked.empty()
        scores, ids = index.search(
            np.asarray(vector, np.float32).reshape(1, -1),
            depth,
            since=_ts(filters.since),
            until=_ts(filters.until),
            allow_ids=self._allow(generation, filters),
        )
        keep = ids[0] >= 0
        return Ranked(ids[0][keep], scores[0][keep])

    def lexical(self, generation, query, *, depth, filters) -> Ranked:
        reader = self._reader(generation)
        bm25 = reader.bm25
        if bm25 is None or not len(bm25):
            return Ranked.empty()
        scores, ids = bm25.search(
            query,
            depth,
            allow_ids=self._allow(generation, filters),
            since=_ts(filters.since),
            until=_ts(filters.until),
            fresh=reader.bm25_fresh(),
        )
        langs = [str(x) for x in bm25.langs[bm25.positions_of(ids)]]
        return Ranked(ids, scores, langs)

    def phrase_ids(self, generation, phrase) -> np.ndarray:
        reader = self._reader(generation)
        bm25 = reader.bm25
        if bm25 is None:
            return np.empty(0, np.int64)
        return bm25.ids_with_phrase(phrase, _texts_of, reader.bm25_fresh())

    def ids(self, generation) -> np.ndarray:
        return np.sort(self._index(generation).entries()[0])

    def size(self, generation) -> int:
        return len(self._index(generation))

    def stats(self, generation) -> dict:
        stats = self._index(generation).stats()
        bm25 = self._reader(generation).bm25
        keys = ("vectors", "sealed_segments", "active_vectors", "tombstones", "segments")
        return {
            **{key: stats[key] for key in keys},
            "lexical_docs": len(bm25) if bm25 is not None else 0,
        }

    # --- writes (the index worker: it holds the writer lock) ----------------------------------

    def upsert(self, generation, rows, vectors) -> None:
        ids, ts, tags = self._columns(rows)
        self._writer(generation).upsert(ids, vectors_of(vectors), ts, tags)

    @staticmethod
    def _columns(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(rows)
        ids = np.fromiter((r["id"] for r in rows), np.int64, n)
        ts = np.fromiter((int(r["created_at"].timestamp()) for r in rows), np.int64, n)
        tags = np.fromiter(
            (indexes.tag_of(r["content_hash"], int(r["created_at"].timestamp())) for r in rows),
            np.int64,
            n,
        )
        return ids, ts, tags

    def _writer(self, generation: IndexGeneration) -> SegmentedIndex:
        if generation.state == IndexGeneration.State.BUILDING:
            return indexes.builder_for(generation)
        return indexes.writer_for(generation)

    def build_write(self, generation, number, rows, vectors) -> None:
        """A chunk's vectors wait beside the generation for the one writer (the finish)."""
        folder = indexes.generation_folder(generation.name) / "chunks"
        folder.mkdir(parents=True, exist_ok=True)
        ids, ts, tags = self._columns(rows)
        tmp = folder / f"{number:06d}.tmp.npz"
        np.savez(tmp, ids=ids, ts=ts, tags=tags, vectors=vectors_of(vectors))
        tmp.replace(folder / f"{number:06d}.npz")

    def delete(self, generation, ids) -> None:
        self._writer(generation).delete(ids)

    def commit(self, generation) -> None:
        self._writer(generation).commit()

    def after_writes(self, generation, *, last) -> None:
        from search.services.bm25 import bm25_refresh_request

        # A long flush keeps BM25 fresh between batches; the last one schedules a refresh.
        bm25_refresh_request(generation=generation, schedule=last)

    # --- generations -------------------------------------------------------------------------

    def generation_create(self, generation, *, bulk=False) -> None:
        folder = indexes.generation_folder(generation.name)
        SegmentedIndex.open(
            folder / "vectors", generation.dim, config=indexes.index_config()
        ).close()

    def generation_finish(self, generation) -> None:
        from search.services.bm25 import bm25_build

        folder = indexes.generation_folder(generation.name)
        index = indexes.builder_for(generation)
        for part in sorted((folder / "chunks").glob("[0-9]*[0-9].npz")):
            with np.load(part) as chunk:
                index.upsert(chunk["ids"], chunk["vectors"], chunk["ts"], chunk["tags"])
            index.commit()
        indexes.builder_close(generation)
        shutil.rmtree(folder / "chunks", ignore_errors=True)
        started_at = timezone.now()
        indexes.bm25_publish(
            indexes.generation_folder(generation.name), bm25_build(), built_from=started_at
        )

    def generation_drop(self, generation) -> None:
        indexes.builder_close(generation)
        shutil.rmtree(indexes.generation_folder(generation.name), ignore_errors=True)

    def generation_exists(self, generation) -> bool:
        return indexes.generation_folder(generation.name).exists()

    def diff(self, generation):
        indexed_ids, indexed_tags = self._index(generation).entries()
        rows = Post.objects.visible().order_by("id").values_list("id", "content_hash", "created_at")
        db_ids, db_tags = [], []
        for pk, content_hash, created_at in rows.iterator(chunk_size=10000):
            db_ids.append(pk)
            db_tags.append(indexes.tag_of(content_hash, int(created_at.timestamp())))
        db_ids_arr, db_tags_arr = np.asarray(db_ids, np.int64), np.asarray(db_tags, np.int64)
        missing = np.setdiff1d(db_ids_arr, indexed_ids).tolist()
        removed = np.setdiff1d(indexed_ids, db_ids_arr).tolist()
        both, in_db, in_index = np.intersect1d(db_ids_arr, indexed_ids, return_indices=True)
        stale = both[db_tags_arr[in_db] != indexed_tags[in_index]].tolist()
        return missing, stale, removed

    def compact(self, generation) -> int:
        return indexes.writer_for(generation).compact()
