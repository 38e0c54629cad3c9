"""The Fine-tune page: sources, the missing-weights message, and a one-click strategy comparison."""

import re
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


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def fine_tune_button(at):
    return next(b for b in at.button if b.label == "Fine-tune")


def test_missing_imagenet_weights_are_said_with_their_url_when_picked_and_fine_tune_waits(open_finetune):
    from resnet_lab.models.pretrained import IMAGENET_WEIGHTS

    at = open_finetune()
    (warning,) = [unescaped(w.value) for w in at.warning if "resnet18-f37072fd.pth" in unescaped(w.value)]
    assert "torch" in warning and "hub/checkpoints" in warning  # where it goes, at once
    (by_hand,) = [e for e in at.expander if e.label == "Or put the files in place by hand"]
    assert IMAGENET_WEIGHTS["resnet18"].url in by_hand.text[0].value  # where to get it by hand
    (get,) = [b for b in at.button if b.label.startswith("Get ResNet-18 ImageNet weights")]
    assert "MiB from download.pytorch.org" in get.label and not get.disabled  # or the lab downloads it
    assert fine_tune_button(at).disabled and "resnet18-f37072fd.pth" in fine_tune_button(at).help
    assert Store().runs.list() == []


def test_a_builtin_dataset_not_on_disk_is_said_when_picked(open_finetune):
    at = open_finetune()
    at.radio(key="ft_kind").set_value("Scratch").run()
    assert not fine_tune_button(at).disabled
    at.selectbox(key="ft_builtin").set_value("cifar10").run()
    assert any("CIFAR-10 is not in" in unescaped(w.value) for w in at.warning)
    assert any(e.label == "Or put the files in place by hand" and "Download" in e.text[0].value for e in at.expander)
    assert fine_tune_button(at).disabled and "CIFAR-10 is not in" in fine_tune_button(at).help


def test_defaults_are_sized_to_a_small_dataset_and_too_few_steps_are_warned(open_finetune):
    from resnet_lab.train.finetune import MIN_STEPS, optimizer_steps

    at = open_finetune()
    at.radio(key="ft_kind").set_value("Scratch").run()
    at.number_input(key="ft_subset").set_value(45).run()  # a small upload's worth of training images
    epochs, batch = at.number_input(key="ft_epochs").value, at.number_input(key="ft_batch").value
    assert batch <= 45 and optimizer_steps(45, epochs, batch) >= MIN_STEPS
    assert not any("optimizer step" in w.value for w in at.warning)
    at.number_input(key="ft_epochs").set_value(3).run()
    at.number_input(key="ft_batch").set_value(64).run()  # the old defaults: 3 steps
    (warning,) = [unescaped(w.value) for w in at.warning if "optimizer step" in unescaped(w.value)]
    assert "3 optimizer steps" in warning and f"fewer than {MIN_STEPS}" in warning and "45" in warning
    assert not at.exception


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
