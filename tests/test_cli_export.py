"""`python -m resnet_lab export` and `export-tensorboard`: a real finished run becomes a zip, and its curves become
TensorBoard event files that TensorBoard's own reader gives back point for point; without the optional
tensorboard package the command says how to get it and exits with status 2."""

import json
import sys
import zipfile

import pytest

from resnet_lab.cli import main
from resnet_lab.export import LAB_SNIPPET, MANIFEST, MODEL_MODULE, WEIGHTS
from resnet_lab.store import Store

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="make tensorboard (the test setup installs it)")


def test_export_writes_the_zip_and_refuses_to_overwrite_it(finished_run, tmp_path, capsys):
    rid = finished_run[0]
    out = tmp_path / "take_home.zip"
    assert main(["export", "--run", str(rid), str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["out"] == str(out) and report["bytes"] == out.stat().st_size
    with zipfile.ZipFile(out) as z:
        assert {MANIFEST, WEIGHTS, MODEL_MODULE, LAB_SNIPPET} <= set(z.namelist())
        assert json.loads(z.read(MANIFEST))["run"]["id"] == rid
    assert report["manifest"]["torchvision"]["loadable"] is False

    assert main(["export", "--run", str(rid), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "--run", str(rid), str(out), "--force"]) == 0
    assert f"run {rid}: wrote {out}" in capsys.readouterr().out
    assert main(["export", "--run", "999", str(tmp_path / "x.zip")]) == 2
    assert "no run with id 999" in capsys.readouterr().err


def _read_events(directory):
    acc = event_accumulator.EventAccumulator(str(directory), size_guidance={event_accumulator.SCALARS: 0,
                                                                            event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def test_tensorboard_export_reads_back_every_metric_at_its_step(finished_run, tmp_path, capsys):
    rid = finished_run[0]
    store = Store()
    run, metrics, (layers, grad_steps, norms) = (store.runs.get(rid), store.runs.metrics(rid),
                                                 store.runs.grad_norms(rid))
    store.close()
    out = tmp_path / "tb"
    assert main(["export-tensorboard", "--run", str(rid), str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["event_files"] and all(p.startswith(str(out)) for p in report["event_files"])

    acc = _read_events(out)
    scalars = set(acc.Tags()["scalars"])
    assert set(metrics) <= scalars and "val/acc" in metrics and "train/loss" in metrics
    for key, points in metrics.items():
        got = [(e.step, e.value) for e in acc.Scalars(key)]
        assert [s for s, _ in got] == [step for step, _, _ in points]
        assert [v for _, v in got] == pytest.approx([value for _, _, value in points], rel=1e-6)  # float32
    assert layers and grad_steps
    for i, layer in enumerate(layers):
        got = acc.Scalars(f"grad_norm/{layer}")
        assert [e.step for e in got] == list(grad_steps)
        assert [e.value for e in got] == pytest.approx([row[i] for row in norms], rel=1e-6)
    assert report["scalars"] == {**{k: len(v) for k, v in metrics.items()},
                                 **{f"grad_norm/{n}": len(grad_steps) for n in layers}}

    texts = {t.removesuffix("/text_summary"): acc.Tensors(t)[0].tensor_proto.string_val[0].decode()
             for t in acc.Tags()["tensors"] if t.endswith("/text_summary")}
    for group, settings in (("spec", run.spec), ("data", run.data), ("train", run.train)):
        body = texts[f"settings/{group}"]
        assert json.loads(body.removeprefix("```json\n").removesuffix("\n```")) == settings
    assert '"name": "tiny"' in texts["run"]

    # a second run into the same folder would merge two runs' curves: refused
    assert main(["export-tensorboard", "--run", str(rid), str(out)]) == 2
    assert "already holds TensorBoard event files" in capsys.readouterr().err


def test_without_tensorboard_the_command_says_how_to_get_it(finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "tb"
    assert main(["export-tensorboard", "--run", str(finished_run[0]), str(out)]) == 2
    err = capsys.readouterr().err
    assert "pip install tensorboard" in err and "make tensorboard" in err
    assert not out.exists()
