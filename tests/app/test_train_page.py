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
    assert at.number_input(key="train_size").value == 8  # the dataset's own size
    at.number_input(key="train_subset").set_value(128).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_batch").set_value(32).run()
    return at


def test_train_page_renders_with_no_runs(open_train):
    at = open_train()
    assert any("No runs yet" in i.value for i in at.info)
    assert [b.label for b in at.button][:2] == ["Train", "Train with plain twin"]


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
