"""ml.langchain.PlazaChatModel over the bundled SmolLM2 (llama.cpp): LangChain's invoke and
stream give what ml.generation gives, piece by piece."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from ml.generation import GeneratorConfig, SamplingParams, get_generator
from ml.langchain import PlazaChatModel

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


def test_invoke_returns_the_generators_answer_with_usage(chat):
    """invoke gives the same greedy text as ml.generation, with token usage."""
    expected = get_generator(GeneratorConfig(device="cpu")).complete(
        PLAIN, SamplingParams(max_tokens=40)
    )
    message = chat.invoke(MESSAGES)
    assert isinstance(message, AIMessage) and message.content == expected.text
    assert message.usage_metadata["output_tokens"] == expected.completion_tokens
    assert message.response_metadata["finish_reason"] == expected.finish_reason


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


def test_stop_and_budget_pass_through(chat):
    """A stop string and max_tokens given at call time apply."""
    full = chat.invoke(MESSAGES).content
    assert "Paris" in full
    assert chat.invoke(MESSAGES, stop=["Paris"]).content == full[: full.index("Paris")]
    short = chat.invoke(MESSAGES, max_tokens=3)
    assert short.response_metadata["finish_reason"] == "length"


def test_unsupported_messages_are_named(chat):
    """A message type the chat template cannot hold is refused with its position."""
    with pytest.raises(ValueError, match=r"messages\[1\]: ToolMessage"):
        chat.invoke([HumanMessage("hi"), ToolMessage("x", tool_call_id="1")])
