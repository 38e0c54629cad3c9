import subprocess
import sys
from pathlib import Path

import pytest

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


def test_throughput_bench_quick_json_reports_every_model_with_and_without_skips():
    import json
    import math

    r = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--quick", "--device", "cpu", "--json",
                        "--models", "resnet20,resnet18"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["quick"] is True and report["device_kind"] == "cpu" and report["gpu"] is None
    assert report["peak_bf16_tflops"] is None and report["epoch"] is None and report["checks"] == {}
    assert set(report["targets"]) == {"resnet20_images_per_s", "resnet18_224_images_per_s", "resnet20_epoch_s"}
    assert [(x["model"], x["skip"], x["image_size"]) for x in report["results"]] == [
        ("resnet20", True, 16), ("plain20", False, 16), ("resnet18", True, 32), ("plain18", False, 32)]
    for x in report["results"]:
        for key in ("images_per_s", "train_gflop_per_image", "tflops"):  # figures are never asserted, only their form
            assert math.isfinite(x[key]) and x[key] > 0, (x["model"], key)
        assert x["mfu"] is None and x["compile_s"] is None and x["batch"] == 4


def test_throughput_knows_the_bf16_peak_of_the_usual_gpus():
    sys.path.insert(0, str(ROOT / "bench"))
    from throughput import peak_tflops

    assert peak_tflops("NVIDIA H200") == peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0 and peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops("NVIDIA L40S") == 362.0 and peak_tflops("NVIDIA L4") == 121.0
    assert peak_tflops("Some Future GPU") is None


