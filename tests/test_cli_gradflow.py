"""``python -m resnet_lab gradflow``: JSON norms equal the analysis' (at init) and a direct backward loop (at a
run's checkpoint); bad inputs exit 2 with a clear message."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from resnet_lab.analysis import from_run
from resnet_lab.analysis.gradflow import cifar_spec, flow_batch, flow_data, init_flow
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.cli import main
from resnet_lab.data.registry import load_dataset
from resnet_lab.experiments.learned import check_runs
from resnet_lab.models import get_preset
from resnet_lab.store import Store
from tests.helpers.cli import run_cli


def _run(capsys, *argv):
    code = main(["gradflow", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_model_json_norms_equal_init_flow(capsys):
    code, out, err = _run(capsys, "--model", "plain20", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["batch"] == 64 and result["seed"] == 0 and result["data"]["name"] == "shapes"
    (m,) = result["models"]
    spec = get_preset("plain20").replace(num_classes=6)  # fitted to shapes' 6 classes, as training does
    assert m["spec"] == spec.to_dict()
    x, y = flow_batch(load_dataset(flow_data("shapes")), 64, seed=0)
    ref = init_flow(spec, x, y, seed=0)
    assert [layer["name"] for layer in m["layers"]] == list(ref.names) and len(ref.names) == 20
    assert [layer["grad_norm"] for layer in m["layers"]] == pytest.approx(ref.grad_norms, rel=1e-5)
    assert [a["std"] for a in m["activation_std"]] == pytest.approx(ref.act_stds, rel=1e-5)
    assert m["conv_spread"] == pytest.approx(ref.conv_spread, rel=1e-5)
    assert m["first_last_ratio"] == pytest.approx(ref.first_last_ratio, rel=1e-5)
    assert m["verdict"] == {"word": ref.verdict().word, "sentence": ref.verdict().sentence}


def test_depth_twin_prints_a_table_of_both_models(capsys):
    code, out, err = _run(capsys, "--depth", "8", "--twin", "--seed", "2", "--batch", "16")
    assert code == 0, err
    assert "ResNet-8" in out and "Plain-8" in out and "seed 2" in out and "16 shapes" in out
    x, y = flow_batch(load_dataset(flow_data("shapes")), 16, seed=0)
    res = init_flow(cifar_spec(8, num_classes=6), x, y, seed=2)
    plain = init_flow(cifar_spec(8, skip=False, num_classes=6), x, y, seed=2)
    row = next(line for line in out.splitlines() if line.strip().startswith("layer2.0.conv1"))
    assert row.split()[2:] == [f"{res.grad_norms[3]:.3e}", f"{plain.grad_norms[3]:.3e}"]
    assert res.verdict().sentence in out and plain.verdict().sentence in out


def test_run_json_equals_a_direct_backward_loop_at_the_checkpoint(capsys, finished_run):
    resnet_id, plain_id = finished_run
    code, out, err = _run(capsys, "--run", str(resnet_id), "--twin", "--batch", "32", "--json", "--device", "cpu")
    assert code == 0, err
    result = json.loads(out)
    assert [m["run"] for m in result["models"]] == [resnet_id, plain_id] and result["checkpoint"] is True
    store = Store()
    for m, rid in zip(result["models"], (resnet_id, plain_id)):
        subject = from_run(store.runs.get(rid))
        x, y = flow_batch(load_dataset(subject.data), 32, seed=0, mean=subject.mean, std=subject.std)
        model = copy.deepcopy(subject.model).train()
        F.cross_entropy(model(x), y).backward()
        ref = [float(p.grad.norm()) for p in model.parameters() if p.dim() > 1]
        assert [layer["grad_norm"] for layer in m["layers"]] == pytest.approx(ref, rel=1e-5)
    checks = check_runs(store, [store.runs.get(i) for i in (resnet_id, plain_id)])
    assert [m["learned"]["learned"] for m in result["models"]] == [c.learned for c in checks]
    assert result["inconclusive_why"] == inconclusive(checks)
    assert result["inconclusive"] == (inconclusive(checks) is not None)


def test_a_run_at_chance_is_said_inconclusive_before_its_gradients(capsys, private_trained_home, run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.17)
    code, out, err = _run(capsys, "--run", str(ids[0]), "--twin", "--batch", "16", "--json", "--device", "cpu")
    assert code == 0, err
    result = json.loads(out)
    assert result["inconclusive"] is True
    assert result["inconclusive_why"].startswith("inconclusive: these models did not learn (ResNet #")
    assert [m["learned"]["learned"] for m in result["models"]] == [False, False]
    code, out, err = _run(capsys, "--run", str(ids[0]), "--twin", "--batch", "16", "--device", "cpu")
    assert code == 0 and out.splitlines()[1].strip().startswith("inconclusive: these models did not learn")


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet9"], "unknown model preset 'resnet9'"),
    (["--depth", "21"], "depth=21 is not a CIFAR ResNet depth"),
    (["--run", "999"], "no run with id 999"),
    (["--depth", "8", "--batch", "1"], "--batch must be at least 2"),
    (["--depth", "8", "--seed", "-1"], "--seed must be a non-negative integer"),
    (["--depth", "8", "--data", "imagenet"], "not a known dataset"),
    (["--spec", "/nonexistent/spec.json"], "No such file"),
])
def test_bad_inputs_exit_2_with_a_clear_message(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err


def test_data_does_not_apply_to_a_run(capsys, finished_run):
    code, _, err = _run(capsys, "--run", str(finished_run[0]), "--data", "digits")
    assert code == 2 and "--data does not apply to --run" in err


def test_a_grey_dataset_prints_json_of_a_one_channel_model(lab_home):
    proc = run_cli("gradflow", "--depth", 8, "--batch", 8, "--data", "digits", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    (m,) = result["models"]
    assert result["data"]["name"] == "digits" and m["spec"]["in_channels"] == 1 and m["spec"]["num_classes"] == 10
    assert len(m["layers"]) == 8 and all(layer["grad_norm"] > 0 for layer in m["layers"])
    assert torch.isfinite(torch.tensor([layer["grad_norm"] for layer in m["layers"]])).all()
