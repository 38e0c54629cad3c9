"""The Train page drives real worker processes through the store."""

import os
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab.store import Store
from resnet_lab.train import launcher

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_train() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def tiny_digits(at: AppTest) -> AppTest:
    at.selectbox(key="train_preset").set_value("resnet20").run()
    at.selectbox(key="train_data").set_value("digits").run()
    assert at.number_input(key="train_size").value == 8  # the dataset's own size
    at.number_input(key="train_subset").set_value(128).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_batch").set_value(32).run()
    return at


@pytest.fixture(autouse=True)
def no_workers_left(lab_home):
    yield
    for run in Store().runs(statuses=["running"]):
        if run.pid and launcher.pid_alive(run.pid):
            os.kill(run.pid, signal.SIGKILL)


def test_train_page_renders_with_no_runs():
    at = open_train()
    assert any("No runs yet" in i.value for i in at.info)
    assert [b.label for b in at.button][:2] == ["Train", "Train with plain twin"]


def test_train_button_launches_one_run_even_when_double_clicked():
    at = tiny_digits(open_train())
    button = next(b for b in at.button if b.label == "Train with plain twin")
    button.click().run()
    next(b for b in at.button if b.label == "Train with plain twin").click().run()
    assert not at.exception
    runs = Store().runs()
    assert len(runs) == 2 and {r.twin_of for r in runs} == {None, runs[-1].id}
    assert any(h.value.startswith(f"Run #{runs[-1].id}") for h in at.subheader)
    deadline = time.time() + 120
    while time.time() < deadline and any(r.active for r in Store().runs()):
        time.sleep(0.5)
        launcher.pump()
    assert [r.status for r in Store().runs()] == ["done", "done"]
    at.run()
    assert any("best val acc" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table["id"]) == [r.id for r in Store().runs()]


def test_missing_dataset_files_show_what_to_do_and_queue_nothing():
    at = open_train()
    at.selectbox(key="train_data").set_value("cifar10").run()
    next(b for b in at.button if b.label == "Train").click().run()
    assert any("CIFAR-10 is not in" in e.value for e in at.error)
    assert Store().runs() == []
