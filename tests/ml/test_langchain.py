"""ml.langchain: PlazaChatModel over the bundled SmolLM2 (llama.cpp) gives what ml.generation
gives, piece by piece; PlazaVectorStore and PlazaRetriever pass langchain-tests' standard suites."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from ml.generation import GeneratorConfig, SamplingParams, get_generator
from ml.langchain import PlazaChatModel, PlazaRetriever, PlazaVectorStore

MESSAGES = [
    SystemMessage("You answer in one sentence."),
    HumanMessage("What is the capital of France? Answer in one sentence."),
]
PLAIN = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "What is the capital of France? Answer in one sentence."},
]


@pytest.fixture(scope="module")
def chat():
    return PlazaChatModel(generator=GeneratorConfig(device="cpu"), max_tokens=40)


@pytest.mark.integration
def test_invoke_returns_the_generators_answer_with_usage(chat):
    """invoke gives the same greedy text as ml.generation, with token usage."""
    expected = get_generator(GeneratorConfig(device="cpu")).complete(
        PLAIN, SamplingParams(max_tokens=40)
    )
    message = chat.invoke(MESSAGES)
    assert isinstance(message, AIMessage) and message.content == expected.text
    assert message.usage_metadata["output_tokens"] == expected.completion_tokens
    assert message.response_metadata["finish_reason"] == expected.finish_reason


@pytest.mark.integration
def test_stream_yields_pieces_that_add_up_to_the_answer(chat):
    """stream yields several chunks as they decode; joined they are invoke's answer, and the
    last carries the usage."""
    chunks = list(chat.stream(MESSAGES))
    assert len(chunks) > 3
    assert "".join(chunk.content for chunk in chunks) == chat.invoke(MESSAGES).content
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.usage_metadata["output_tokens"] > 0


@pytest.mark.integration
def test_stop_and_budget_pass_through(chat):
    """A stop string and max_tokens given at call time apply."""
    full = chat.invoke(MESSAGES).content
    assert "Paris" in full
    assert chat.invoke(MESSAGES, stop=["Paris"]).content == full[: full.index("Paris")]
    short = chat.invoke(MESSAGES, max_tokens=3)
    assert short.response_metadata["finish_reason"] == "length"


@pytest.mark.integration
def test_unsupported_messages_are_named(chat):
    """A message type the chat template cannot hold is refused with its position."""
    with pytest.raises(ValueError, match=r"messages\[1\]: ToolMessage"):
        chat.invoke([HumanMessage("hi"), ToolMessage("x", tool_call_id="1")])


# --- the standard suites of langchain-tests ------------------------------------------------


class TestPlazaVectorStore(VectorStoreIntegrationTests):
    """langchain-tests' VectorStoreIntegrationTests (sync and async) on PlazaVectorStore."""

    @pytest.fixture
    def vectorstore(self, tmp_path):
        return PlazaVectorStore(self.get_embeddings(), tmp_path / "store")


RETRIEVER_TEXTS = [
    "The flight to Madrid was delayed by three hours",
    "Coffee prices rise after a poor harvest in Brazil",
    "A football final ends in a penalty shootout",
    "Heavy rain floods the streets of Valencia",
    "New electric car batteries charge in ten minutes",
]


class TestPlazaRetriever(RetrieversIntegrationTests):
    """langchain-tests' RetrieversIntegrationTests on PlazaRetriever (hybrid)."""

    @pytest.fixture(autouse=True)
    def _store(self, tmp_path):
        store = PlazaVectorStore(DeterministicFakeEmbedding(size=16), tmp_path / "store")
        store.add_texts(RETRIEVER_TEXTS)
        type(self).store = store

    @property
    def retriever_constructor(self):
        return PlazaRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"store": self.store, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "flight delayed"


def test_vector_store_persists_across_reopen(tmp_path):
    """Documents, ids and vectors survive closing and reopening the folder."""
    embedding = DeterministicFakeEmbedding(size=8)
    store = PlazaVectorStore(embedding, tmp_path / "s")
    ids = store.add_texts(["alpha", "beta"], [{"n": 1}, {"n": 2}])
    store.index.close()
    again = PlazaVectorStore(embedding, tmp_path / "s")
    assert [d.page_content for d in again.get_by_ids(ids)] == ["alpha", "beta"]
    assert again.similarity_search("beta", k=1)[0].id == ids[1]
    assert again.add_texts(["gamma"])  # new int ids do not collide with the old ones
    assert len(again.index) == 3


def test_retriever_finds_by_words_and_honours_k(tmp_path):
    """The hybrid retriever puts the lexical match first (the fake embedding is random),
    and returns k documents."""
    store = PlazaVectorStore(DeterministicFakeEmbedding(size=16), tmp_path / "s")
    store.add_texts(RETRIEVER_TEXTS)
    found = PlazaRetriever(store=store, k=3).invoke("coffee harvest Brazil")
    assert len(found) == 3 and found[0].page_content.startswith("Coffee")
