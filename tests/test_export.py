"""Take it home: the exported zip's snippets, run as a person would (a fresh Python in the unzipped folder), give
the lab's own logits; torchvision loads what it can express, strictly; the manifest says why when it cannot."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from resnet_lab import PRESETS, ModelSpec, build_model
from resnet_lab.analysis.subject import from_checkpoint, from_run
from resnet_lab.export import (LAB_SNIPPET, MANIFEST, MODEL_MODULE, README, TORCHVISION_SNIPPET, WEIGHTS, ExportError,
                               export_checkpoint, export_run, exportable_checkpoint, torchvision_match, write_atomic,
                               zip_name)
from resnet_lab.store import Store
from resnet_lab.models.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def unzip(data: bytes, where: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert all("/" not in n and not n.startswith(".") for n in z.namelist())
        z.extractall(where)
    return where


def probe_images(where: Path, channels: str = "RGB") -> list[str]:
    """A square image at 32 px, an oblong one (resized and cropped) and a large JPEG photo (decoded at a reduced
    scale and box-averaged before the resize, as the lab does with big uploads)."""
    rng = np.random.RandomState(3)
    names = []
    for name, (h, w) in (("square.png", (32, 32)), ("oblong.png", (45, 70)), ("photo.jpg", (300, 220))):
        pixels = (rng.rand(h // 10 + 1, w // 10 + 1, 3) * 255).astype("uint8")  # smooth enough to be a photo
        image = Image.fromarray(pixels).resize((w, h), Image.BILINEAR).convert(channels)
        image.save(where / name, **({"quality": 90} if name.endswith(".jpg") else {}))
        names.append(name)
    return names


def _without_the_lab(where: Path, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``where`` as on a machine where ResNet Lab is not installed: no PYTHON* variables and
    ``-E`` (no PYTHONPATH), ``-s`` (no user site); the script's own folder is on the path, as always."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-E", "-s", *args], cwd=where, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_no_lab_in(where: Path) -> None:
    """The folder lies outside the repository and ``import resnet_lab`` fails there, as the snippets are run."""
    assert REPO not in where.resolve().parents
    done = _without_the_lab(where, "-c", "import resnet_lab")
    assert done.returncode != 0 and "No module named 'resnet_lab'" in done.stderr, done.stderr


def run_snippet(where: Path, script: str, *args: str) -> str:
    """``python SCRIPT ARGS`` in ``where``, as after unzipping on a machine without ResNet Lab."""
    done = _without_the_lab(where, script, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def snippet_logits(stdout: str) -> dict[str, torch.Tensor]:
    rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {r["image"]: torch.tensor(r["logits"]) for r in rows}


def lab_logits(subject, where: Path, names: list[str]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {n: subject.model(subject.normalize(subject.load_image(where / n))[None])[0] for n in names}


def test_a_finished_run_goes_home_and_its_snippet_gives_the_labs_logits(finished_run, tmp_path):
    rid = finished_run[0]
    store = Store()
    run = store.runs.get(rid)
    export = export_run(rid, store)
    store.close()
    where = unzip(export.data, tmp_path / "home")
    assert sorted(p.name for p in where.iterdir()) == sorted([MANIFEST, WEIGHTS, MODEL_MODULE, LAB_SNIPPET,
                                                              "README.txt"])
    assert_no_lab_in(where)
    assert export.filename == zip_name(rid, run.name) == f"run{rid}-tiny.zip"

    manifest = json.loads((where / MANIFEST).read_text())
    ckpt_meta = json.loads(Path(run.ckpt_best).read_text())
    assert manifest["model"]["spec"] == run.spec and manifest["run"]["id"] == rid and manifest["run"]["name"] == "tiny"
    assert manifest["class_names"] == ckpt_meta["class_names"]
    assert manifest["input"]["normalization"] == {"mean": ckpt_meta["mean"], "std": ckpt_meta["std"]}
    assert manifest["input"]["size"] == run.data["image_size"] and manifest["data"] == run.data
    assert manifest["train"] == run.train and manifest["accuracy"]["best_val_acc"] == run.best["val/acc"]
    assert manifest["versions"]["torch"] == torch.__version__ and manifest["versions"]["resnet_lab"]
    assert (where / WEIGHTS).read_bytes() == (Path(run.ckpt_best).parent / ckpt_meta["weights"]).read_bytes()
    # a CIFAR-stem net has no torchvision twin, and the manifest says why
    assert manifest["torchvision"]["loadable"] is False
    assert any("CIFAR stem" in why for why in manifest["torchvision"]["why"])

    subject = from_run(run)
    n_params = sum(p.numel() for p in subject.model.parameters())
    assert f"{n_params:,} parameters loaded (strict)" in run_snippet(where, LAB_SNIPPET)
    names = probe_images(where)
    got = snippet_logits(run_snippet(where, LAB_SNIPPET, *names, "--json"))
    want = lab_logits(subject, where, names)
    for name in names:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[names[0]], got[names[1]])  # two different images, two different answers


def _trained_like(model: nn.Module) -> nn.Module:
    """Running statistics and affine BN parameters away from their initial values, as after training."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
            m.running_mean.uniform_(-0.2, 0.2, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
    return model.eval()


def test_a_torchvision_resnet18_loads_strictly_and_gives_the_same_logits(tmp_path):
    spec = PRESETS["resnet18"].replace(num_classes=3)
    torch.manual_seed(0)
    model = _trained_like(build_model(spec))
    tricky = 'x"""\nimport os; os.remove("model.safetensors")  #'  # names people type never reach the code
    meta = {"run_id": 7, "name": tricky, "spec": spec.to_dict(), "class_names": ["cat", tricky, "owl"],
            "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "train": {"epochs": 1},
            "data": {"name": "folder:pets", "image_size": 32}, "metrics": {"val/acc": 0.5}, "best_val_acc": 0.5}
    ckpt = save_checkpoint(tmp_path / "ckpt", "best", model, meta)
    run = SimpleNamespace(id=7, name=tricky, status="done", partner_id=None, created_at=1.0, finished_at=2.0,
                          best={"val/acc": 0.5}, last={"val/acc": 0.45})
    export = export_checkpoint(ckpt, run)
    where = unzip(export.data, tmp_path / "home")
    manifest = json.loads((where / MANIFEST).read_text())
    assert manifest["torchvision"] == {"loadable": True, "call": "torchvision.models.resnet18(num_classes=3)",
                                       "snippet": TORCHVISION_SNIPPET}
    assert manifest["class_names"][1] == tricky and manifest["accuracy"]["last_val_acc"] == 0.45
    for script in (LAB_SNIPPET, TORCHVISION_SNIPPET):
        assert "os.remove" not in (where / script).read_text()

    names = probe_images(where)
    want = lab_logits(from_checkpoint(ckpt), where, names)
    theirs = snippet_logits(run_snippet(where, TORCHVISION_SNIPPET, *names, "--json"))
    ours = snippet_logits(run_snippet(where, LAB_SNIPPET, *names, "--json"))
    for name in names:
        torch.testing.assert_close(theirs[name], want[name], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours[name], want[name], atol=1e-5, rtol=1e-5)
    assert (where / WEIGHTS).exists()  # the tricky name did nothing


def test_a_grey_digits_model_takes_photos_of_dark_ink_as_the_lab_does(tmp_path):
    spec = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), in_channels=1, num_classes=10)
    torch.manual_seed(1)
    meta = {"run_id": 4, "name": "digits", "spec": spec.to_dict(), "class_names": [str(i) for i in range(10)],
            "mean": [0.13], "std": [0.3], "data": {"name": "digits", "image_size": 16}}
    ckpt = save_checkpoint(tmp_path / "ckpt", "best", _trained_like(build_model(spec)), meta)
    where = unzip(export_checkpoint(ckpt).data, tmp_path / "home")
    manifest = json.loads((where / MANIFEST).read_text())
    assert manifest["input"]["ink_on_dark"] is True and manifest["run"]["id"] == 4
    assert manifest["torchvision"]["loadable"] is False
    page = np.full((40, 30, 3), 235, dtype=np.uint8)  # dark ink on white paper: the lab inverts it
    page[8:32, 12:17] = (20, 30, 90)
    Image.fromarray(page).save(where / "ink.png")
    names = ["ink.png", *probe_images(where, channels="L")]
    got = snippet_logits(run_snippet(where, LAB_SNIPPET, *names, "--json"))
    want = lab_logits(from_checkpoint(ckpt), where, names)
    for name in names:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("block, depths", [("basic", (1, 1, 1, 1)), ("bottleneck", (1, 2, 1, 1))])
