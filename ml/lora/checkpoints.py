"""A LoRA run on disk: checkpoints to resume from, and the finished adapter.

    from ml.lora.checkpoints import complete_checkpoints, load_checkpoint, save_checkpoint

    complete_checkpoints(output / "checkpoints")   # [(step, path)], oldest first
    save_checkpoint(folder, step, model, optimizer, scheduler, state, keep=2)
    state = load_checkpoint(path, model, optimizer, scheduler, "cpu")

A checkpoint is ``step-NNNNNN/``: adapter weights, optimizer, scheduler and RNG states,
and ``trainer_state.json`` (data position, loss history, the run's fingerprint), written
last, so its presence marks a complete checkpoint. Checkpoints and the adapter folder are
written to a temporary folder and renamed, so a reader never sees half of one; the newest
``keep`` checkpoints stay. A run resumes only a checkpoint with its own fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml.lora.config import Example, LoraSettings, TrainConfig

__all__ = [
    "complete_checkpoints",
    "fingerprint",
    "folder_bytes",
    "load_checkpoint",
    "refuse_another_run",
    "save_adapter",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^step-(\d+)$")
_STATE_FILE = "trainer_state.json"  # written last: its presence marks a complete checkpoint
_TENSORS_FILE = "trainer_state.pt"  # optimizer, scheduler and RNG states


def fingerprint(config: TrainConfig, lora: LoraSettings, examples: list[Example]) -> str:
    """What a checkpoint must agree on to be resumed: everything but the (run) fields."""
    run_fields = {
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "eval_batch_size",
        "precision",
        "device",
        "cache_dir",
        "threads",
    }
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(config).items() if k not in run_fields}
    digest.update(json.dumps([settings, asdict(lora)], sort_keys=True).encode())
    for example in examples:
        digest.update(json.dumps([example.prompt, example.completion]).encode())
    return digest.hexdigest()


def complete_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints whose state file was written, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match and (path / _STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(
    folder: Path, step: int, model: Any, optimizer: Any, scheduler: Any, state: dict, keep: int
) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step-{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=folder))
    try:
        model.save_pretrained(tmp)  # adapter_config.json + adapter_model.safetensors
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
            tmp / _TENSORS_FILE,
        )
        (tmp / _STATE_FILE).write_text(json.dumps(state))
        if target.exists():  # a checkpoint of the same step from an earlier attempt
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in complete_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".step-*"):  # temporaries of a process that died mid-write
        if stale != tmp:
            shutil.rmtree(stale, ignore_errors=True)
    logger.info("checkpoint %s", target)
    return target


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, device: str) -> dict:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(path / "adapter_model.safetensors", device=device)
    set_peft_model_state_dict(model, weights)
    tensors = torch.load(path / _TENSORS_FILE, map_location=device, weights_only=True)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    torch.set_rng_state(tensors["rng"]["torch"].cpu())
    if "cuda" in tensors["rng"] and device.startswith("cuda"):
        torch.cuda.set_rng_state_all([state.cpu() for state in tensors["rng"]["cuda"]])
    return json.loads((path / _STATE_FILE).read_text())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def refuse_another_run(found: list[tuple[int, Path]], fingerprint: str, output: Path) -> None:
    """Raise ValueError when the newest of `found` (complete_checkpoints) was written by a
    run with another fingerprint: the caller checks before spending time on a model load."""
    if not found:
        return
    saved = json.loads((found[-1][1] / _STATE_FILE).read_text())
    if saved.get("fingerprint") != fingerprint:
        raise ValueError(
            f"output_dir={str(output)!r} holds checkpoints of another run (base model, "
            "LoRA settings, training settings or examples differ); use a new output_dir "
            "or delete its checkpoints/ folder"
        )


def save_adapter(model: Any, adapter_dir: Path) -> None:
    """Write the PEFT adapter folder by rename, so a reader never sees half of one."""
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=adapter_dir.parent))
    try:
        model.save_pretrained(tmp)
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        os.replace(tmp, adapter_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
