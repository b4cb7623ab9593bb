"""Models loaded once per process: a thread-safe cache by config, emptied in a forked child.

    _encoders = ProcessCache(Encoder)          # Encoder(config) builds on first get
    encoder = _encoders.get(config)

A forked child must not reuse its parent's models (torch thread pools, CUDA contexts,
llama.cpp state) nor a lock another thread held at fork time, so every cache starts
empty in a child: load models in the worker, never in a forking parent.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_caches: weakref.WeakSet[ProcessCache] = weakref.WeakSet()


class ProcessCache(Generic[K, V]):
    """See the module docstring."""

    def __init__(self, build: Callable[[K], V]):
        self._build = build
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()
        _caches.add(self)

    def get(self, key: K) -> V:
        """The value for key, built on first use (once, whatever the threads)."""
        value = self._items.get(key)
        if value is None:
            with self._lock:
                value = self._items.get(key)
                if value is None:
                    value = self._items[key] = self._build(key)
        return value

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
        self._lock = threading.Lock()


def _after_fork_in_child() -> None:
    for cache in list(_caches):
        cache.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
