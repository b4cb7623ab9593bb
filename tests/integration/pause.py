"""Loaded into a test's worker (`celery worker -I tests.integration.pause`) when the test
names a file in PLAZA_TEST_PAUSE_FILE: a job's first progress write to its row (or a
rebuild chunk's write to the index, before the chunk is marked done) is followed by that
file, and then by a pause that lasts until the worker is killed.

A test that kills the worker once the file is there knows the job was running, had written
to its row, and could not have finished: no race with a fast machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery.signals import task_prerun

PAUSE_FILE = os.environ.get("PLAZA_TEST_PAUSE_FILE")


def _pause(what: str) -> None:
    Path(PAUSE_FILE).write_text(f"{what}\n")
    while True:  # until SIGKILL
        time.sleep(3600)


def pause_after_first_progress(**_) -> None:
    """Wrap the job progress writer and the backend's chunk writer, once per worker
    process (the pool's child)."""
    from ops import jobs
    from search.backends import search_backend

    write = jobs.ProgressWriter.__call__
    if getattr(write, "pauses", False):
        return

    def write_then_pause(self, **fields) -> bool:
        wrote = write(self, **fields)
        if wrote:
            _pause(f"{type(self.job).__name__} {self.job.pk}")
        return wrote

    write_then_pause.pauses = True
    jobs.ProgressWriter.__call__ = write_then_pause

    backend = type(search_backend())
    build_write = backend.build_write

    def build_write_then_pause(self, generation, number, rows, vectors) -> None:
        build_write(self, generation, number, rows, vectors)
        _pause(f"IndexBuildChunk {generation.pk}#{number}")

    backend.build_write = build_write_then_pause


if PAUSE_FILE:
    task_prerun.connect(pause_after_first_progress, weak=False)
