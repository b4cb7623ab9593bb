"""The runtime the model modules share: device, precision, threads, backend and the
transformers loader, written once.

    from ml.runtime import (
        autocast, check_device, choose_backend, load_transformers, resolve_device,
        resolve_precision,
    )

    check_device(config.device, field="GeneratorConfig.device")  # at a config's door
    device = resolve_device("auto", field="TrainConfig.device")  # "cuda" when torch sees one
    precision = resolve_precision("auto", device)                # "bf16" where it is native
    with autocast(device, precision): ...                        # bf16 autocast, or nothing
    backend, resolved = choose_backend(setting, backend="auto", device="auto",
                                       owner="GeneratorConfig")  # llama_cpp or transformers
    model, tokenizer = load_transformers(resolved.target, resolved.is_gguf, cache_dir)

Devices are ``auto`` (CUDA when torch sees it, else the CPU), ``cpu``, ``cuda`` or
``cuda:N``; precisions ``auto``, ``fp32`` or ``bf16``; backends ``auto``, ``llama_cpp`` or
``transformers``. A config checks its fields with ``check_*`` when it is built and resolves
``auto`` with ``resolve_*`` when a model loads. CPU thread counts come from ``ml.cpus``;
``set_llama_threads`` applies one to a llama.cpp context.

Plain Python: torch, transformers and llama.cpp are imported on first use, and CUDA is
never initialised at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ml.registry import ResolvedModel, resolve_model

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "DeviceUnavailable",
    "autocast",
    "check_backend",
    "check_device",
    "check_precision",
    "choose_backend",
    "cpu_has_native_bf16",
    "gguf_cache_folder",
    "has_cuda",
    "llama_context_threads",
    "load_transformers",
    "resolve_device",
    "resolve_precision",
    "set_llama_threads",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "llama_cpp", "transformers")
PRECISIONS = ("auto", "fp32", "bf16")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class DeviceUnavailable(ValueError, RuntimeError):
    """A CUDA device was asked for and torch sees none. A ValueError (a setting that cannot
    be met here) and a RuntimeError, as the encoder raised before the runtime was shared."""


# --- checks at a config's door ------------------------------------------------------------


def check_device(device: Any, *, field: str) -> None:
    """Refuse a device setting other than auto, cpu, cuda or cuda:N, naming `field`."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ValueError(f"{field}={device!r}: expected auto, cpu, cuda or cuda:N")


def check_precision(precision: Any, *, field: str) -> None:
    """Refuse a precision setting other than auto, fp32 or bf16, naming `field`."""
    if precision not in PRECISIONS:
        raise ValueError(f"{field}={precision!r}: expected one of {', '.join(PRECISIONS)}")


def check_backend(backend: Any, *, field: str) -> None:
    """Refuse a backend setting other than auto, llama_cpp or transformers, naming `field`."""
    if backend not in BACKENDS:
        raise ValueError(f"{field}={backend!r}: expected one of {', '.join(BACKENDS)}")


# --- devices and precision ----------------------------------------------------------------


def has_cuda() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_device(device: str, *, field: str) -> str:
    """ "cpu" or "cuda[:N]" for a checked device setting: auto is CUDA when torch sees it.
    Raises DeviceUnavailable, naming `field`, for CUDA asked for where there is none."""
    if device == "auto":
        return "cuda" if has_cuda() else "cpu"
    if device.startswith("cuda") and not has_cuda():
        raise DeviceUnavailable(
            f"{field}={device!r}: torch sees no CUDA device here; use device='auto' or 'cpu'"
        )
    return device


def cpu_has_native_bf16() -> bool:
    """True when this x86 CPU runs bf16 matmuls natively (AVX512-BF16 or AMX-BF16).
    Without them oneDNN emulates bf16, several times slower than fp32."""
    import torch

    get_capabilities = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if get_capabilities is not None:
        capabilities = get_capabilities()
        return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    try:  # older torch: ask the kernel
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """ "fp32" or "bf16" for a checked precision setting on a resolved device: auto is bf16
    where the hardware runs it natively (CUDA with bf16, a CPU with AVX512-BF16/AMX), else
    fp32."""
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """torch's bf16 autocast on `device` for precision "bf16"; no context for "fp32"."""
    if precision == "bf16":
        import torch

        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --- threads ------------------------------------------------------------------------------


def llama_context_threads(llama_cpp: Any, ctx: Any) -> tuple[int, int]:
    """(decode, prompt) threads a llama.cpp context runs with now, read back from it."""
    return llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)


def set_llama_threads(llama_cpp: Any, ctx: Any, threads: int) -> bool:
    """Run a llama.cpp context's decode and prompt on `threads` threads (a count from
    ``ml.cpus.generation_threads``); True when that changed them."""
    if (threads, threads) == llama_context_threads(llama_cpp, ctx):
        return False
    llama_cpp.llama_set_n_threads(ctx, threads, threads)
    return True


# --- backends -----------------------------------------------------------------------------


def choose_backend(
    setting: str, *, backend: str, device: str, owner: str, cache_dir: str | None = None
) -> tuple[str, ResolvedModel]:
    """(backend, resolved model): "auto" is llama.cpp for a GGUF model on a CPU and
    transformers otherwise; llama.cpp asked for a model that is not GGUF is refused, named
    by `owner` (the config class)."""
    resolved = resolve_model(setting, cache_dir=cache_dir)
    if backend == "auto":
        on_cpu = device == "cpu" or (device == "auto" and not has_cuda())
        backend = "llama_cpp" if resolved.is_gguf and on_cpu else "transformers"
    if backend == "llama_cpp" and not resolved.is_gguf:
        raise ValueError(
            f"{owner}.backend='llama_cpp' needs a GGUF model; {setting!r} is not one "
            "(use backend='transformers')"
        )
    return backend, resolved


def gguf_cache_folder(cache_dir: Path, gguf: Path) -> Path:
    """Where ``load_transformers`` keeps the de-quantised copy of `gguf` under `cache_dir`
    (named by its path, size and modification time, so a rewritten file is not confused)."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir / f"{gguf.stem}-{key.hexdigest()[:12]}"


def load_transformers(target: str, is_gguf: bool, cache_dir: str | None) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder, a hub id, or a GGUF file (de-quantised once and
    cached as safetensors under cache_dir)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not is_gguf:
        return AutoModelForCausalLM.from_pretrained(target), AutoTokenizer.from_pretrained(target)
    gguf = Path(target)
    cached = gguf_cache_folder(Path(cache_dir), gguf) if cache_dir else None
    if cached is not None and (cached / "config.json").is_file():
        return AutoModelForCausalLM.from_pretrained(cached), AutoTokenizer.from_pretrained(cached)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    logger.info("de-quantised %s in %.1fs", gguf.name, time.perf_counter() - started)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))
        try:
            # The weights are plain tensors now; drop the GGUF "quantizer" that refuses to save.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            os.replace(tmp, cached)  # another process may have won: theirs is as good
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return model, tokenizer
