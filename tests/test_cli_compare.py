"""`models compare`: the published rows and Table 6 with their sources, and with --dataset the runs' front."""

import json

from resnet_lab.models.presets import PRESETS
from resnet_lab.models.published import TABLE6, imagenet_rows
from resnet_lab.store import Store
from tests.helpers.cli import run_cli
from tests.helpers.homes import seed


def test_compare_json_has_both_tables_with_their_sources():
    done = run_cli("models", "compare", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["published"]["rows"]) == len(imagenet_rows()) == 8
    assert {r["version"] for r in report["published"]["rows"]} == {"V1", "V2"}
    assert "torchvision" in report["published"]["source"] and "Table 6" in report["table6"]["source"]
    assert [r["depth"] for r in report["table6"]["rows"]] == [r.depth for r in TABLE6]
    assert "runs" not in report


def test_compare_reads_as_a_table():
    done = run_cli("models", "compare")
    assert done.returncode == 0, done.stderr
    assert "resnet152  V2" in done.stdout and "Table 6" in done.stdout and "resnet1202" in done.stdout
    assert run_cli("models").stdout == done.stdout  # `models` alone compares


def test_compare_with_a_dataset_shows_the_runs_front(lab_home):
    s = Store()
    rows = [{"name": n, "spec": PRESETS[p].to_dict(), "data": {"name": "cifar10", "image_size": 32}, "train": {}}
            for n, p in (("small", "resnet20"), ("big", "resnet56"))]
    _, (a, b) = s.jobs.create("train", "two", "cpu", then=seed(runs=rows))
    for rid, acc in ((a, 0.915), (b, 0.921)):
        s.runs.update(rid, best={"val/acc": acc})
        s.runs.finish(rid, "done", only_if=("queued", "running"))
    s.close()
    report = json.loads(run_cli("models", "compare", "--json", "--dataset", "cifar10").stdout)
    assert report["runs"]["fronts"]["params"]["run_ids"] == [a, b]
    assert report["runs"]["fronts"]["params"]["sentence"].startswith(f"resnet20 #{a} is within 0.6 points")
    text = run_cli("models", "compare", "--dataset", "cifar10").stdout
    assert "Your runs on cifar10: 2 finished" in text and "at a third of the parameters" in text
    assert "none yet" in run_cli("models", "compare", "--dataset", "mnist").stdout
