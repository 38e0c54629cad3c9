"""`python -m resnet_lab explain-quality`: the printed areas, infidelities and best depth are the analysis's, for the
run and its twin; bad input is a one-line error and exit code 2."""

import json

import pytest

from resnet_lab.analysis import from_run, localization_by_depth, trust
from resnet_lab.cli import main
from resnet_lab.data.registry import load_dataset
from resnet_lab.store import Store
from tests.helpers import cli


def run_cli(*args):
    return cli.run_cli("explain-quality", *args)


def test_explain_quality_json_is_the_analysis_for_both_models(finished_run):
    r = run_cli("--run", finished_run[0], "--twin", "--n", 4, "--methods", "gradcam", "saliency",
                "--depth-images", 16, "--steps", 8, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["images"] == 4 and got["steps"] == 8 and got["layer"] == "layer3" and got["depth_images"] == 16
    assert [m["run"] for m in got["models"]] == finished_run
    store = Store()
    for row, rid in zip(got["models"], finished_run):
        s = from_run(store.runs.get(rid))
        data = load_dataset(s.data)
        x = s.normalize(data.x_val[:4])
        want = trust(s.model, x, data.y_val[:4], ("gradcam", "saliency"), "layer3", masks=data.mask_val[:4], steps=8)
        assert [m["method"] for m in row["methods"]] == ["gradcam", "saliency"]
        assert [m["method"] for m in row["references"]] == ["random", "mask"]
        for d, t in zip(row["methods"] + row["references"], want):
            assert d["deletion_auc"] == pytest.approx(t.deletion.auc, abs=1e-5)
            assert d["insertion_auc"] == pytest.approx(t.insertion.auc, abs=1e-5)
            assert (d["infidelity"] is None) == (t.infidelity is None)
            if t.infidelity is not None:
                assert d["infidelity"] == pytest.approx(t.infidelity, rel=1e-3)
        depth = localization_by_depth(s.model, s.normalize(data.x_val[:16]), data.mask_val[:16], data.y_val[:16])
        layer, best = depth.best()
        assert row["depth"]["best_layer"] == layer
        assert row["depth"]["best_energy"] == pytest.approx(best.energy, abs=1e-5)
        assert [d["layer"] for d in row["depth"]["layers"]] == list(depth.layers)
    store.close()


def test_explain_quality_prints_a_table_per_model(finished_run, capsys):
    assert main(["explain-quality", "--run", str(finished_run[1]), "--n", "2", "--methods", "occlusion",
                 "--depth-images", "8", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "Occlusion" in out and "object mask" in out and "random order" in out
    assert "Grad-CAM localises best at layer" in out
    assert out.count("deletion") >= 2  # the legend line and the table header


def test_explain_quality_refuses_bad_runs_layers_and_counts(finished_run, capsys):
    """In process (same parser and error handling as ``python -m resnet_lab``, whose exit code main returns)."""
    def refused(*args) -> str:
        assert main(["explain-quality", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err
        return err

    refused("--run", 999)
    assert "valid layers" in refused("--run", finished_run[0], "--layer", "fc", "--n", 1)
    assert "--n must be at least 1" in refused("--run", finished_run[0], "--n", 0)
    with pytest.raises(SystemExit) as bad:  # argparse: unknown method
        main(["explain-quality", "--run", str(finished_run[0]), "--methods", "magic"])
    assert bad.value.code == 2 and "invalid choice" in capsys.readouterr().err
    r = run_cli("--run", 999)  # and as a real process: exit status 2, one line
    assert r.returncode == 2 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
