"""Convert a peft LoRA adapter to a GGUF LoRA that llama.cpp loads over a GGUF base model.

    from ml.gguf_lora import convert_peft_to_gguf, gguf_lora_for

    path = convert_peft_to_gguf("var/adapters/run-42/adapter", base_gguf, "run-42.gguf")
    path = gguf_lora_for("var/adapters/run-42/adapter", base_gguf, "var/models")  # cached
    Llama(model_path=base_gguf, lora_path=str(path))      # or llama_adapter_lora_init(...)

The input is a folder written by peft's ``save_pretrained`` (``adapter_config.json`` and
``adapter_model.safetensors``), trained on the transformers copy of the base model (for a
GGUF base: the copy transformers de-quantised from that very file, see ``ml.generation``).
The output is what llama.cpp's ``convert_lora_to_gguf.py`` writes: ``general.type =
adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, the base's
``general.architecture``, and for every adapted weight ``<gguf name>.lora_a`` (r x in) and
``<gguf name>.lora_b`` (out x r) in f32, the GGUF names coming from
``gguf.get_tensor_name_map`` (``model.layers.3.self_attn.q_proj`` -> ``blk.3.attn_q``).

Two details make llama.cpp compute what peft computes:

- Scaling. llama.cpp multiplies ``B @ A`` by ``alpha / r`` (r read from the tensor's
  shape) when ``adapter.lora.alpha`` is set, as peft does for a plain LoRA; the converter
  writes the adapter's ``lora_alpha`` and folds any other factor (rsLoRA's
  ``alpha / sqrt(r)``, per-module ``rank_pattern`` / ``alpha_pattern``) into B.
- Q/K row order. For llama-family GGUFs (``general.architecture = llama``, e.g.
  SmolLM2), llama.cpp's HF-to-GGUF converter permutes the rows of the Q and K weights
  within each head (``LlamaModel.permute``: the two rotary halves interleaved), and
  transformers undoes that when it loads the GGUF. A LoRA trained on the transformers
  model therefore has its ``q_proj`` / ``k_proj`` B rows in HF order; they get the same
  permutation here (n_head heads for Q, n_head_kv for K). Gemma 3 (``gemma3``) and the
  other architectures are not permuted by the converter and are left alone.

Problems (a missing file, a target module with no GGUF tensor, an adapter whose shapes do
not fit the base, DoRA or extra trained modules llama.cpp cannot apply) raise
:class:`GGUFLoraError` (a ``ValueError``) naming the file or tensor and what to do.
``gguf_lora_for`` converts once per adapter content and base file, into
``cache_dir/gguf-lora/``, writing to a temporary name and renaming.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import os
import re
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GGUFLoraError", "convert_peft_to_gguf", "gguf_lora_for", "permute_rows"]

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# GGUF architectures whose Q/K rows llama.cpp's converter permutes per head (and
# transformers un-permutes on GGUF load: its LlamaConverter tensor processor).
PERMUTED_QK_ARCHITECTURES = frozenset({"llama"})
# Bumped when the output for the same input changes: it is part of the cache key.
_FORMAT_VERSION = "1"
# peft state-dict keys: "base_model.model.<module>.lora_A.weight" (adapter name removed).
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")
# Multimodal wrappers put the text model under a prefix; llama.cpp's converter drops it.
_TEXT_PREFIXES = (("model.language_model.", "model."), ("language_model.", ""))


class GGUFLoraError(ValueError):
    """An adapter that cannot be written as a GGUF LoRA for this base; the message says why."""


@dataclass(frozen=True)
class _BaseInfo:
    """What the conversion needs to know about the base GGUF."""

    architecture: str  # general.architecture, e.g. "llama", "gemma3"
    n_blocks: int  # <arch>.block_count
    n_head: int  # <arch>.attention.head_count
    n_head_kv: int  # <arch>.attention.head_count_kv
    shapes: dict[str, tuple[int, int]]  # GGUF tensor name -> (out, in) of 2-D weights


# GGUF value types (gguf.GGUFValueType) and the byte sizes of the fixed-size ones.
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


def _read_header(path: Path) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """(scalar and string metadata, {tensor name: dims, ne0 first}) of a GGUF file.

    gguf.GGUFReader parses every array (a tokenizer's vocabulary and merges) into numpy
    objects, seconds for a 262k vocabulary; this reads the header and skips arrays."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0

        def take(fmt: str) -> Any:
            nonlocal pos
            (value,) = struct.unpack_from(fmt, data, pos)
            pos += struct.calcsize(fmt)
            return value

        def string() -> str:
            nonlocal pos
            size = take("<Q")
            pos += size
            return bytes(data[pos - size : pos]).decode("utf-8", errors="replace")

        def skip_or_read(kind: int) -> Any:
            nonlocal pos
            if kind == _GGUF_STRING:
                return string()
            if kind == _GGUF_ARRAY:
                item, count = take("<I"), take("<Q")
                if item in _GGUF_SCALARS:
                    pos += count * struct.calcsize(_GGUF_SCALARS[item])
                else:
                    for _ in range(count):
                        skip_or_read(item)
                return None
            if kind not in _GGUF_SCALARS:
                raise GGUFLoraError(f"{path}: unknown GGUF value type {kind}")
            return take(_GGUF_SCALARS[kind])

        if data[:4] != b"GGUF":
            raise GGUFLoraError(f"{path} is not a GGUF file")
        pos = 4
        if take("<I") < 2:
            raise GGUFLoraError(f"{path}: GGUF version 1 is not supported; reconvert the model")
        n_tensors, n_fields = take("<Q"), take("<Q")
        fields = {}
        for _ in range(n_fields):
            key = string()
            value = skip_or_read(take("<I"))
            if value is not None:
                fields[key] = value
        tensors = {}
        for _ in range(n_tensors):
            name = string()
            dims = tuple(take("<Q") for _ in range(take("<I")))
            pos += 4 + 8  # ggml type, data offset
            tensors[name] = dims
    return fields, tensors


def _read_base(base_gguf: Path) -> _BaseInfo:
    if not base_gguf.is_file():
        raise GGUFLoraError(f"base GGUF {base_gguf} does not exist; give the model's .gguf file")
    fields, tensors = _read_header(base_gguf)
    if fields.get("general.type") == "adapter":
        raise GGUFLoraError(f"{base_gguf} is a GGUF adapter, not a base model")

    def field(key: str, default: Any = None) -> Any:
        if key not in fields and default is None:
            raise GGUFLoraError(f"{base_gguf}: the base GGUF has no {key!r} field")
        return fields.get(key, default)

    arch = str(field("general.architecture"))
    n_head = int(field(f"{arch}.attention.head_count"))
    return _BaseInfo(
        architecture=arch,
        n_blocks=int(field(f"{arch}.block_count")),
        n_head=n_head,
        n_head_kv=int(field(f"{arch}.attention.head_count_kv", n_head)),
        shapes={name: (dims[1], dims[0]) for name, dims in tensors.items() if len(dims) == 2},
    )


def permute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute on the first axis: per head, the rows of the two
    rotary halves are interleaved. rows: (n_head * head_dim, ...)."""
    if rows.shape[0] % (2 * n_head):
        raise GGUFLoraError(
            f"cannot permute {rows.shape[0]} rows into {n_head} heads of two rotary halves"
        )
    return (
        rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def _pattern_value(pattern: dict[str, Any], module: str, default: Any) -> Any:
    """peft's rank_pattern / alpha_pattern lookup: a key matches a module name suffix."""
    for key, value in (pattern or {}).items():
        if re.fullmatch(rf"(.*\.)?{key}", module):
            return value
    return default


def _read_adapter(adapter_dir: Path) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """(adapter_config, {module name: {"A": (r, in), "B": (out, r)}}) as float32 arrays."""
    from safetensors.numpy import load_file

    if not adapter_dir.is_dir():
        raise GGUFLoraError(f"adapter folder {adapter_dir} does not exist")
    config_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise GGUFLoraError(
                f"{path} is missing: an adapter folder holds {ADAPTER_CONFIG} and "
                f"{ADAPTER_WEIGHTS}, as peft's save_pretrained(..., safe_serialization=True) "
                "writes them"
            )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise GGUFLoraError(f"{config_path}: not valid JSON ({exc})") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise GGUFLoraError(f"{config_path}: peft_type={config['peft_type']!r}; only LORA converts")
    if config.get("use_dora"):
        raise GGUFLoraError(f"{config_path}: DoRA adapters (use_dora) have no GGUF LoRA form")
    if config.get("modules_to_save"):
        raise GGUFLoraError(
            f"{config_path}: modules_to_save={config['modules_to_save']!r} trains whole modules, "
            "which a GGUF LoRA cannot carry; train without modules_to_save"
        )
    weights = load_file(str(weights_path))
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in weights.items():
        match = _LORA_KEY.match(key)
        if match is None:
            raise GGUFLoraError(
                f"{weights_path}: tensor {key!r} is not a LoRA A/B weight (a bias, an embedding "
                "or a DoRA magnitude?); only lora_A / lora_B of linear layers convert"
            )
        modules.setdefault(match["module"], {})[match["ab"]] = tensor.astype(np.float32)
    if not modules:
        raise GGUFLoraError(f"{weights_path} holds no LoRA weights")
    for module, pair in modules.items():
        if set(pair) != {"A", "B"}:
            raise GGUFLoraError(f"{weights_path}: {module} has lora_{''.join(pair)} only")
    return config, modules


def _gguf_name(module: str, name_map: Any) -> str | None:
    for prefix, replacement in _TEXT_PREFIXES:
        if module.startswith(prefix):
            module = replacement + module[len(prefix) :]
            break
    return name_map.get_name(module + ".weight", try_suffixes=(".weight",))


def _tensors(
    config: dict, modules: dict[str, dict[str, np.ndarray]], base: _BaseInfo, permute: bool
) -> list[tuple[str, np.ndarray]]:
    """The GGUF tensors, name -> array, in a stable order; shapes checked against the base."""
    import gguf

    archs = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if base.architecture not in archs:
        raise GGUFLoraError(
            f"the gguf package does not know architecture {base.architecture!r}; upgrade gguf"
        )
    # Map layers past the base's depth too, so that such a module reads as a mismatch.
    layers = [int(m) for m in re.findall(r"\.(\d+)\.", " ".join(f".{k}." for k in modules))]
    name_map = gguf.get_tensor_name_map(
        archs[base.architecture], max([base.n_blocks, *(n + 1 for n in layers)])
    )
    alpha = float(config.get("lora_alpha", 8))
    out = []
    for module in sorted(modules):
        a, b = modules[module]["A"], modules[module]["B"]  # (r, in), (out, r)
        name = _gguf_name(module, name_map)
        if name is None:
            raise GGUFLoraError(
                f"adapter module {module!r} has no GGUF tensor for architecture "
                f"{base.architecture!r}; train the adapter on the attention / MLP projections "
                "(e.g. target_modules=('q_proj', 'v_proj'))"
            )
        if name not in base.shapes:
            raise GGUFLoraError(
                f"adapter module {module!r} maps to {name!r}, which the base GGUF does not have: "
                "was the adapter trained on another base model?"
            )
        rank = a.shape[0]
        if a.ndim != 2 or b.ndim != 2 or b.shape[1] != rank:
            raise GGUFLoraError(f"adapter module {module!r}: lora_A {a.shape} and lora_B {b.shape}")
        if (b.shape[0], a.shape[1]) != base.shapes[name]:
            raise GGUFLoraError(
                f"adapter module {module!r} is {b.shape[0]}x{a.shape[1]} but the base tensor "
                f"{name!r} is {base.shapes[name][0]}x{base.shapes[name][1]}: the adapter was "
                "trained on another base model (architecture mismatch)"
            )
        # peft's scale for this module, against the alpha / r llama.cpp will apply.
        module_alpha = float(_pattern_value(config.get("alpha_pattern"), module, alpha))
        root = math.sqrt(rank) if config.get("use_rslora") else rank
        factor = (module_alpha / root) / (alpha / rank)
        if factor != 1.0:
            b = b * np.float32(factor)
        if permute and name.endswith(".attn_q.weight"):
            b = permute_rows(b, base.n_head)
        elif permute and name.endswith(".attn_k.weight"):
            b = permute_rows(b, base.n_head_kv)
        out.append((name + ".lora_a", np.ascontiguousarray(a)))
        out.append((name + ".lora_b", np.ascontiguousarray(b)))
    return out


def convert_peft_to_gguf(
    adapter_dir: str | Path,
    base_gguf: str | Path,
    out_path: str | Path,
    *,
    permute: bool | None = None,
) -> Path:
    """Write the peft adapter in adapter_dir as a GGUF LoRA for base_gguf at out_path.
    permute=None permutes the Q/K rows where the base's architecture needs it
    (PERMUTED_QK_ARCHITECTURES); True or False forces it (a test writes the wrong one).

    Raises GGUFLoraError for a missing or unconvertible adapter or a base it does not fit.
    """
    import gguf

    adapter_dir, base_gguf, out_path = Path(adapter_dir), Path(base_gguf), Path(out_path)
    started = time.perf_counter()
    config, modules = _read_adapter(adapter_dir)
    base = _read_base(base_gguf)
    if permute is None:
        permute = base.architecture in PERMUTED_QK_ARCHITECTURES
    tensors = _tensors(config, modules, base, permute)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(out_path, base.architecture)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.get("lora_alpha", 8)))
        for name, array in tensors:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    logger.info(
        "wrote GGUF LoRA %s (%d tensors, %s, Q/K %spermuted) in %.2fs",
        out_path,
        len(tensors),
        base.architecture,
        "" if permute else "not ",
        time.perf_counter() - started,
    )
    return out_path


