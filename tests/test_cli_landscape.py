"""`python -m resnet_lab landscape`: a small real run reports JSON with the saved result, and bad input is
a clear error with exit status 2; a run trained with --keep-weights-every gets its training path
(--directions pca), and --interpolate reports the line from the initial weights."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnet_lab.analysis.landscape import LandscapeParams, training_batches
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.experiments.landscape import basin_sentence, interpolation_sentence, load_interpolation, load_result
from resnet_lab.experiments.learned import check_runs
from resnet_lab.analysis.subject import from_run
from resnet_lab.cli import main
from resnet_lab.data.registry import load_dataset
from resnet_lab.identity import MACHINE
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from resnet_lab import jobs
from resnet_lab.paths import run_dir
from tests.helpers.homes import seed


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
    job, (alone,) = store.jobs.create("train", "alone", "cpu", then=seed(runs=[{"name": "alone", "spec": run.spec,
                                                                       "data": run.data, "train": run.train}]))
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


# --- the training path and interpolation -------------------------------------------------------------------


def workers_gone(job_ids, timeout=30.0) -> None:
    """Wait until the workers of these (finished) jobs have exited: a worker records "done" a moment before it
    ends, and none may outlive the test."""
    import time

    store = Store()
    deadline = time.time() + timeout
    pids = [store.jobs.get(j).pid for j in job_ids]
    while any(pid and jobs.pid_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    store.close()
    assert not any(pid and jobs.pid_alive(pid) for pid in pids)


def test_a_path_needs_kept_weights_and_says_how_to_get_them(home, capsys):
    assert main(["landscape", "--run", str(home[0]), "--directions", "pca", "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert f"error: run {home[0]} kept no weights along its training" in err and "--keep-weights-every K" in err
    assert main(["landscape", "--run", str(home[0]), "--directions", "pca", "--dims", "1"]) == 2
    assert "error: the training path (directions='pca') is drawn on a 2D slice" in capsys.readouterr().err
    assert main(["landscape", "--run", str(home[0]), "--from-run", str(home[1])]) == 2
    assert "error: --from-run goes with --interpolate" in capsys.readouterr().err
    assert main(["landscape", "--run", str(home[0]), "--interpolate", "--resolution", "1"]) == 2
    assert "error: resolution=1 is out of range" in capsys.readouterr().err
    assert Store().jobs.list(kinds=["landscape"]) == []


def test_train_keeping_weights_then_draw_the_path_from_the_command_line(capsys, tmp_path):
    spec = tmp_path / "tiny.json"
    spec.write_text(ModelSpec(stem="cifar", depths=(1, 1), widths=(8, 16), shortcut="A").to_json())
    assert main(["train", "--spec", str(spec), "--data", "shapes", "--image-size", "16", "--subset", "192",
                 "--epochs", "2", "--batch-size", "32", "--twin", "--device", "cpu", "--keep-weights-every", "4",
                 "--json"]) == 0
    ids = [r["id"] for r in json.loads(capsys.readouterr().out)["runs"]]
    rc = main(["landscape", "--run", str(ids[0]), "--directions", "pca", "--steps", "3", "--span", "1.5",
               "--batches", "1", "--batch-size", "16", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["status"] == "done" and doc["params"]["directions"] == "pca"
    result = load_result(doc["result_path"])
    store = Store()
    for m, s, rid in zip(doc["models"], result.surfaces, ids):
        total = store.runs.get(rid).total_steps
        assert m["path"]["steps"] == list(s.path.steps) == [k for k in range(total + 1) if k % 4 == 0 or k == total]
        assert m["path"]["explained"] == list(s.path.explained) and 0 < sum(s.path.explained) <= 1 + 1e-9
    assert doc["basin"] is None or "PCA directions explain" in doc["basin"]
    trained_by = [store.runs.get(rid).job_id for rid in ids]
    store.close()
    workers_gone([doc["job"], *trained_by])


def test_an_interpolation_from_the_rebuilt_initial_weights_reports_json(home, capsys):
    ids = home
    rc = main(["landscape", "--run", str(ids[0]), "--interpolate", "--resolution", "2", "--extend", "0.5",
               "--batches", "1", "--batch-size", "16", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "estimate: 2 models × 5 points × 1 batch × 2 (BN statistics, then the loss) = 20 forward passes" in err
    doc = json.loads(out)
    assert doc["status"] == "done" and doc["start"] == "init" and doc["runs"] == ids and doc["progress"] == 10
    result = load_interpolation(doc["result_path"])
    for m, c in zip(doc["models"], result.curves):
        assert m["start"] == "its initial weights (rebuilt from seed 0)"  # trained without keeping weights
        assert m["alphas"] == [-0.5, 0.0, 0.5, 1.0, 1.5] and m["loss"] == list(c.loss)
        assert (m["loss_start"], m["loss_end"]) == (c.loss[1], c.loss[3])
    assert doc["sentence"] == interpolation_sentence(result.curves)
    workers_gone([doc["job"]])
