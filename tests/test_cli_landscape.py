"""`python -m resnet_lab landscape`: a small real run reports JSON with the saved result, and bad input is
a clear error with exit status 2."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnet_lab.analysis.landscape import LandscapeParams, basin_sentence, training_batches
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.experiments.landscape import load_result
from resnet_lab.experiments.learned import check_runs
from resnet_lab.analysis.subject import from_run
from resnet_lab.cli import main
from resnet_lab.data.registry import load_dataset
from resnet_lab.identity import MACHINE
from resnet_lab.store import Store
from resnet_lab import jobs
from resnet_lab.paths import run_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(private_trained_home):
    """[resnet id, plain id] in a private copy of the trained home (see tests/conftest.py)."""
    return private_trained_home[1]


def test_a_small_landscape_reports_json_with_the_result_file(home, capsys):
    ids = home
    rc = main(["landscape", "--run", str(ids[1]), "--dims", "1", "--steps", "3", "--span", "0.5", "--batches", "1",
               "--batch-size", "16", "--seed", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "estimate: 2 models × 3 points × 1 batch = 6 forward passes of 16 images" in err
    doc = json.loads(out)
    assert doc["status"] == "done" and doc["error"] is None and doc["progress"] == doc["total"] == 6
    assert doc["runs"] == [ids[1], ids[0]]  # the run asked for first, then its partner
    assert doc["estimate"]["forwards"] == 6 and doc["estimate"]["seconds"] > 0
    path = Path(doc["result_path"])
    assert path.is_file() and path.parent == run_dir(ids[1])
    result = load_result(path)
    assert [m["run"] for m in doc["models"]] == ids[::-1] and [m["skip"] for m in doc["models"]] == [False, True]
    params = LandscapeParams(dims=1, steps=3, span=0.5, batches=1, batch_size=16, seed=2)
    store = Store()
    for m, s in zip(doc["models"], result.surfaces):
        assert (m["min_loss"], m["max_loss"]) == (min(s.loss), max(s.loss))
        subject = from_run(store.runs.get(m["run"]))  # the centre: the model's own loss on the same 16 images
        ((x, y),) = training_batches(subject, load_dataset(subject.data), params)
        with torch.no_grad():
            tol = 1e-5 if doc["estimate"]["device"] == "cpu" else 1e-2  # CUDA convolutions may use TF32
            assert math.isclose(m["center_loss"], F.cross_entropy(subject.model(x), y).item(), rel_tol=tol)
    checks = check_runs(store, [store.runs.get(i) for i in doc["runs"]])  # the learned check, then the basin
    assert doc["learned"] == [json.loads(json.dumps(c.to_dict())) for c in checks]
    assert doc["inconclusive_why"] == inconclusive(checks) and doc["inconclusive"] == (inconclusive(checks) is not None)
    assert doc["basin"] == (None if doc["inconclusive"] else (basin_sentence(result.surfaces) or None))
    store.close()


def test_a_landscape_of_runs_at_chance_is_inconclusive(capsys, private_trained_home, run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.17)
    rc = main(["landscape", "--run", str(ids[0]), "--dims", "1", "--steps", "3", "--span", "0.5", "--batches", "1",
               "--batch-size", "16"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "inconclusive: these models did not learn (ResNet #" in out
    assert "flatter" not in out and "Li et al." not in out


@pytest.mark.parametrize("args, message", [
    (["--steps", "4"], "steps=4 must be odd"),
    (["--dims", "3"], "dims=3 is out of range"),
    (["--span", "0"], "span=0.0 is out of range"),
    (["--batches", "51"], "batches=51 is out of range"),
    (["--batch-size", "4"], "batch_size=4 is out of range"),
    (["--seed", "-1"], "seed=-1 is out of range"),
])
def test_bad_settings_are_a_clear_error_with_exit_2(home, capsys, args, message):
    assert main(["landscape", "--run", str(home[0]), *args]) == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert Store().jobs.list(kinds=["landscape"]) == []  # nothing was queued


def test_unknown_runs_and_missing_twins_are_a_clear_error(home, capsys):
    assert main(["landscape", "--run", "999"]) == 2
    assert "error: no run with id 999" in capsys.readouterr().err
    store = Store()
    run = store.runs.get(home[0])
    job, (alone,) = store.jobs.create("train", "alone", "cpu", runs=[{"name": "alone", "spec": run.spec,
                                                                       "data": run.data, "train": run.train}])
    store.runs.update(alone, ckpt_best=run.ckpt_best)
    store.jobs.finish(job, "done", only_if=["queued"])
    assert main(["landscape", "--run", str(alone)]) == 2
    assert f"error: run {alone} has no twin" in capsys.readouterr().err
    store.close()


def test_detach_queues_and_returns_at_once(home, capsys):
    assert main(["landscape", "--run", str(home[0]), "--steps", "3", "--batches", "1", "--batch-size", "8",
                 "--detach", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    store = Store()
    job = store.jobs.get(doc["job"])
    assert job.kind == "landscape" and job.params["runs"] == home and doc["status"] in ("queued", "running")
    jobs.stop(job.id, store, by=MACHINE)
    store.close()


def test_the_real_command_exits_2_on_bad_input():
    proc = subprocess.run([sys.executable, "-m", "resnet_lab", "landscape", "--run", "1", "--steps", "4"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "error: steps=4 must be odd" in proc.stderr and proc.stdout == ""