def test_other_depths_load_into_torchvisions_resnet_class(block, depths):
    spec = ModelSpec(block=block, depths=depths, num_classes=4, zero_init_residual=True)
    match = torchvision_match(spec)
    assert match.ok and match.call.startswith("torchvision.models.resnet.ResNet(")
    theirs = eval(match.call, {"torchvision": torchvision}).eval()  # the snippet's own expression
    ours = _trained_like(build_model(spec))
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_torchvisions_named_resnets_are_recognised(name):
    spec = PRESETS[name].replace(num_classes=5)
    match = torchvision_match(spec)
    assert match.call == f"torchvision.models.{name}(num_classes=5)"
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)(num_classes=5).state_dict()
        ours = build_model(spec).state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in ours.items()}


@pytest.mark.parametrize("change, why", [
    (dict(stem="cifar"), "CIFAR stem"), (dict(in_channels=1), "this model takes 1"),
    (dict(widths=(32, 64, 128, 256)), "32-64-128-256"),
    (dict(skip=False), "plain"), (dict(shortcut="C"), "option C"), (dict(preact=True), "pre-activation"),
    (dict(norm="none"), "no normalization"), (dict(depths=(2, 2, 2), widths=(64, 128, 256)), "four stages"),
])
def test_what_torchvision_cannot_express_is_named(change, why):
    match = torchvision_match(PRESETS["resnet18"].replace(**change))
    assert not match.ok and match.call == "" and any(why in r for r in match.reasons)
    with torch.device("meta"):  # and indeed torchvision's resnet18 would not take the weights
        ours = build_model(PRESETS["resnet18"].replace(**change)).state_dict()
        theirs = torchvision.models.resnet18().state_dict()
    assert {k: v.shape for k, v in ours.items()} != {k: v.shape for k, v in theirs.items()}


