"""The Train page drives real worker processes through the store."""

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab.store import Store
from resnet_lab import jobs
from tests.helpers.homes import seed

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


def test_once_the_files_are_in_place_the_dataset_trains_without_a_word(open_train, lab_home):
    from torchvision.datasets import MNIST

    at = open_train()
    at.selectbox(key="train_data").set_value("mnist").run()
    assert any("MNIST is not in" in unescaped(w.value) for w in at.warning)
    raw = lab_home / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz, _md5 in MNIST.resources:  # the four idx files, where torchvision looks for them
        (raw / gz.removesuffix(".gz")).write_bytes(b"")
    at.run()
    assert not any("is not in" in unescaped(w.value) for w in at.warning)
    assert all(not b.disabled and not b.help for b in train_buttons(at))
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


# --- issue 21: what a newcomer hit in a real browser -----------------------------------------------------


def train_buttons(at: AppTest) -> list:
    return [b for b in at.button if b.label in ("Train", "Train with plain twin")]


@pytest.mark.parametrize("name, title", [("cifar10", "CIFAR-10"), ("mnist", "MNIST")])
def test_a_dataset_not_on_disk_is_said_when_picked_and_train_waits_for_it(open_train, name, title):
    at = open_train()
    assert all(not b.disabled for b in train_buttons(at))
    at.selectbox(key="train_data").set_value(name).run()
    assert not at.exception
    # at once, before any button: what is missing, and where to get it / put it
    (missing,) = [unescaped(w.value) for w in at.warning if f"{title} is not in" in unescaped(w.value)]
    assert "download it on request" in missing
    (by_hand,) = [e for e in at.expander if e.label == "Or put the files in place by hand"]
    assert "Missing there" in by_hand.text[0].value and "Download" in by_hand.text[0].value
    (get,) = [b for b in at.button if b.label.startswith(f"Get {title} (")]  # its size and source on it
    assert "MiB from " in get.label and not get.disabled
    buttons = train_buttons(at)
    assert len(buttons) == 2 and all(b.disabled for b in buttons)
    assert all(b.help and f"{title} is not in" in b.help for b in buttons)
    # the greyed validation split says why it is greyed
    split = at.number_input(key="train_val_fraction")
    assert split.disabled and name in split.help and "official test split" in split.help
    at.selectbox(key="train_data").set_value("digits").run()  # a bundled dataset: nothing to say, buttons back
    assert not any("is not in" in unescaped(w.value) for w in at.warning)
    assert all(not b.disabled for b in train_buttons(at))
    assert not at.number_input(key="train_val_fraction").disabled


def test_get_it_downloads_the_dataset_live_and_then_train_goes_on(open_train, tmp_path, monkeypatch):
    """The Get it button queues the one download job; a real worker fetches the files from a local server (the
    test's catalogue: tests/downloads/download_wiring.py) and the page then trains on them."""
    from resnet_lab.downloads import download_job
    from resnet_lab.jobs.handlers import WIRING_ENV
    from tests.data.test_downloads import mnist_files, point, serve_all
    from tests.downloads.download_wiring import ENV, write_overrides
    from tests.helpers.httpfaults import FaultServer
    from tests.helpers.waiting import wait_job

    files = mnist_files()
    with FaultServer() as srv:
        entry = point(monkeypatch, "mnist", files, serve_all(srv, "mnist", files))
        monkeypatch.setenv(WIRING_ENV, "tests.downloads.download_wiring")
        monkeypatch.setenv(ENV, str(write_overrides(tmp_path / "catalogue.json", {"mnist": entry})))
        at = open_train()
        at.selectbox(key="train_data").set_value("mnist").run()
        (get,) = [b for b in at.button if b.label.startswith("Get MNIST (")]
        assert "from 127.0.0.1" in get.label
        get.click().run()
        assert not at.exception
        store = Store()
        job = wait_job(store, download_job(store, "mnist").id)
        assert job.status == "done", job.error
    at.run()
    assert not any("is not in" in unescaped(w.value) for w in at.warning)
    assert all(not b.disabled for b in train_buttons(at))


def test_no_runs_yet_is_said_only_when_there_are_no_runs(open_train):
    store = Store()
    row = {"name": "resnet-8 (degradation)", "spec": {"stem": "cifar"}, "data": {"name": "shapes"},
           "train": {"epochs": 1}}
    for depth in (8, 14):  # an experiment's four runs: none of them the Train page's own job
        job, _ = store.jobs.create("train", f"resnet-{depth}", "cpu",
                                   then=seed(runs=[row, {**row, "name": "plain"}], partners=True), origin="degradation")
        store.jobs.finish(job, "done", only_if=["queued"])
    at = open_train()
    assert not any("No runs yet" in i.value for i in at.info), [i.value for i in at.info]
    assert any("4 runs" in i.value for i in at.info), [i.value for i in at.info]
    assert len(at.dataframe[0].value) == 4


def open_train_link(query: dict) -> AppTest:
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_a_model_link_opens_that_model_on_train():
    at = open_train_link({"model": "resnet56"})
    assert at.selectbox(key="train_preset").value == "resnet56"
    assert not at.warning


@pytest.mark.parametrize("query, shown", [({"model": "resnet9000"}, "resnet9000"),
                                          ({"model": "**bold**"}, "**bold**"),
                                          ({"spec": "{\"stem\": "}, "spec")])
def test_a_model_link_that_cannot_be_used_says_so_naming_the_value(query, shown):
    at = open_train_link(query)
    (warning,) = [w.value for w in at.warning if "link" in w.value]
    assert shown in unescaped(warning)
    assert "\\*\\*bold\\*\\*" in warning or "bold" not in shown  # the value as text, never as Markdown
    assert at.selectbox(key="train_preset").value == "resnet20"  # the page opens as usual


def test_a_link_whose_size_is_too_small_for_the_model_opens_at_the_smallest_size_that_works():
    from resnet_lab import PRESETS
    from resnet_lab.models.summary import check_input_size

    at = open_train_link({"model": "resnet18", "size": "16"})
    assert at.selectbox(key="train_preset").value == "resnet18"
    size = at.number_input(key="train_size").value
    check_input_size(PRESETS["resnet18"], size)  # a size the model works at (the summary's own rule) ...
    with pytest.raises(ValueError):
        check_input_size(PRESETS["resnet18"], size - 1)  # ... and the smallest such
    (note,) = [unescaped(w.value) for w in at.warning if "16 px" in unescaped(w.value)]
    assert "too small" in note and f"{size} px is used" in note
    assert all(not b.disabled for b in train_buttons(at))


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)



def test_the_page_says_what_same_settings_give_and_a_deterministic_run_is_queued_as_one(open_train, monkeypatch):
    monkeypatch.setattr("resnet_lab.jobs.scheduler.pump", lambda *a, **k: [])  # queued, never started here
    at = tiny_digits(open_train())
    (note,) = [c.value for c in at.caption if "Same settings, same numbers" in c.value]
    assert "CPU" in note and "thread" in note  # this machine: the CPU, its thread count named
    at.checkbox(key="train_deterministic").check().run()
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception
    (run,) = Store().runs.list()
    assert run.train["deterministic"] is True and run.status == "queued"
