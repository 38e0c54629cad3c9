"""Speed on this device, without processes: the measurement's figures and setup, the job's handler (stopped between
presets, what it measured kept), the cache per device and preset that :func:`submit_speed` honours, and the pages,
which only read what was measured — they never time anything themselves."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from resnet_lab.experiments.speed import (QUICK_PLAN, SPEED_JOB, Speed, lab_device_name, measure, measured,
                                          setup_for, submit_speed)
from resnet_lab.experiments.speed.jobs import _run
from resnet_lab.experiments.speed.measure import Plan, check_presets, cpu_name, default_presets
from resnet_lab.jobs.handlers import JobContext
from resnet_lab.kinds import KINDS
from resnet_lab.models.presets import PRESETS
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store

ROOT = Path(__file__).resolve().parents[2]
TINY = ModelSpec(stem="cifar", block="basic", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3)


def fake_speed(preset: str, name: str, train: float = 100.0) -> Speed:
    return Speed(preset, "cpu", name, train, 3.0, 500.0, 64, 1.0, image_size=32)


def test_a_measurement_gives_positive_finite_figures_and_counts_its_timed_runs():
    plan = Plan(warmup=1, train_steps=2, latency_runs=3, infer_runs=2, budget_s=60.0)
    t = measure(TINY, image_size=8, batch=4, plan=plan, infer_batch=6)
    assert (t.train_steps, t.latency_runs, t.infer_runs) == (2, 3, 2)  # a generous budget: each maximum is reached
    assert (t.batch, t.infer_batch, t.image_size) == (4, 6, 8)
    for v in (t.train_images_per_s, t.latency_ms, t.images_per_s, t.seconds):
        assert math.isfinite(v) and v > 0
    quick = measure(TINY, image_size=8, batch=4, plan=Plan(warmup=0, train_steps=9, latency_runs=9, infer_runs=9,
                                                           budget_s=0.0))
    assert (quick.train_steps, quick.latency_runs, quick.infer_runs) == (1, 1, 1)  # no budget: one timed run each


def test_a_measurement_leaves_the_random_state_and_flush_denormal_as_they_were():
    import torch

    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    measure(TINY, image_size=8, batch=2, plan=QUICK_PLAN)
    assert torch.equal(torch.rand(3), expected)
    assert torch.tensor([1e-39]).item() != 0.0  # denormals are kept again after the measurement


def test_each_preset_is_measured_at_its_recipe_size_and_batch():
    twin = setup_for("plain20")
    assert setup_for("resnet20") == type(twin)("resnet20", twin.image_size, twin.batch)  # a twin: as its ResNet
    s20, s18 = setup_for("resnet20"), setup_for("resnet18")
    assert (s20.image_size, s20.batch, s20.infer_batch) == (32, 64, 64)  # CIFAR-10's recipe
    assert (s18.image_size, s18.batch) == (64, 64)  # Imagenette's: an ImageNet stem at a CPU run's size
    assert setup_for("resnet18", image_size=224, batch=8).image_size == 224
    with pytest.raises(ValueError, match="batch must be a whole number"):
        setup_for("resnet20", batch=0)


def test_the_default_presets_are_every_preset_and_on_a_cpu_all_but_resnet1202():
    assert default_presets("cuda") == list(PRESETS)
    assert default_presets("cpu") == [p for p in PRESETS if p != "resnet1202"]
    assert {"resnet20", "plain20", "resnet18", "plain18"} <= set(default_presets("cpu"))
    assert check_presets(["resnet20", "plain20", "resnet20"]) == ["resnet20", "plain20"]
    with pytest.raises(ValueError, match="unknown model preset 'resnet02'; did you mean"):
        check_presets(["resnet02"])


def test_the_cpu_is_named_by_its_model_and_cores():
    name = cpu_name()
    assert name.startswith("CPU: ") and name.endswith(("core)", "cores)"))
    assert lab_device_name("cpu") == name
    with pytest.raises(ValueError, match="unknown device"):
        lab_device_name("tpu")


def test_the_speed_kind_is_wired():
    assert SPEED_JOB in KINDS and SPEED_JOB.name == "speed" and SPEED_JOB.unit == "presets"


def test_a_second_request_for_what_is_measured_on_this_device_queues_nothing(lab_home):
    s = Store()
    cpu = lab_device_name("cpu")
    first = submit_speed(s, ["resnet20", "plain20"], "cpu", start=False)
    assert first is not None and s.jobs.get(first).params["presets"] == ["resnet20", "plain20"]
    assert submit_speed(s, ["plain20"], "cpu", start=False) == first  # covered by the job already queued
    s.model_speeds.record(fake_speed("resnet20", cpu))
    s.model_speeds.record(fake_speed("plain20", cpu))
    assert submit_speed(s, ["resnet20", "plain20"], "cpu", start=False) is None  # cached: no job
    assert measured(s, "cpu").keys() == {"resnet20", "plain20"} and measured(s).keys() == {"resnet20", "plain20"}
    again = submit_speed(s, ["resnet20"], "cpu", remeasure=True, start=False)
    assert again is not None and s.jobs.get(again).params == {
        "presets": ["resnet20"], "remeasure": True, "device_name": cpu, "plan": s.jobs.get(again).params["plan"]}
    only_rest = submit_speed(s, ["resnet20", "resnet32"], "cpu", start=False)
    assert s.jobs.get(only_rest).params["presets"] == ["resnet32"]  # what is measured is not measured again
    s.close()


def test_speeds_of_another_device_are_kept_apart_and_do_not_count_as_measured_here(lab_home):
    s = Store()
    s.model_speeds.record(fake_speed("resnet20", "NVIDIA H100 80GB HBM3", 50_000.0))
    assert measured(s, "cpu") == {} and measured(s, "NVIDIA H100 80GB HBM3")["resnet20"].train_images_per_s == 50_000
    assert submit_speed(s, ["resnet20"], "cpu", start=False) is not None  # the GPU's figure is not this CPU's
    s.close()


def test_the_handler_measures_reports_each_preset_and_a_stop_keeps_what_it_measured(lab_home):
    s = Store()
    job_id = submit_speed(s, ["resnet20", "plain20", "resnet32"], "cpu", plan=QUICK_PLAN, start=False)
    seen = []
    ctx = JobContext(job=s.jobs.get(job_id), store=s, device="cpu", progress=lambda d, t: seen.append((d, t)))

    def progress(done, total):
        seen.append((done, total))
        if done == 1:
            ctx.stop_event.set()  # as the worker does when the store's stop flag is seen

    ctx.progress = progress
    out = _run(ctx)
    s.jobs.finish(job_id, out.status, only_if=("queued",))  # as the worker ends it
    assert out.status == "stopped" and "1 of 3 presets" in out.message
    assert seen == [(0, 3), (1, 3)]
    kept = measured(s, "cpu")
    assert list(kept) == ["resnet20"] and kept["resnet20"].job_id == job_id
    assert kept["resnet20"].detail["plan"] == QUICK_PLAN.to_dict() and kept["resnet20"].detail["train_steps"] == 1
    rest = submit_speed(s, ["resnet20", "plain20", "resnet32"], "cpu", start=False)
    assert s.jobs.get(rest).params["presets"] == ["plain20", "resnet32"]
    s.close()


# --- a page never times anything itself --------------------------------------------------------------------------

TIMERS = {"perf_counter", "perf_counter_ns", "process_time", "thread_time", "synchronize", "Event"}
MEASURING = {"measure", "measure_preset", "measure_into", "_timed"}


def page_modules() -> list[Path]:
    return sorted((ROOT / "app_pages").glob("*.py")) + sorted((ROOT / "resnet_lab" / "ui").glob("*.py")) + [
        ROOT / "app.py"]


@pytest.mark.parametrize("path", page_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_page_never_times_a_model_and_only_reads_measured_speeds(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and "speed" in node.module.split("."):
            assert "measure" not in node.module.split("."), f"{path.name} imports {node.module}"
            assert not {a.name for a in node.names} & MEASURING, f"{path.name} imports a measuring function"
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            assert name not in TIMERS, f"{path.name}:{node.lineno} calls {name}: a page reads measured() instead"
            assert name not in MEASURING, f"{path.name}:{node.lineno} measures on the page's thread"