def test_a_run_still_training_or_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(ExportError, match="is running: export it when it has finished"):
        exportable_checkpoint(SimpleNamespace(id=3, status="running", ckpt_best=None, ckpt_last=None))
    with pytest.raises(ExportError, match="kept no checkpoint"):
        exportable_checkpoint(SimpleNamespace(id=3, status="failed", ckpt_best=None,
                                              ckpt_last=str(tmp_path / "gone.json")))


def test_the_zip_is_written_whole_and_never_over_a_file_unasked(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = write_atomic(b"zip bytes", folder / "a.zip")
    assert out.read_bytes() == b"zip bytes"
    with pytest.raises(FileExistsError, match="--force"):
        write_atomic(b"other", out)
    write_atomic(b"other", out, overwrite=True)
    assert out.read_bytes() == b"other" and [p.name for p in folder.iterdir()] == ["a.zip"]
    assert zip_name(12, "My model: v2!") == "run12-my-model-v2.zip" and zip_name(3, "???") == "run3.zip"


def _pip_names(where: Path) -> set[str]:
    """What the zip's Python files import from outside the standard library and the zip, as pip names."""
    import ast

    local = {p.stem for p in where.glob("*.py")}
    found = set()
    for script in where.glob("*.py"):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    pip = {"PIL": "pillow"}
    return {pip.get(m, m) for m in found - set(sys.stdlib_module_names) - local}


@pytest.mark.parametrize("spec", [
    ModelSpec(stem="cifar", block="bottleneck", preact=True, shortcut="A", depths=(1, 2), widths=(4, 8),
              num_classes=3),
    ModelSpec(stem="imagenet", block="bottleneck", shortcut="C", norm="none", depths=(1, 1), widths=(4, 8),
              num_classes=4, zero_init_residual=True),
    ModelSpec(stem="cifar", block="basic", skip=False, preact=True, depths=(2, 1), widths=(4, 6), num_classes=2),
], ids=["preact-bottleneck-A", "bottleneck-C-no-norm", "plain-preact-basic"])
def test_the_zip_runs_where_the_lab_is_not_installed_and_its_readme_says_how(spec, tmp_path):
    torch.manual_seed(2)
    meta = {"run_id": 9, "name": "custom", "spec": spec.to_dict(), "class_names": [f"c{i}" for i in range(
        spec.num_classes)], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "data": {"image_size": 32}}
    ckpt = save_checkpoint(tmp_path / "ckpt", "best", _trained_like(build_model(spec)), meta)
    where = unzip(export_checkpoint(ckpt).data, tmp_path / "home")
    assert_no_lab_in(where)
    assert "resnet_lab" not in _pip_names(where)

    readme = (where / README).read_text()
    install = next(line.split("pip install", 1)[1].split() for line in readme.splitlines() if "pip install" in line)
    assert set(install) >= _pip_names(where)  # the one command installs everything the Python files import
    assert f"python {LAB_SNIPPET} photo.jpg" in readme and MODEL_MODULE in readme

    names = probe_images(where)
    got = snippet_logits(run_snippet(where, LAB_SNIPPET, *names, "--json"))
    want = lab_logits(from_checkpoint(ckpt), where, names)
    for name in names:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5)
