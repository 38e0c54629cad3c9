"""The one way a page computes on a shared model: :func:`on_models` (and :func:`on_model` for one).

Loaded models are cached once per server and shared by every browser session (``st.cache_resource``),
and the analysis that attaches hooks must not meet another session's hooks on the same module. So every
computation on a shared model goes through here, which

- **keys** the result by what it depends on: the name of the computation, each model's stable
  :attr:`Subject.key <resnet_lab.analysis.Subject.key>` (its run, checkpoint file and that file's
  modification time; or the spec, seed and data of an untrained one — never ``id(model)``, which Python
  reuses once an object is freed), a digest of each input tensor (or the key the caller gives for a large
  one with :class:`Keyed`), and the caller's ``params``;
- **looks it up** in a process-wide least-recently-used store (results are shared between sessions, so a
  class of 30 opening the same image computes it once; treat a result as read-only);
- on a miss, **copies the inputs**, **takes the models' locks** (in a fixed order, so two pages locking
  the same pair cannot deadlock) and **computes** under a spinner or a progress bar. With
  ``copy_models`` it copies the models under their locks and computes on the copies without holding them
  (for long work such as a lesion study, which switches skips on and off).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import threading
from contextlib import ExitStack
from typing import Any, Callable, Hashable, Sequence, TypeVar

import streamlit as st
import torch

from ..analysis import Subject
from .cache import shared_results

T = TypeVar("T")
MAX_ENTRIES = 32  # results kept per kind of computation (per server)


@dataclasses.dataclass(frozen=True)
class Keyed:
    """An input passed to the work as it is (tensors copied) but keyed by ``key`` instead of by its bytes: for
    a large tensor the page can name, e.g. ``Keyed(ds.x_val[:128], ("val", 128, data.to_dict()))``."""

    value: Any
    key: Hashable


def input_key(x: Any) -> Hashable:
    """What stands for one input in a result's key: a tensor's shape, dtype and SHA-1 of its bytes; a
    :class:`Keyed`'s key; plain values (numbers, strings, None, tuples of them) as they are."""
    if isinstance(x, Keyed):
        return ("keyed", x.key)
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous()
        return ("tensor", tuple(t.shape), str(t.dtype), hashlib.sha1(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest())
    if isinstance(x, (tuple, list)):
        return tuple(input_key(v) for v in x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"an input of type {type(x).__name__} cannot be keyed: wrap it in Keyed(value, key)")


def _copied(x: Any) -> Any:
    x = x.value if isinstance(x, Keyed) else x
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (tuple, list)):
        return type(x)(_copied(v) for v in x)
    return x


def model_key(subject: Subject) -> str:
    if not subject.key:
        raise ValueError(f"{subject.label} has no stable key: build it with from_checkpoint or from_spec")
    return subject.key


def result_key(name: str, subjects: Sequence[Subject], inputs: Sequence[Any], params: Hashable) -> Hashable:
    return (name, tuple(model_key(s) for s in subjects), tuple(input_key(x) for x in inputs), params)


def _private(subject: Subject) -> Subject:
    """The subject with a private copy of its model (taken under its lock) and a lock of its own."""
    with subject.lock:
        model = copy.deepcopy(subject.model)
    return dataclasses.replace(subject, model=model, lock=threading.RLock())


def on_models(name: str, subjects: Sequence[Subject], work: Callable[..., T], *inputs: Any, params: Hashable = (),
              copy_models: bool = False, progress: str | None = None, spinner: str | None = "Computing…",
              max_entries: int = MAX_ENTRIES) -> T:
    """``work(subjects, *inputs)`` — or ``work(subjects, *inputs, tick=tick)`` with a ``progress`` text, where
    ``tick(done, total)`` moves the bar — computed once per server for these models, inputs and ``params``.

    ``name`` names the computation (one store each); ``params`` are the other settings the result depends on
    (hashable: a layer, a method, a class…). The work gets copies of the inputs, the subjects' locks held
    (or, with ``copy_models``, subjects holding private copies of the models and no lock). The result is
    shared with other sessions: never change it. Exceptions reach the caller and nothing is kept.
    """
    subjects = tuple(subjects)
    key = result_key(name, subjects, inputs, params)
    store = shared_results(f"on_models:{name}", max_entries)
    kept = store.get(key)
    if kept is not None:
        return kept[0]
    args = tuple(_copied(x) for x in inputs)
    bar = st.progress(0.0, text=progress) if progress is not None else None
    extra: dict[str, Any] = {}
    if bar is not None:
        def tick(done: int, total: int) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=f"{progress} ({done}/{total})")
        extra["tick"] = tick
    try:
        with ExitStack() as stack:
            if spinner is not None and bar is None:
                stack.enter_context(st.spinner(spinner))
            if copy_models:
                subjects = tuple(_private(s) for s in subjects)
            else:
                for s in sorted(subjects, key=model_key):  # one order everywhere: no two pages wait on each other
                    stack.enter_context(s.lock)
            result = work(subjects, *args, **extra)
    finally:
        if bar is not None:
            bar.empty()
    return store.put(key, (result,))[0]


def on_model(name: str, subject: Subject, work: Callable[..., T], *inputs: Any, **options: Any) -> T:
    """:func:`on_models` for one model: ``work(subject, *inputs)``."""
    return on_models(name, (subject,), lambda subjects, *args, **kw: work(subjects[0], *args, **kw), *inputs,
                     **options)
