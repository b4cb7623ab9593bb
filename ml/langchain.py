"""LangChain glue over Plaza's ml modules.

    from ml.langchain import PlazaChatModel

    chat = PlazaChatModel(generator=GeneratorConfig(), max_tokens=256)
    chat.invoke([SystemMessage("..."), HumanMessage("...")])      # AIMessage
    for chunk in chat.stream("Hola"):                             # AIMessageChunk per piece
        print(chunk.content, end="")

`PlazaChatModel` is a LangChain chat model over `ml.generation`: real token-by-token
streaming (`_stream` yields each piece as the backend decodes it), the model's own chat
template, stop strings, the token budget, and usage metadata (input and output tokens).
The model loads once per process (`ml.generation.get_generator`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
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
from pydantic import ConfigDict, Field

from ml.generation import GeneratorConfig, SamplingParams, get_generator

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
