"""The store of finished results shared by every session: least recently used goes first."""

import pytest

from resnet_lab.ui.cache import SharedResults


def test_least_recently_used_entry_is_dropped_first():
    store = SharedResults(2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "a" is now the most recently used
    store.put("c", 3)
    assert store.get("b") is None and store.get("a") == 1 and store.get("c") == 3
    assert len(store) == 2


def test_put_returns_the_value_and_replaces_an_older_one():
    store = SharedResults(3)
    assert store.put(("study", 1), [1]) == [1]
    store.put(("study", 1), [2])
    assert store.get(("study", 1)) == [2] and len(store) == 1
    assert store.get("missing") is None


def test_a_store_must_hold_something():
    with pytest.raises(ValueError, match="at least 1"):
        SharedResults(0)


def test_get_or_make_builds_a_missing_value_once_and_keeps_the_size():
    store, built = SharedResults(2), []
    assert store.get_or_make("a", lambda: built.append("a") or 1) == 1
    assert store.get_or_make("a", lambda: built.append("a again") or 2) == 1 and built == ["a"]
    store.get_or_make("b", lambda: 2)
    store.get_or_make("c", lambda: 3)
    assert store.get("a") is None and len(store) == 2
