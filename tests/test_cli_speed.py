"""``models speed`` in this process (``--here``): measures, keeps the figures under this machine's device name,
prints them as a table or JSON, and asked again measures nothing; refusals exit 2 with the reason."""

import json

from resnet_lab.experiments.speed import lab_device_name, measured
from resnet_lab.store import Store
from tests.helpers.cli import run_cli


def test_models_speed_here_measures_keeps_and_then_reads_from_the_cache(lab_home):
    done = run_cli("models", "speed", "--here", "--quick", "--presets", "resnet20", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["device_name"] == lab_device_name("cpu") and out["missing"] == [] and out["job"] is None
    (row,) = out["speeds"]
    assert row["preset"] == "resnet20" and row["job_id"] is None and row["train_images_per_s"] > 0
    s = Store()
    first = measured(s, "cpu")["resnet20"]
    again = run_cli("models", "speed", "--device", "cpu", "--presets", "resnet20")  # cached: no job, no measuring
    assert again.returncode == 0, again.stderr
    assert "measured before; --remeasure to redo" in again.stdout and "resnet20" in again.stdout
    assert s.jobs.list(kinds=["speed"]) == [] and measured(s, "cpu")["resnet20"] == first
    s.close()


def test_models_speed_refuses_an_unknown_preset_and_models_help_lists_it(lab_home):
    bad = run_cli("models", "speed", "--here", "--presets", "resnet02")
    assert bad.returncode == 2 and "unknown model preset 'resnet02'" in bad.stderr
    helped = run_cli("models", "--help")  # `models` alone is `models compare`
    assert helped.returncode == 0 and "speed" in helped.stdout and "compare" in helped.stdout
