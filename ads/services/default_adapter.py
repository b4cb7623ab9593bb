"""The default adapter Plaza ships: a small global LoRA adapter trained on Plaza's own
English and Spanish demo set (ads/demo/adapter_set.csv: briefs with headlines and posts),
so a fresh install drafts like a trained one.

    default_adapter_install()        # after migrate: the `plaza-default` row, active
    default_adapter_build(steps=..)  # manage.py build_default_adapter: train it again
    shipped_folder("shipped:default")  # the folder an Adapter row's path points at

The files live in ads/default_adapter/ (PEFT's adapter_config.json and
adapter_model.safetensors) with `plaza.json`: the base model, the dataset's snapshot
hash, the tasks it learned, the training parameters and its eval loss. The row is made
once per database, active unless another global adapter is; an advertiser's or
industry's adapter still wins (ads.selectors.adapter_for_campaign), and staff may retire
it like any other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from ads.datasets import DEFAULT_SET_CSV, Dataset, dataset_from_csv
from ml.gguf_lora import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from ml.lora import LoraSettings, TrainConfig, TrainProgress, train

logger = logging.getLogger(__name__)

DEFAULT_ADAPTER_NAME = "plaza-default"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "default_adapter"
SHIPPED_PATH = "shipped:default"  # Adapter.path of the shipped adapter's row
MANIFEST = "plaza.json"
# How the shipped adapter is trained (build_default_adapter's defaults).
BUILD = {
    "steps": 300,
    "batch_size": 8,
    "learning_rate": 3e-4,
    "warmup_steps": 12,
    "max_length": 224,
    "seed": 0,
}
BUILD_LORA = {"r": 8, "alpha": 16, "dropout": 0.05}


def shipped_folder(path: str) -> Path | None:
    """The shipped adapter's folder for an Adapter row's path, None for any other path."""
    return SHIPPED_DIR if path == SHIPPED_PATH else None


def default_manifest() -> dict | None:
    """The shipped adapter's manifest, or None when the files are not all there."""
    files = [SHIPPED_DIR / name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, MANIFEST)]
    if not all(path.is_file() for path in files):
        return None
    return json.loads((SHIPPED_DIR / MANIFEST).read_text(encoding="utf-8"))


def examples_hash(dataset: Dataset) -> str:
    """Names the exact examples an adapter learns (the rows and the prompts around them):
    the shipped adapter is stale when the demo set's hash is not its manifest's."""
    digest = hashlib.sha256()
    for example in [*dataset.train_examples(), *dataset.eval_examples()]:
        digest.update(f"{example.prompt}\t{example.completion}\n".encode())
    return digest.hexdigest()


def default_adapter_install(*, adapter_model=None, using: str = "default"):
    """The shipped adapter's row, made once: active when no other global adapter is.
    None when nothing is shipped or it was trained on another base model than
    PLAZA_AD_BASE_MODEL. `adapter_model`: the Adapter model (a migration's historical
    one, from post_migrate)."""
    if adapter_model is None:
        from ads.models import Adapter as adapter_model
    manifest = default_manifest()
    if manifest is None or manifest.get("base_model") != settings.PLAZA_AD_BASE_MODEL:
        return None
    rows = adapter_model.objects.using(using)
    found = rows.filter(name=DEFAULT_ADAPTER_NAME).first()
    if found is not None:
        return found
    other = rows.filter(scope="global", status="active").exists()
    fields = {
        "name": DEFAULT_ADAPTER_NAME,
        "base_model": manifest["base_model"],
        "scope": "global",
        "status": "candidate" if other else "active",
        "lora": manifest.get("lora", {}),
        "dataset_hash": manifest.get("dataset_hash", ""),
        "dataset_size": manifest.get("train_examples", 0),
        "metrics": manifest.get("metrics", {}),
        "path": SHIPPED_PATH,
        "size_bytes": (SHIPPED_DIR / ADAPTER_WEIGHTS).stat().st_size,
    }
    if any(f.name == "tasks" for f in adapter_model._meta.get_fields()):
        fields["tasks"] = list(manifest.get("tasks", ["headline"]))
    adapter = rows.create(**fields)
    logger.info("installed the shipped default adapter (%s)", adapter.status)
    return adapter


def default_adapter_build(
    *,
    steps: int = BUILD["steps"],
    output: Path = SHIPPED_DIR,
    on_progress: Callable[[TrainProgress], None] | None = None,
) -> dict:
    """Train the default adapter on the demo set and write it, with its manifest, to
    `output`. Returns the manifest."""
    dataset = dataset_from_csv(DEFAULT_SET_CSV)
    if dataset.errors:
        raise ValueError(f"{DEFAULT_SET_CSV}: {len(dataset.errors)} bad rows: {dataset.errors[:3]}")
    parameters = BUILD | {"steps": steps}
    config = TrainConfig(
        base_model=settings.PLAZA_AD_BASE_MODEL,
        cache_dir=str(settings.PLAZA_MODEL_CACHE),
        device=settings.PLAZA_DEVICE,
        checkpoint_every=0,
        **parameters,
    )
    lora = LoraSettings(**BUILD_LORA)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plaza-default-adapter-") as scratch:
        result = train(
            config,
            lora,
            dataset.train_examples(),
            dataset.eval_examples(),
            scratch,
            on_progress=on_progress,
        )
        output.mkdir(parents=True, exist_ok=True)
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            shutil.copyfile(Path(result.adapter_dir) / name, output / name)
    manifest = {
        "name": DEFAULT_ADAPTER_NAME,
        "base_model": settings.PLAZA_AD_BASE_MODEL,
        "dataset": DEFAULT_SET_CSV.name,
        "dataset_hash": dataset.snapshot_hash,
        "examples_hash": examples_hash(dataset),
        "tasks": list(dataset.tasks),
        "train_examples": len(dataset.train_examples()),
        "eval_examples": len(dataset.eval_examples()),
        "parameters": parameters,
        "lora": BUILD_LORA | {"target_modules": list(result.target_modules)},
        "metrics": {
            "eval_loss": result.eval_loss,
            "eval_perplexity": result.eval_perplexity,
            "base_eval_loss": result.base_eval_loss,
            "base_eval_perplexity": result.base_eval_perplexity,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
