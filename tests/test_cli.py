import json
import subprocess
import sys

from resnet_lab import PRESETS


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "resnet_lab", *args], capture_output=True, text=True, timeout=120)


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
    r = run_cli("summary", "resnet56", "--plain", "--input-size", "64", "--json")
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


def test_train_runs_and_stop_from_the_command_line(lab_home):
    r = run_cli("train", "--model", "resnet20", "--data", "digits", "--image-size", "8", "--subset", "128",
                "--epochs", "1", "--batch-size", "32", "--plain-twin", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    runs = json.loads(r.stdout)["runs"]
    assert [x["status"] for x in runs] == ["done", "done"] and runs[1]["partner"] == runs[0]["id"]
    assert [x["kind"] for x in runs] == ["ResNet", "plain"] and runs[0]["job"] == runs[1]["job"]
    assert runs[0]["name"] == "resnet20 · digits" and runs[1]["name"] == "plain20 · digits"
    listed = json.loads(run_cli("runs", "--json").stdout)
    assert {x["id"] for x in listed} == {x["id"] for x in runs}
    stop = run_cli("stop", str(runs[0]["id"]), "--json")
    assert json.loads(stop.stdout)["status"] == "done"  # already finished: nothing to stop
    missing = run_cli("stop", "999")
    assert missing.returncode == 2 and "no run with id 999" in missing.stderr
    jobs = json.loads(run_cli("jobs", "--json").stdout)
    assert [(j["id"], j["kind"], j["status"], j["runs"]) for j in jobs] == [
        (runs[0]["job"], "train", "done", [runs[0]["id"], runs[1]["id"]])]
    assert (jobs[0]["owner"], jobs[0]["owner_name"]) == ("local", "this machine")  # the CLI acts as the machine
    assert json.loads(run_cli("stop", "--job", str(runs[0]["job"]), "--json").stdout) == {
        "job": runs[0]["job"], "status": "done"}
    assert "no job with id 999" in run_cli("resume", "--job", "999").stderr
    assert (lab_home / "runs" / str(runs[1]["id"])).is_dir()
    deleted = run_cli("delete", str(runs[1]["id"]))  # the plain twin's id: the job goes with both runs
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
    listed = json.loads(run_cli("datasets", "--json").stdout)
    assert [(d["name"], d["classes"], d["hflip"], d["native_size"]) for d in listed] == [("folder:letters", 2, False, 30)]
    again = run_cli("import-dataset", str(z), "--name", "letters", "--no-flips")
    assert again.returncode == 2 and "already exists" in again.stderr
