import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_trainer_overhead_bench_runs_and_prints_a_ratio():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "trainer_overhead.py"), "--size", "16", "--batch", "8",
                        "--warmup", "10", "--steps", "10", "--repeats", "1", "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ratio = float(r.stdout.split("ratio lab/bare = ")[1].split()[0])
    assert 0 < ratio < 10


def test_linear_probe_bench_runs_and_cached_features_win():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "linear_probe.py"), "--size", "16", "--images", "256",
                        "--batch", "32", "--epochs", "3", "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ratio = float(r.stdout.split("ratio frozen/cached = ")[1].split("x")[0])
    assert ratio > 1  # the target (>= 5) is measured at full size by the script itself, not asserted here


def test_inspect_cost_bench_quick_json_reports_positive_finite_ratios():
    import json
    import math

    r = subprocess.run([sys.executable, str(ROOT / "bench" / "inspect_cost.py"), "--quick", "--json", "--threads", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # no --strict: a missed target never fails the run
    report = json.loads(r.stdout)
    assert report["quick"] is True and report["targets"] == {"grad_cam/forward_backward": 1.5,
                                                             "feature_maps_all/forward": 1.3}
    assert [x["model"] for x in report["results"]] == ["resnet20", "resnet18"]
    assert isinstance(report["passed"], bool)
    for res in report["results"]:
        assert set(res["median_ms"]) == {"forward", "forward_backward", "grad_cam", "feature_maps_all",
                                         "feature_maps_one"}
        assert all(math.isfinite(v) and v > 0 for v in res["median_ms"].values())
        for key in report["targets"]:
            ratio = res["ratios"][key]
            for estimate in ("value", "paired", "best"):  # timings themselves are never asserted
                assert math.isfinite(ratio[estimate]) and ratio[estimate] > 0
            assert ratio["passed"] is (ratio["value"] <= ratio["target"])
