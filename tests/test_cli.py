"""The command line, in this process (tests.helpers.cli.run_cli: exit code, stdout and stderr as a real
process gives them); `python -m resnet_lab` itself is tried in tests/test_cli_processes.py."""

import json

from resnet_lab import PRESETS
from tests.helpers.cli import run_cli


def test_presets_json_lists_every_preset_with_its_spec():
    r = run_cli("presets", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == set(PRESETS)
    assert data["resnet56"]["depths"] == [9, 9, 9] and data["plain56"]["skip"] is False


def test_presets_text_names_the_plain_twins():
    r = run_cli("presets")
    assert r.returncode == 0 and "resnet110" in r.stdout and "plain110" in r.stdout


def test_summary_json_of_the_plain_twin():
    r = run_cli("summary", "resnet56", "--twin", "--input-size", "64", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["params"] == 853_018 and data["spec"]["skip"] is False and data["input_size"] == 64
    assert [s["name"] for s in data["stages"]] == ["stem", "layer1", "layer2", "layer3", "head"]
    assert "layers" not in data


def test_summary_from_a_spec_file_with_layers(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(PRESETS["resnet20"].replace(num_classes=5).to_json())
    r = run_cli("summary", "--spec", str(path), "--json", "--layers")
    data = json.loads(r.stdout)
    assert data["spec"]["num_classes"] == 5 and data["layers"][-1]["name"] == "fc"


def test_bad_input_gives_a_message_and_exit_code_2(tmp_path):
    r = run_cli("summary", "resnet57")
    assert r.returncode == 2 and "did you mean resnet56" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"stem": "vgg"}')
    r = run_cli("summary", "--spec", str(bad))
    assert r.returncode == 2 and "stem='vgg' is not allowed" in r.stderr
    r = run_cli("summary", "resnet18", "--input-size", "3")
    assert r.returncode == 2 and "input size 3 is out of range" in r.stderr


def test_train_starts_from_the_recipe_and_says_why(lab_home, monkeypatch):
    from resnet_lab.cli import main
    from resnet_lab.jobs import scheduler
    from resnet_lab.store import Store
    from resnet_lab.train.recipes import recipe_for

    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None: [])  # queue only
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--data", "digits", "--detach", "--json"]) == 0
    r = recipe_for("digits", PRESETS["resnet20"])
    assert "recipe: digits: 8 px upsampled to 32" in err.getvalue() and "changed on the command line" not in err.getvalue()
    (run,) = Store().runs.list()
    assert (run.data["image_size"], run.data["train_subset"], run.train["epochs"], run.train["batch_size"],
            run.train["lr"]) == (r.image_size, r.train_subset, r.epochs, r.batch_size, r.lr)
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--data", "digits", "--epochs", "2", "--subset", "100", "--detach", "--json"]) == 0
    assert "changed on the command line to 32 px, 100 images, 2 epochs" in err.getvalue()


def test_import_dataset_asks_whether_flips_keep_the_label(lab_home, tmp_path):
    import io
    import zipfile

    from PIL import Image

    z = tmp_path / "letters.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for cls in ("b", "d"):
            for i in range(4):
                buf = io.BytesIO()
                Image.new("RGB", (36, 30), (40 * i, 0, 200 if cls == "b" else 0)).save(buf, "PNG")
                zf.writestr(f"{cls}/{i}.png", buf.getvalue())
    unanswered = run_cli("import-dataset", str(z), "--name", "letters")
    assert unanswered.returncode == 2 and "--flips-keep-label" in unanswered.stderr  # argparse: one is required
    done = run_cli("import-dataset", str(z), "--name", "letters", "--no-flips", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hflip"] is False and json.loads(done.stdout)["native_size"] == 30
    from resnet_lab.store import Store

    store = Store()
    assert store.datasets.owner_of("letters") == ("local", "this machine")  # the CLI imports as the machine
    store.close()
    listed = [d for d in json.loads(run_cli("datasets", "--json").stdout) if d["kind"] == "imported"]
    assert [(d["name"], d["classes"], d["hflip"], d["native_size"]) for d in listed] == [("folder:letters", 2, False, 30)]
    again = run_cli("import-dataset", str(z), "--name", "letters", "--no-flips")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_the_console_script_runs_the_same_main():
    """pyproject's ``resnet-lab`` script names the ``main`` that ``python -m resnet_lab`` runs (tried as a real
    process in tests/test_cli_processes.py), so what these tests try in process is what both entry points run."""
    import importlib
    import tomllib
    from pathlib import Path

    from resnet_lab.cli import main

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["resnet-lab"].partition(":")
    assert getattr(importlib.import_module(module), name) is main
