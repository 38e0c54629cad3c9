"""The speed panel (resnet_lab/ui/speed.py) as a page shows it: the device's name, the figures read from the store
(a preset not measured says so, in words, never as a number), and **Measure on this device**, which queues the
speed job for the missing presets only — the page itself times nothing."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab.experiments.speed import lab_device_name
from resnet_lab.store import Speed, Store
from resnet_lab.ui.common import plain

pytestmark = pytest.mark.usefixtures("no_workers_left")


def panel() -> None:
    from resnet_lab.ui.speed import speed_panel

    speed_panel(presets=("resnet20", "plain20"), key="t_")


def test_the_panel_shows_what_is_measured_and_queues_the_rest(lab_home, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_GPU_COUNT", "0")
    s = Store()
    name = lab_device_name("cpu")
    s.model_speeds.record(Speed("resnet20", "cpu", name, 321.0, 4.25, 987.0, 64, 1.0, image_size=32))
    at = AppTest.from_function(panel, default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(plain(name, 120) in c.value for c in at.caption)  # the name as text, markdown escaped
    (table,) = [d.value for d in at.dataframe]
    assert list(table["preset"]) == ["resnet20", "plain20"]
    assert table["train images/s"][0] == 321.0 and table["measured"][1] == "not measured on this device yet"
    assert any("1 of 2 presets are not measured" in i.value for i in at.info)
    at.button(key="t_speed_measure").click().run()
    assert not at.exception, [e.message for e in at.exception]
    (job,) = s.jobs.list(kinds=["speed"])
    assert job.params["presets"] == ["plain20"] and job.params["device_name"] == name
    s.close()