def _cache_key(adapter_dir: Path, base_gguf: Path) -> str:
    digest = hashlib.sha256(_FORMAT_VERSION.encode())
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        path = adapter_dir / name
        if not path.is_file():
            raise GGUFLoraError(f"{path} is missing: not a peft adapter folder")
        digest.update(name.encode())
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
    if not base_gguf.is_file():
        raise GGUFLoraError(f"base GGUF {base_gguf} does not exist; give the model's .gguf file")
    stat = base_gguf.stat()  # the base's identity: Q/K permutation and shapes come from it
    digest.update(f"|{base_gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def gguf_lora_for(adapter_dir: str | Path, base_gguf: str | Path, cache_dir: str | Path) -> Path:
    """The GGUF LoRA of adapter_dir for base_gguf, converted once into cache_dir/gguf-lora/
    (keyed by the adapter files' content and the base file) and reused after."""
    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    if not adapter_dir.is_dir():
        raise GGUFLoraError(f"adapter folder {adapter_dir} does not exist")
    folder = Path(cache_dir) / "gguf-lora"
    target = folder / f"{adapter_dir.name}-{_cache_key(adapter_dir, base_gguf)}.gguf"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        convert_peft_to_gguf(adapter_dir, base_gguf, Path(tmp))
        os.replace(tmp, target)  # another process may have won: theirs is the same file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