def test_time_to_accuracy_bench_quick_json_compares_the_lab_and_the_paper_loop():
    import json

    r = subprocess.run([sys.executable, str(ROOT / "bench" / "time_to_accuracy.py"), "--quick", "--json",
                        "--datasets", "digits", "--models", "resnet20", "--threads", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["rows"]
    assert row["dataset"] == "digits" and row["model"] == "resnet20" and row["train_images"] == 128
    for loop in ("lab", "paper"):  # a target of 0 is reached at the first validation pass
        assert row[loop]["seconds"] > 0 and row[loop]["steps"] >= 1 and 0 <= row[loop]["best"] <= 1
    assert row["lab_over_paper_time"] > 0


def test_classroom_bench_quick_json_reports_the_class_it_served():
    import json
    import math

    r = subprocess.run([sys.executable, str(ROOT / "bench" / "classroom.py"), "--quick", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # no --strict: a missed target never fails the run
    report = json.loads(r.stdout)
    assert report["quick"] is True and report["students"] == 2
    # one real Chromium page (S01) and one protocol student (S02, bench/st_client.py: Streamlit's messages, no browser)
    assert report["clients"] == {"browsers": 1, "protocol": 1}
    assert report["targets"] == {"server_cpu_pct": 50.0, "throughput_ratio": 0.9, "page_errors": 0}
    w, q = report["watching"], report["pressing"]
    for key in ("no_pages_before", "pages_open", "no_pages_after"):  # figures are never asserted, only their form
        assert math.isfinite(w[key]["server_cpu_pct"]) and w[key]["server_cpu_pct"] >= 0
        assert w[key]["server_rss_mb"] > 0 and w[key]["seconds"] > 0
    assert 0 <= w["pages_live"] <= 2 and isinstance(report["page_errors"], int)
    # what is asserted is what was recorded: two presses each, every job once, each student shown a place
    assert q["jobs_pressed"] == q["jobs_recorded"] == 4 and q["lost"] == q["doubled"] == 0
    assert sorted(q["pressed_order"]) == sorted(q["start_order"]) == ["S01", "S01", "S02", "S02"]
    assert len(q["queue_seen_s"]) == 2 and isinstance(q["turns_alternate"], bool)
    # every page showed its place in line (the job card's words, read by the bench: a page that never shows it, or
    # a bench that no longer reads it, leaves None after waiting the page timeout)
    assert all(s is not None and s >= 0 for s in q["queue_seen_s"]), q["places_shown"]
    assert set(report["passed"]) == {"server_cpu_pct", "throughput_ratio", "server_cost_ratio", "page_errors",
                                     "pages_live", "jobs_recorded"}
    if report["cores"] >= 2:  # the server moved off the run's core for a window of the same pages
        assert w["pages_open_server_apart"]["windows"] == w["pages_open"]["windows"] == 1
        assert w["server_cost_ratio"] is None or w["server_cost_ratio"] > 0
    # what the pages sent, by their own clock: a live page ticks its two fragments at most
    assert len(w["ticks_per_s_per_page"]) == 2 and all(0 <= n <= 2 for n in w["ticking_fragments_per_page"])
    # and what the server saw of them (its rerun guard's counts): every page connected, its timer reruns arrived
    assert len(w["websocket_connections_per_page"]) == 2 and min(w["websocket_connections_per_page"]) >= 1
    saw = w["server_saw"]
    if sum(w["ticks_per_s_per_page"]) > 0:
        assert saw["sessions_ticking"] >= 1 and sum(saw["ticks_run_per_s_per_session"]) > 0
    assert 0 <= saw["dropped_share"] <= 1 and saw["full_reruns"] >= 0
    # the protocol student: live (its step count moved), on one WebSocket, no error, both its presses recorded once
    # and its place shown (S02 is the protocol student)
    assert w["pages_live_by_kind"]["protocol"] == 1 and w["websocket_connections_by_kind"]["protocol"] == [1]
    assert report["page_errors_by_kind"]["protocol"] == 0, report["page_error_samples"]
    assert q["pressed_order"].count("S02") == 2 and q["queue_seen_s"][1] is not None
    # and faithful: over the same span, it sent what the Chromium page sent — ticks only (no heartbeat: a page not
    # in a host frame sends none), the same two fragments, each at the page's pace (median interval within 15%)
    cmp = w["browsers_vs_protocol"]
    assert set(cmp["browser"]["messages_per_s_per_page"]) == set(cmp["protocol"]["messages_per_s_per_page"]) == {
        "tick"}, cmp
    assert len(cmp["protocol"]["ticks_per_s_per_page_by_fragment"]) == 2 and cmp["faithful"] is True, cmp


def test_eta_bench_quick_json_compares_every_prediction_with_what_happened():
    import json

    r = subprocess.run([sys.executable, str(ROOT / "bench" / "eta.py"), "--quick", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["quick"] is True and [x["round"] for x in report["rounds"]] == ["warm-up", "untimed", "timed"]
    warm, _, timed = report["rounds"]
    assert warm["jobs"][0]["end"]["predicted_s"] is None  # a fresh lab has timed nothing: no time, not a guess
    for row in timed["jobs"]:  # figures are never asserted, only their form: every job ran, and was predicted
        assert row["status"] == "done" and row["end"]["range_s"] is None and row["end"]["predicted_s"] > 0
        assert row["end"]["actual_s"] > 0 and (row["end"]["ratio"] is None or row["end"]["ratio"] > 0)
    assert timed["end"]["predicted"] >= 1 and timed["end"]["median_error_x"] >= 1


def test_cluster_bench_quick_json_runs_the_same_jobs_locally_and_on_a_two_node_ray_cluster():
    import json

    pytest.importorskip("ray")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "cluster.py"), "--quick", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["jobs"] == 6 and report["owners"] == 3 and report["lanes"] == 2
    for path in ("local", "ray"):  # what is asserted is what was recorded, never a timing
        x = report[path]
        assert x["path"] == path and x["done"] == 6 and x["lost"] == x["doubled"] == 0
        assert x["dispatched_in_first_pump"] == 2 and x["fair_turns"] is True  # two lanes; owners took turns
        assert sorted(x["start_order_owners"]) == sorted(str(i) for i in (1, 1, 2, 2, 3, 3))
        assert x["start_order_owners"][:3] == ["1", "2", "3"]  # every owner's first before anyone's second
        assert x["delay_s_median"] is not None and x["delay_s_median"] > 0
    assert set(report["passed"]) == {"added_start", "nothing_lost", "fair_turns"} and report["passed"]["nothing_lost"]


@pytest.mark.unit  # no server, no process: the client's bookkeeping alone
def test_protocol_student_keeps_the_page_as_the_server_sends_it():
    """bench/st_client.py without a server: the element tree, the widgets' values it would send, the page hash of
    the navigation, and the frontend's clearing of stale nodes after a full run and after a fragment run (what the
    quick classroom bench relies on to see headings, buttons and places)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from st_client import ProtocolStudent
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    def delta(path, fragment="", **element):
        msg = ForwardMsg()
        msg.metadata.delta_path.extend(path)
        if fragment:
            msg.delta.fragment_id = fragment
        ((kind, fields),) = element.items()
        for k, v in fields.items():
            field = getattr(msg.delta.new_element, kind)
            if isinstance(v, list):
                getattr(field, k).extend(v)
            else:
                setattr(field, k, v)
        return msg

    def finished(status):
        msg = ForwardMsg()
        msg.script_finished = status
        return msg

    page = ProtocolStudent("http://127.0.0.1:1", "train", "me=t")
    hello = ForwardMsg()
    hello.new_session.page_script_hash = "main"
    nav = ForwardMsg()
    nav.navigation.page_script_hash = "train-page"
    for msg in (hello, nav, delta([0, 0], heading={"body": "Run #7: resnet20 · shapes"}),
                delta([0, 1], button={"id": "b1", "label": "Train"}),
                delta([0, 2], selectbox={"id": "s1", "label": "preset", "options": ["a", "b"], "default": 1}),
                delta([0, 3], number_input={"id": "n1", "label": "epochs", "default": 5.0, "data_type": 0}),
                delta([0, 4], "frag", progress={"value": 1, "text": "step 1\\,200 of 62,000 · 2 jobs ahead"}),
                delta([1, 0], markdown={"body": "sidebar: not the main area"}),
                finished(ForwardMsg.FINISHED_SUCCESSFULLY)):
        page.take(msg)
    assert page.page_script_hash == "train-page" and page.headings() == ["Run #7: resnet20 · shapes"]
    assert page.button("Train") == ("b1", "") and page.button("Stop") is None
    assert {w.id: w.WhichOneof("value") for w in page.widgets.values()} == {"s1": "string_value", "n1": "int_value"}
    assert page.widgets["s1"].string_value == "b" and page.widgets["n1"].int_value == 5
    assert "step 1,200 of 62,000 · 2 jobs ahead" in page.text() and "sidebar" not in page.text()
    # a fragment run rewrites only its own nodes: the others stay; a full run that no longer shows the button drops it
    # and its widget's value with it
    for msg in (hello, delta([0, 4], "frag", progress={"value": 2, "text": "step 1,300 of 62,000 · running"}),
                finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)):
        page.take(msg)
    assert "step 1,300" in page.text() and page.button("Train") == ("b1", "")
    for msg in (hello, delta([0, 0], heading={"body": "Run #8: plain"}), finished(ForwardMsg.FINISHED_SUCCESSFULLY)):
        page.take(msg)
    assert page.headings() == ["Run #8: plain"] and page.button("Train") is None and page.widgets == {}


def test_speed_bench_quick_json_reports_each_preset_with_positive_figures():
    import json
    import math

    r = subprocess.run([sys.executable, str(ROOT / "bench" / "speed.py"), "--quick", "--device", "cpu", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["quick"] is True and report["device"] == "cpu" and report["device_name"].startswith("CPU: ")
    assert [x["preset"] for x in report["results"]] == ["resnet20", "plain20"]
    for res in report["results"]:  # the figures themselves are never asserted: only that they are figures
        assert (res["batch"], res["infer_batch"], res["image_size"], res["train_steps"]) == (64, 64, 32, 1)
        assert all(math.isfinite(res[k]) and res[k] > 0 for k in ("train_images_per_s", "latency_ms", "images_per_s"))
