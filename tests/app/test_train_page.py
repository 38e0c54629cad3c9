"""The Train page drives real worker processes through the store."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab.store import Store
from resnet_lab import jobs

pytestmark = pytest.mark.usefixtures("no_workers_left")


@pytest.fixture
def open_train(open_app_page):
    return lambda: open_app_page("app_pages/train.py")


def tiny_digits(at: AppTest) -> AppTest:
    at.selectbox(key="train_preset").set_value("resnet20").run()
    at.selectbox(key="train_data").set_value("digits").run()
    assert at.number_input(key="train_size").value == 32  # the recipe: 8 px digits upsampled for the CIFAR stem
    at.number_input(key="train_size").set_value(8).run()
    at.number_input(key="train_subset").set_value(128).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_batch").set_value(32).run()
    return at


def test_train_page_renders_with_no_runs(open_train):
    at = open_train()
    assert any("No runs yet" in i.value for i in at.info)
    assert {"Train", "Train with plain twin"} <= {b.label for b in at.button}


def recipe_caption(at: AppTest) -> str:
    (caption,) = [c.value for c in at.caption if "**Recipe**" in c.value]
    return caption


def test_settings_start_from_the_recipe_of_the_dataset_and_model_and_say_why(open_train):
    from resnet_lab.models import PRESETS
    from resnet_lab.train.recipes import recipe_for

    at = open_train()
    at.selectbox(key="train_data").set_value("digits").run()
    r = recipe_for("digits", PRESETS["resnet20"])
    assert (at.number_input(key="train_size").value, at.number_input(key="train_subset").value,
            at.number_input(key="train_epochs").value, at.number_input(key="train_batch").value,
            at.number_input(key="train_lr_sgd").value) == (r.image_size, 0, r.epochs, r.batch_size, r.lr)
    assert "8 px upsampled to 32" in recipe_caption(at) and "You changed" not in recipe_caption(at)
    at.number_input(key="train_epochs").set_value(2).run()
    assert "You changed some settings" in recipe_caption(at)
    at.button(key="train_recipe_reset").click().run()
    assert at.number_input(key="train_epochs").value == r.epochs and "You changed" not in recipe_caption(at)
    at.selectbox(key="train_data").set_value("shapes").run()  # another dataset: its own recipe
    shapes = recipe_for("shapes", PRESETS["resnet20"])
    assert (at.number_input(key="train_subset").value, at.number_input(key="train_batch").value) == (
        shapes.train_subset, shapes.batch_size)
    at.selectbox(key="train_preset").set_value("resnet18").run()  # an ImageNet-stem model: a larger input
    assert at.number_input(key="train_size").value == recipe_for("shapes", PRESETS["resnet18"]).image_size == 64
    assert "downsamples 32×" in recipe_caption(at) and not at.exception


def test_train_button_launches_one_run_even_when_double_clicked(open_train):
    at = tiny_digits(open_train())
    assert any(c.value.endswith("A run with its plain twin on cpu: starts now.") for c in at.caption)
    button = next(b for b in at.button if b.label == "Train with plain twin")
    button.click().run()
    next(b for b in at.button if b.label == "Train with plain twin").click().run()
    assert not at.exception
    runs = Store().runs.list()
    assert len(runs) == 2 and {r.partner_id for r in runs} == {r.id for r in runs}
    assert any(h.value.startswith(f"Run #{runs[-1].id}") for h in at.subheader)
    deadline = time.time() + 120
    while time.time() < deadline and any(r.active for r in Store().runs.list()):
        time.sleep(0.5)
        jobs.pump()
    assert [r.status for r in Store().runs.list()] == ["done", "done"]
    at.run()
    assert any("best val acc" in m.value for m in at.markdown)
    # the finished job taught the lab its speed: the same job again comes with an estimate
    assert any("starts now · done in about" in c.value for c in at.caption), [c.value for c in at.caption]
    table = at.dataframe[0].value
    assert list(table["id"]) == [r.id for r in Store().runs.list()]


def test_missing_dataset_files_show_what_to_do_and_queue_nothing(open_train):
    at = open_train()
    at.selectbox(key="train_data").set_value("cifar10").run()
    next(b for b in at.button if b.label == "Train").click().run()
    assert any("CIFAR-10 is not in" in e.value for e in at.error)
    assert Store().runs.list() == []


def test_several_gpus_are_offered_only_when_more_than_one_is_visible(open_train, monkeypatch):
    from resnet_lab.jobs import slots

    monkeypatch.delenv("RESNET_LAB_GPU_COUNT", raising=False)
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 1)
    at = open_train()
    assert not [s for s in at.select_slider if s.key == "train_world_size"]
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 4)
    at = open_train()
    (gpus,) = [s for s in at.select_slider if s.key == "train_world_size"]
    assert gpus.options == ["1", "2", "3", "4"] and gpus.value == 1
