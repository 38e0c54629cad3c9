"""The Fine-tune page: sources, the missing-weights message, and a one-click strategy comparison."""

import time

import pytest

from resnet_lab.store import Store
from resnet_lab import jobs


@pytest.fixture
def open_finetune(open_app_page):
    return lambda: open_app_page("app_pages/finetune.py")


@pytest.fixture(autouse=True)
def isolated(no_workers_left, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_missing_imagenet_weights_are_explained_and_refused(open_finetune):
    at = open_finetune()
    assert any("resnet18-f37072fd.pth" in w.value and "torch_home" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Fine-tune").click().run()
    assert any("resnet18-f37072fd.pth" in e.value for e in at.error)
    assert Store().runs.list() == []


def test_scratch_on_digits_compares_two_strategies_in_one_click(open_finetune):
    at = open_finetune()
    at.radio(key="ft_kind").set_value("Scratch").run()
    at.number_input(key="ft_size").set_value(8).run()
    at.number_input(key="ft_subset").set_value(128).run()
    at.number_input(key="ft_epochs").set_value(1).run()
    at.number_input(key="ft_batch").set_value(32).run()
    next(b for b in at.button if b.label == "Fine-tune").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    runs = Store().runs.list()
    assert sorted(r.finetune["strategy"] for r in runs) == ["full", "linear"]
    assert any("2 runs side by side" in h.value for h in at.subheader)
    deadline = time.time() + 120
    while time.time() < deadline and any(r.active for r in Store().runs.list()):
        time.sleep(0.5)
        jobs.pump()
    assert [r.status for r in Store().runs.list()] == ["done", "done"], [r.error for r in Store().runs.list()]
