"""The command line where processes run: ``python -m resnet_lab`` itself, as a real process (the one entry point
besides pyproject's console script, which names the same ``main``: tests/test_cli.py), and the commands that train
in a worker process. Every other command is tried in process (tests.helpers.cli.run_cli)."""

import json
import subprocess
import sys
from pathlib import Path

from resnet_lab import PRESETS
from tests.helpers.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]


def python_m_resnet_lab(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resnet_lab", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_python_m_resnet_lab_prints_json_and_exits_0():
    r = python_m_resnet_lab("presets", "--json")
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == set(PRESETS)


def test_python_m_resnet_lab_exits_2_on_bad_input_with_one_line_and_no_traceback():
    r = python_m_resnet_lab("landscape", "--run", "1", "--steps", "4")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: steps=4 must be odd") and r.stderr.count("\n") == 1
    r = python_m_resnet_lab("import-dataset", "letters.zip", "--name", "letters")  # argparse: a required choice
    assert r.returncode == 2 and "--flips-keep-label" in r.stderr and "Traceback" not in r.stderr


def test_train_runs_and_stop_from_the_command_line(lab_home):
    r = run_cli("train", "--model", "resnet20", "--data", "digits", "--image-size", "8", "--subset", "128",
                "--epochs", "1", "--batch-size", "32", "--twin", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    runs = json.loads(r.stdout)["runs"]
    assert [x["status"] for x in runs] == ["done", "done"] and runs[1]["partner"] == runs[0]["id"]
    assert [x["kind"] for x in runs] == ["ResNet", "plain"] and runs[0]["job"] == runs[1]["job"]
    assert runs[0]["name"] == "resnet20 · digits" and runs[1]["name"] == "plain20 · digits"
    listed = json.loads(run_cli("runs", "--json").stdout)
    assert {x["id"] for x in listed} == {x["id"] for x in runs}
    stop = run_cli("stop", "--run", runs[0]["id"], "--json")
    assert json.loads(stop.stdout)["status"] == "done"  # already finished: nothing to stop
    missing = run_cli("stop", "--run", "999")
    assert missing.returncode == 2 and "no run with id 999" in missing.stderr
    jobs = json.loads(run_cli("jobs", "--json").stdout)
    assert [(j["id"], j["kind"], j["status"], j["runs"]) for j in jobs] == [
        (runs[0]["job"], "train", "done", [runs[0]["id"], runs[1]["id"]])]
    assert (jobs[0]["owner"], jobs[0]["owner_name"]) == ("local", "this machine")  # the CLI acts as the machine
    assert json.loads(run_cli("stop", "--job", str(runs[0]["job"]), "--json").stdout) == {
        "job": runs[0]["job"], "status": "done"}
    assert "no job with id 999" in run_cli("resume", "--job", "999").stderr
    assert (lab_home / "runs" / str(runs[1]["id"])).is_dir()
    deleted = run_cli("delete", "--run", runs[1]["id"])  # the plain twin's id: the job goes with both runs
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted runs {runs[0]['id']}, {runs[1]['id']}"
    assert json.loads(run_cli("runs", "--json").stdout) == [] and json.loads(run_cli("jobs", "--json").stdout) == []
    assert not any((lab_home / "runs" / str(r["id"])).exists() for r in runs)  # checkpoints too
    bad = run_cli("train", "--data", "cifar10")
    assert bad.returncode == 2 and "CIFAR-10 is not in" in bad.stderr


def test_finetune_from_the_command_line(lab_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    r = run_cli("finetune", "--from", "scratch:resnet20", "--data", "digits", "--image-size", "8", "--subset", "128",
                "--strategy", "linear,full", "--epochs", "1", "--batch-size", "32", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    runs = json.loads(r.stdout)["runs"]
    assert [x["status"] for x in runs] == ["done", "done"]
    assert runs[0]["name"].endswith("linear") and runs[1]["name"].endswith("full")
    missing = run_cli("finetune", "--from", "imagenet:resnet18", "--data", "digits")
    assert missing.returncode == 2 and "resnet18-f37072fd.pth" in missing.stderr and "torch_home" in missing.stderr
