"""Cached, read-only results shared between sessions (keyed by the spec's JSON, never by object identity)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import streamlit as st

from ..device import device_description
from ..models.diagram import to_dot
from ..models.summary import ModelSummary, summarize
from ..spec import ModelSpec

T = TypeVar("T")


@st.cache_data(max_entries=256, show_spinner=False)
def _summary(spec_json: str, input_size: int, batch_size: int) -> ModelSummary:
    return summarize(ModelSpec.from_json(spec_json), input_size=input_size, batch_size=batch_size)


def cached_summary(spec: ModelSpec, input_size: int, batch_size: int = 1) -> ModelSummary:
    return _summary(spec.to_json(indent=None), input_size, batch_size)


@st.cache_data(max_entries=256, show_spinner=False)
def _dot(spec_json: str, input_size: int, title: str | None) -> str:
    return to_dot(_summary(spec_json, input_size, 1), title=title)


def cached_dot(spec: ModelSpec, input_size: int, title: str | None = None) -> str:
    return _dot(spec.to_json(indent=None), input_size, title)


@st.cache_resource(show_spinner=False)
def cached_device_description() -> str:
    return device_description()


class SharedResults:
    """A small least-recently-used store of finished results, shared by every session (the one such cache
    of the UI: pages' long results, and the live views' figures, tables and views).

    For long work that draws its own progress bar: ``st.cache_data`` replays the elements a cached
    function drew, and a bar made outside the function cannot be replayed. The page looks the result
    up first, computes it under its bar on a miss and puts it here. Two sessions that miss at once both
    compute; the second put wins, with an equal value.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value under ``key``, built by ``make`` on a miss while the lock is held: sessions asking at once
        build it once (for quick builds only: every other key waits meanwhile)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = make()
            self._items[key] = value
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
            return value

    def put(self, key: Hashable, value: Any) -> Any:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@st.cache_resource(show_spinner=False)
def shared_results(name: str, max_entries: int) -> SharedResults:
    """The process-wide store called ``name`` (one per kind of result)."""
    return SharedResults(max_entries)
