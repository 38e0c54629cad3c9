"""`python -m resnet_lab localize`: the printed scores are the analysis's, for the run and its twin."""

import json

import pytest

from resnet_lab.analysis import from_run, localization
from resnet_lab.data.registry import load_dataset
from resnet_lab.store import Store
from tests.helpers import cli


def run_cli(*args):
    return cli.run_cli("localize", *args)


def test_localize_prints_the_analysis_scores_for_both_models(finished_run):
    r = run_cli("--run", finished_run[0], "--twin", "--n", 24, "--layer", "layer2", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["layer"] == "layer2" and got["n"] == 24 and [m["run"] for m in got["models"]] == finished_run
    store = Store()
    for row, rid in zip(got["models"], finished_run):
        s = from_run(store.runs.get(rid))
        data = load_dataset(s.data)
        loc = localization(s.model, s.normalize(data.x_val[:24]), data.mask_val[:24], data.y_val[:24], "layer2")
        assert row["energy"] == pytest.approx(loc.energy, abs=1e-5)
        assert row["pointing"] == pytest.approx(loc.pointing)
        assert row["baseline"] == pytest.approx(float(data.mask_val[:24].float().mean()))
    store.close()
    table = run_cli("--run", finished_run[1], "--n", 8)
    assert table.returncode == 0 and "a uniform map" in table.stdout and "energy in mask" in table.stdout


def test_localize_refuses_unknown_runs_and_layers(finished_run):
    r = run_cli("--run", 999)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error:")
    r = run_cli("--run", finished_run[0], "--layer", "fc")
    assert r.returncode == 2 and "valid layers" in r.stderr
