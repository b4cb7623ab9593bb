"""LangChain glue over Plaza's ml modules: a chat model, a vector store, a retriever.

    from ml.langchain import PlazaChatModel, PlazaRetriever, PlazaVectorStore

    chat = PlazaChatModel(generator=GeneratorConfig(), max_tokens=256)
    chat.invoke([SystemMessage("..."), HumanMessage("...")])      # AIMessage
    for chunk in chat.stream("Hola"):                             # AIMessageChunk per piece
        print(chunk.content, end="")

`PlazaChatModel` is a LangChain chat model over `ml.generation`: real token-by-token
streaming (`_stream` yields each piece as the backend decodes it), the model's own chat
template, stop strings, the token budget, and usage metadata (input and output tokens).
The model loads once per process (`ml.generation.get_generator`).

`PlazaVectorStore` keeps LangChain documents in an `ml.index.SegmentedIndex` (crash-safe,
segmented, filtered search); `PlazaRetriever` ranks them by dense + BM25 with ml.hybrid's
fusion. Both pass langchain-tests' standard suites (tests/ml/test_langchain.py).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field, PrivateAttr

from ml.bm25 import BM25Index
from ml.generation import GeneratorConfig, SamplingParams, get_generator
from ml.hybrid import hybrid_search
from ml.index import IndexConfig, SegmentedIndex

_ROLE = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}


def _as_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    converted = []
    for i, message in enumerate(messages):
        role = next((r for cls, r in _ROLE.items() if isinstance(message, cls)), None)
        if role is None:
            raise ValueError(
                f"messages[{i}]: {type(message).__name__} is not supported; "
                "use system, human or AI messages"
            )
        converted.append({"role": role, "content": message.text})
    return converted


class PlazaChatModel(BaseChatModel):
    """A chat model over ml.generation (llama.cpp on CPUs, transformers on GPUs)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None

    @property
    def _llm_type(self) -> str:
        return "plaza"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.generator.model,
            "backend": self.generator.backend,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def _params(self, stop: list[str] | None, kwargs: dict) -> SamplingParams:
        stops = tuple(stop or kwargs.get("stop") or self.stop or ())
        return SamplingParams(
            max_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
            temperature=float(kwargs.get("temperature", self.temperature)),
            top_p=float(kwargs.get("top_p", self.top_p)),
            seed=kwargs.get("seed", self.seed),
            stop=stops,
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        generator = get_generator(self.generator)
        for piece in generator.stream(_as_messages(messages), self._params(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        prompt_tokens, answer_tokens, finish = generator.last_usage
        usage = UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=answer_tokens,
            total_tokens=prompt_tokens + answer_tokens,
        )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=usage,
                response_metadata={
                    "finish_reason": finish,
                    "model_name": self.generator.model,
                },
                chunk_position="last",
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        generator = get_generator(self.generator)
        done = generator.complete(_as_messages(messages), self._params(stop, kwargs))
        message = AIMessage(
            content=done.text,
            usage_metadata=UsageMetadata(
                input_tokens=done.prompt_tokens,
                output_tokens=done.completion_tokens,
                total_tokens=done.prompt_tokens + done.completion_tokens,
            ),
            response_metadata={"finish_reason": done.finish_reason, "model_name": done.model},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


# --- vector store and retriever -----------------------------------------------------------


class PlazaVectorStore(VectorStore):
    """A LangChain vector store on Plaza's SegmentedIndex (cosine similarity).

        store = PlazaVectorStore(embedding, "var/lc-store")
        ids = store.add_documents([Document("hola")])          # string ids, uuid4 by default
        store.similarity_search("hola", k=4)                   # Documents with their ids
        store.get_by_ids(ids); store.delete(ids)

    Documents (text, metadata) are kept in `documents.json` beside the index, written
    atomically after each change; their string ids map to the index's int64 ids.
    """

    def __init__(
        self,
        embedding: Embeddings,
        path: str | os.PathLike,
        *,
        config: IndexConfig | None = None,
    ):
        self.embedding = embedding
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        dim = len(embedding.embed_query("dimension probe"))
        self.index = SegmentedIndex.open(self.path / "vectors", dim, config=config)
        self._lock = threading.RLock()
        self._docs: dict[str, dict] = {}  # id -> {"n": int id, "text": ..., "metadata": ...}
        saved = self.path / "documents.json"
        if saved.is_file():
            self._docs = json.loads(saved.read_text())
        self._by_n = {entry["n"]: doc_id for doc_id, entry in self._docs.items()}
        self.version = 0  # bumped by every change: keys derived caches (the retriever's BM25)
        self._next_n = max(self._by_n, default=0) + 1

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    def _save(self) -> None:
        tmp = self.path / "documents.json.tmp"
        tmp.write_text(json.dumps(self._docs))
        tmp.replace(self.path / "documents.json")

    @staticmethod
    def _unit(vectors: list[list[float]]) -> np.ndarray:
        array = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)  # (n, d)
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return array / np.where(norms == 0, 1, norms)

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"metadatas: {len(metadatas)} given for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"ids: {len(ids)} given for {len(texts)} texts")
        ids = [str(i) if i is not None else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        if not texts:
            return []
        vectors = self._unit(self.embedding.embed_documents(texts))
        with self._lock:
            numbers = []
            for doc_id, text, metadata in zip(
                ids, texts, metadatas or [{}] * len(texts), strict=True
            ):
                entry = self._docs.get(doc_id)
                n = entry["n"] if entry else self._next_n
                if not entry:
                    self._next_n += 1
                self._docs[doc_id] = {"n": n, "text": text, "metadata": dict(metadata)}
                self._by_n[n] = doc_id
                numbers.append(n)
            self.index.upsert(
                np.asarray(numbers, np.int64), vectors, np.zeros(len(numbers), np.int64)
            )
            self.index.commit()
            self._save()
            self.version += 1
        return ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        if "ids" not in kwargs:
            ids = [doc.id for doc in documents]
            if any(ids):
                kwargs["ids"] = ids
        return self.add_texts(
            [doc.page_content for doc in documents],
            [doc.metadata for doc in documents],
            **kwargs,
        )

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (unknown ids are ignored); None deletes nothing."""
        if not ids:
            return None
        with self._lock:
            gone = [self._docs.pop(doc_id) for doc_id in ids if doc_id in self._docs]
            for entry in gone:
                self._by_n.pop(entry["n"], None)
            if gone:
                self.index.delete(np.asarray([entry["n"] for entry in gone], np.int64))
                self.index.commit()
                self._save()
                self.version += 1
        return True

    def _document(self, doc_id: str) -> Document:
        entry = self._docs[doc_id]
        return Document(page_content=entry["text"], metadata=dict(entry["metadata"]), id=doc_id)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        with self._lock:
            return [self._document(doc_id) for doc_id in ids if doc_id in self._docs]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if k < 1 or not len(self.index):
            return []
        scores, numbers = self.index.search(self._unit([embedding]), int(k))
        with self._lock:
            return [
                (self._document(self._by_n[int(n)]), float(score))
                for score, n in zip(scores[0], numbers[0], strict=True)
                if n >= 0 and int(n) in self._by_n
            ]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(
            self.embedding.embed_query(query), k, **kwargs
        )

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def _select_relevance_score_fn(self):
        return lambda score: (score + 1.0) / 2.0  # cosine in [-1, 1] -> [0, 1]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> PlazaVectorStore:
        if path is None:
            raise ValueError("path: PlazaVectorStore.from_texts needs a folder for the index")
        store = cls(embedding, path)
        store.add_texts(texts, metadatas, ids=ids)
        return store


class PlazaRetriever(BaseRetriever):
    """A LangChain retriever over a PlazaVectorStore: hybrid (dense + BM25 over the stored
    documents, fused as in ml.hybrid) or dense only; `k` per retriever or per call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: PlazaVectorStore
    k: int = 4
    hybrid: bool = True
    _bm25: tuple[int, BM25Index] | None = PrivateAttr(default=None)  # (store version, index)

    def _bm25_index(self) -> BM25Index:
        """BM25 over the store's documents, rebuilt only when the store has changed."""
        store = self.store
        with store._lock:
            if self._bm25 is None or self._bm25[0] != store.version:
                entries = sorted(store._docs.values(), key=lambda entry: entry["n"])
                bm25 = BM25Index.build(
                    [entry["n"] for entry in entries], [entry["text"] for entry in entries]
                )
                self._bm25 = (store.version, bm25)
            return self._bm25[1]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        if not self.hybrid:
            return self.store.similarity_search(query, k=k)
        store = self.store
        if not store._docs:
            return []
        bm25 = self._bm25_index()
        depth = max(k, 50)
        ranked = hybrid_search(
            query,
            index=store.index,
            bm25=bm25,
            encode=lambda texts: store._unit([store.embedding.embed_query(t) for t in texts]),
            encoder_languages=None,
            depth=depth,
        )
        found = []
        for fused in ranked.fused[:k]:
            doc_id = store._by_n.get(fused.id)
            if doc_id is not None and doc_id in store._docs:
                found.append(store._document(doc_id))
        return found
