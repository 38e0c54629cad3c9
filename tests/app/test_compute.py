"""resnet_lab.ui.compute: the one way pages compute on a shared model (stable keys, locks, copies, one cache)."""

import os
import threading
import time

import pytest
import torch

from resnet_lab.analysis import from_checkpoint, from_spec
from resnet_lab.data.registry import DataConfig, load_dataset
from resnet_lab.spec import ModelSpec
from resnet_lab.models.checkpoint import save_checkpoint
from resnet_lab.ui.compute import Keyed, input_key, on_model, on_models

SPEC = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=4, in_channels=3)


@pytest.fixture(scope="module")
def pair():
    data = DataConfig(name="shapes", image_size=16, seed=0)
    ds = load_dataset(data)
    spec = SPEC.replace(num_classes=ds.num_classes)
    return from_spec(spec, ds, data, seed=1), from_spec(spec.twin(), ds, data, seed=1)


def counting():
    calls = []

    def work(s, x, **_):
        calls.append(threading.get_ident())
        with torch.no_grad():
            return s.model(s.normalize(x)).sum().item()
    return work, calls


def test_one_computation_per_models_inputs_and_params(pair):
    s, _ = pair
    x = torch.rand(2, 3, 16, 16)
    work, calls = counting()
    a = on_model("t.count", s, work, x, params=("a",), spinner=None)
    assert on_model("t.count", s, work, x.clone(), params=("a",), spinner=None) == a  # same bytes: kept
    assert len(calls) == 1
    on_model("t.count", s, work, x, params=("b",), spinner=None)
    on_model("t.count", s, work, x + 1e-3, params=("a",), spinner=None)
    assert len(calls) == 3


def test_the_key_is_the_weights_identity_never_the_object(pair):
    """Python reuses id() of freed objects; a subject with another key is another model even on the same object."""
    s, _ = pair
    import dataclasses
    same_object_other_weights = dataclasses.replace(s, key=s.key + " (retrained)")
    x = torch.rand(1, 3, 16, 16)
    work, calls = counting()
    on_model("t.identity", s, work, x, spinner=None)
    on_model("t.identity", same_object_other_weights, work, x, spinner=None)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="no stable key"):
        on_model("t.identity", dataclasses.replace(s, key=""), work, x, spinner=None)


def test_work_gets_copies_and_runs_under_the_locks(pair):
    x = torch.zeros(1, 3, 16, 16)
    held = []

    def work(subjects, t):
        t += 5  # changing its copy leaves the caller's tensor alone
        for s in subjects:  # another thread cannot take a lock this one holds
            got = []
            th = threading.Thread(target=lambda: got.append(s.lock.acquire(timeout=0.01)))
            th.start()
            th.join()
            held.append(not got[0])
        return float(t.sum())

    assert on_models("t.locks", pair, work, x, spinner=None) == 5 * x.numel()
    assert float(x.sum()) == 0 and held == [True, True]


def test_copy_models_computes_on_private_copies_without_the_locks(pair):
    s, _ = pair
    seen = {}

    def work(subjects, x):
        c = subjects[0]
        seen["private"] = c.model is not s.model and c.lock is not s.lock
        seen["free"] = s.lock.acquire(blocking=False)  # another session's lock is not held meanwhile
        s.lock.release()
        for p in c.model.parameters():  # changing the copy leaves the shared model alone
            p.data.zero_()
        return 1

    before = [p.clone() for p in s.model.parameters()]
    on_models("t.copy", (s,), work, torch.rand(1, 3, 16, 16), copy_models=True, spinner=None)
    assert seen == {"private": True, "free": True}
    assert all(torch.equal(a, b) for a, b in zip(before, s.model.parameters()))


def test_a_failed_computation_keeps_nothing(pair):
    s, _ = pair
    tries = []

    def work(subject, x):
        tries.append(1)
        if len(tries) == 1:
            raise ValueError("first try fails")
        return 7

    with pytest.raises(ValueError):
        on_model("t.fail", s, work, torch.ones(1), spinner=None)
    assert on_model("t.fail", s, work, torch.ones(1), spinner=None) == 7
    assert on_model("t.fail", s, work, torch.ones(1), spinner=None) == 7 and len(tries) == 2


def test_none_is_a_result_like_any_other(pair):
    s, _ = pair
    calls = []
    for _ in range(2):
        assert on_model("t.none", s, lambda subject: calls.append(1), spinner=None) is None
    assert len(calls) == 1


def test_input_keys():
    assert input_key(Keyed(torch.rand(1000), ("x", 1))) == ("keyed", ("x", 1))
    assert input_key(torch.tensor(3.0)) == input_key(torch.tensor(3.0))
    assert input_key(torch.tensor([1, 2])) != input_key(torch.tensor([1.0, 2.0]))  # dtype counts
    assert input_key(torch.zeros(2, 3)) != input_key(torch.zeros(3, 2))  # shape counts
    assert input_key((1, "a", None)) == (1, "a", None)
    with pytest.raises(TypeError, match="Keyed"):
        input_key(object())


def test_a_rewritten_checkpoint_is_a_new_key(tmp_path, pair):
    s, _ = pair
    path = save_checkpoint(tmp_path, "best", s.model, {"spec": s.spec.to_dict(), "mean": list(s.mean),
                                                        "std": list(s.std), "run_id": 5})
    first = from_checkpoint(path)
    assert from_checkpoint(path).key == first.key and "run 5" in first.key
    later = time.time() + 10
    os.utime(path, (later, later))
    assert from_checkpoint(path).key != first.key


def test_pages_compute_only_through_the_helper():
    """No page or ui helper takes a model's lock or keys anything by the id() of a model or subject: they
    call resnet_lab.ui.compute, which keys by the stable Subject.key."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bad = []
    for path in sorted([*(root / "app_pages").glob("*.py"), *(root / "resnet_lab" / "ui").glob("*.py")]):
        if path.name == "compute.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "lock":
                bad.append(f"{path.name}:{node.lineno} uses .lock")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "id" and any(
                    word in ast.unparse(node).lower() for word in ("model", "subject", "s.", "main")):
                bad.append(f"{path.name}:{node.lineno} keys by {ast.unparse(node)}")
    assert not bad, bad
