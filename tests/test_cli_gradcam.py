"""`python -m resnet_lab gradcam ...` against the trained home of `finished_run`, in this process (the images it draws
equal those computed here bit for bit)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_lab.analysis import attribute, cam_layers, from_run, predict
from resnet_lab.data.shapes import SHAPE_CLASSES, generate_shapes
from resnet_lab.store import Store
from resnet_lab.viz.inspect import overlay, to_pil
from tests.helpers.cli import run_cli


def run_gradcam(*args):
    return run_cli("gradcam", *args)


@pytest.fixture
def shape_png(tmp_path):
    """A validation-stream shapes image (a square, class 1) written as a PNG."""
    x, y, _ = generate_shapes(12, 32, seed=0, split="val")
    i = int((y == 1).nonzero()[0])
    path = tmp_path / "square.png"
    to_pil(x[i]).save(path)
    return path


def expected(run_id, image_path, target=None, layer=None, method="gradcam", alpha=0.5):
    """What the CLI should draw, computed in this process: (overlay PIL image, target, prediction, prob)."""
    store = Store()
    subject = from_run(store.runs.get(run_id))
    store.close()
    image = subject.load_image(image_path)
    x = subject.normalize(image[None])
    probs, classes = predict(subject.model, x, k=1)
    pred = int(classes[0, 0])
    t = pred if target is None else target
    heat = attribute(subject.model, x, t, method, layer or cam_layers(subject.model)[0])[0]
    return overlay(image, heat, alpha, size=256), t, pred, float(probs[0, 0])


def pixels(path_or_image):
    img = Image.open(path_or_image) if isinstance(path_or_image, Path) else path_or_image
    return np.asarray(img.convert("RGB"))


def test_gradcam_writes_the_overlay_computed_in_process(finished_run, shape_png, tmp_path):
    out = tmp_path / "cam.png"
    r = run_gradcam("--run", finished_run[0], "--image", shape_png, "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    want, target, pred, prob = expected(finished_run[0], shape_png)
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == (256, 256)
    assert np.array_equal(pixels(out), pixels(want))
    assert data["run"] == finished_run[0] and data["method"] == "gradcam" and data["out"] == str(out)
    assert data["layer"] == "layer3"  # the deepest stage of the tiny 3-stage net (cam_layers()[0])
    assert data["target"] == {"index": target, "name": SHAPE_CLASSES[target]} and target == pred
    assert data["prediction"]["index"] == pred and data["prediction"]["name"] == SHAPE_CLASSES[pred]
    assert data["prediction"]["probability"] == pytest.approx(prob, abs=1e-6)
    assert "twin" not in data
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind


def test_gradcam_twin_side_by_side_explains_the_same_class(finished_run, shape_png, tmp_path):
    resnet, plain = finished_run
    out = tmp_path / "pair.png"
    r = run_gradcam("--run", resnet, "--image", shape_png, "--twin", "--layer", "layer2", "--alpha", "0.7",
                    "--target", "4", "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    got = pixels(out)
    assert got.shape == (256, 512, 3)
    left, *_ = expected(resnet, shape_png, target=4, layer="layer2", alpha=0.7)
    right, *_ = expected(plain, shape_png, target=4, layer="layer2", alpha=0.7)
    assert np.array_equal(got[:, :256], pixels(left)) and np.array_equal(got[:, 256:], pixels(right))
    assert data["run"] == resnet and data["twin"]["run"] == plain
    assert data["target"] == data["twin"]["target"] == {"index": 4, "name": "ring"}
    assert data["layer"] == data["twin"]["layer"] == "layer2"
    # the partner is found from either side: the plain run's twin is the ResNet
    back = run_gradcam("--run", plain, "--image", shape_png, "--twin", "--out", tmp_path / "back.png")
    assert back.returncode == 0, back.stderr
    data = json.loads(back.stdout)
    assert data["run"] == plain and data["twin"]["run"] == resnet
    assert data["twin"]["target"]["index"] == data["prediction"]["index"]  # default: the main run's prediction


def test_gradcam_target_by_name_equals_target_by_index(finished_run, shape_png, tmp_path):
    by_name, by_index = tmp_path / "name.png", tmp_path / "index.png"
    r = run_gradcam("--run", finished_run[0], "--image", shape_png, "--target", "Triangle", "--method", "saliency",
                    "--out", by_name)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["target"] == {"index": 2, "name": "triangle"} and data["method"] == "saliency"
    assert data["layer"] is None  # saliency reads no layer
    r = run_gradcam("--run", finished_run[0], "--image", shape_png, "--target", "2", "--method", "saliency",
                    "--out", by_index)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(pixels(by_name), pixels(by_index))
    want, *_ = expected(finished_run[0], shape_png, target=2, method="saliency")
    assert np.array_equal(pixels(by_name), pixels(want))


@pytest.mark.parametrize("name, content", [("noise.png", os.urandom(2048)),
                                           ("page.jpg", b"<!DOCTYPE html><html><body>not a photo</body></html>")])
def test_gradcam_refuses_a_bad_image_with_one_clear_line(finished_run, tmp_path, name, content):
    bad = tmp_path / name
    bad.write_bytes(content)
    out = tmp_path / "cam.png"
    r = run_gradcam("--run", finished_run[0], "--image", bad, "--out", out)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("error: image") and "refused" in r.stderr and "allowed: JPEG, PNG" in r.stderr
    assert r.stdout == "" and not out.exists()


def test_gradcam_unknown_run_and_unknown_layer(finished_run, shape_png, tmp_path):
    r = run_gradcam("--run", 999, "--image", shape_png, "--out", tmp_path / "a.png")
    assert r.returncode == 2 and "no run with id 999" in r.stderr and "Traceback" not in r.stderr
    r = run_gradcam("--run", finished_run[0], "--image", shape_png, "--layer", "layer9", "--out", tmp_path / "b.png")
    assert r.returncode == 2 and "unknown layer 'layer9'" in r.stderr and "Traceback" not in r.stderr
    store = Store()
    valid = cam_layers(from_run(store.runs.get(finished_run[0])).model)
    store.close()
    assert "valid layers: " + ", ".join(valid) in r.stderr
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()


def test_gradcam_other_bad_arguments_exit_2(finished_run, shape_png, tmp_path):
    run = finished_run[0]
    r = run_gradcam("--run", run, "--image", shape_png, "--target", "7", "--out", tmp_path / "c.png")
    assert r.returncode == 2 and "target class 7 is out of range" in r.stderr and "5 star" in r.stderr
    r = run_gradcam("--run", run, "--image", shape_png, "--target", "hexagon", "--out", tmp_path / "c.png")
    assert r.returncode == 2 and "unknown target class 'hexagon'" in r.stderr and "0 circle" in r.stderr
    r = run_gradcam("--run", run, "--image", shape_png, "--out", tmp_path / "missing" / "c.png")
    assert r.returncode == 2 and "does not exist" in r.stderr and "missing" in r.stderr
    assert not (tmp_path / "c.png").exists() and "Traceback" not in r.stderr
