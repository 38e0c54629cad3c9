"""The GPU fast path, where a GPU is present (skipped otherwise), and what a GPU machine's Python must import.

The GPU machines this lab is tried on run their own Python (torch and torchvision, no streamlit, plotly or
captum), so the engine, the job system, the bench scripts and this file import only what training needs: the
first test checks that on every machine. The others need CUDA:

- a whole twin job (ResNet + plain twin) submitted on device "cuda" through the job system, both runs done
  with finite losses;
- the fast path in place: data on the GPU, channels-last inputs and weights, bf16 autocast, the fused optimizer,
  cudnn.benchmark — and no host sync inside a training step: CUDA's sync debug mode is set to raise, except
  at the log points and evaluations, where the loop syncs on purpose;
- with two or more GPUs, a job on two of them (DDP, NCCL, SyncBatchNorm) runs to the end and logs once.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.waiting import wait_runs_ended

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_A_GPU_MACHINE = ("streamlit", "plotly", "captum")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_training_and_its_benches_import_nothing_a_gpu_machine_lacks():
    code = ("import sys; sys.path.insert(0, 'bench'); import resnet_lab.train.engine, resnet_lab.train.handler, "
            "resnet_lab.train.launcher, resnet_lab.train.distributed, resnet_lab.jobs.worker, "
            "resnet_lab.jobs.scheduler, resnet_lab.models.summary, resnet_lab.data.shapes, throughput, "
            "trainer_overhead, time_to_accuracy,"
            " tests.train.test_cuda; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert "torch" in loaded and not loaded & set(NOT_ON_A_GPU_MACHINE)


@cuda
def test_a_twin_job_trains_on_the_gpu_through_the_job_system(store):
    import math

    from resnet_lab import PRESETS
    from resnet_lab.data.registry import DataConfig
    from resnet_lab.train import launcher
    from resnet_lab.models.checkpoint import load_checkpoint
    from resnet_lab.train.config import TrainConfig

    data = DataConfig(name="shapes", image_size=32, train_subset=1024, seed=0)
    ids = launcher.submit(PRESETS["resnet20"], data, TrainConfig(epochs=2, batch_size=128, device="cuda"), twin=True,
                          store=store)
    wait_runs_ended(store, ids)
    for run_id in ids:
        run = store.runs.get(run_id)
        assert run.status == "done" and run.device.startswith("cuda:"), run.error
        losses = [v for _, _, v in store.runs.metrics(run_id, ["train/loss"])["train/loss"]]
        assert losses and all(math.isfinite(v) for v in losses)
        assert "val/acc" in run.best and load_checkpoint(run.ckpt_last).spec.skip == run.spec["skip"]


@cuda
def test_the_fast_path_is_in_place_and_no_step_waits_for_the_gpu():
    from resnet_lab import PRESETS
    from resnet_lab.train.config import TrainConfig
    from resnet_lab.train.engine import Trainer

    from .conftest import make_data

    class Strict(Trainer):
        """Raises on any host sync, except where the loop syncs on purpose (log points, evaluation, checkpoints)."""

        def _allowed(self, f, *args):
            torch.cuda.set_sync_debug_mode("default")
            try:
                return f(*args)
            finally:
                torch.cuda.set_sync_debug_mode("error")

        def _sync(self):
            return self._allowed(super()._sync)

        def _flush_logs(self, *args):
            return self._allowed(super()._flush_logs, *args)

        def evaluate(self, model):
            return self._allowed(super().evaluate, model)

        def _checkpoint_all(self, *args):
            return self._allowed(super()._checkpoint_all, *args)

    spec = PRESETS["resnet20"].replace(num_classes=3)
    data = make_data(n_train=512, n_val=64, size=32)
    trainer = Strict([spec, spec.twin()], data, TrainConfig(epochs=2, batch_size=64, log_every=4, grad_norm_every=3,
                                                            eval_points=4, device="cuda"))
    m = trainer.members[0]
    assert torch.backends.cudnn.benchmark and m.optimizer.defaults.get("fused") is True
    assert m.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x, _ = trainer.batches.train(torch.arange(8, device=trainer.device))
    assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
    dtypes = []
    handle = m.model.conv1.register_forward_hook(lambda mod, i, out: dtypes.append(out.dtype))
    torch.cuda.set_sync_debug_mode("error")
    try:
        results = trainer.run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
        handle.remove()
    assert [r.status for r in results] == ["done", "done"]
    assert dtypes and dtypes[0] == torch.bfloat16  # autocast in the training step


@cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_a_job_on_two_gpus_runs_as_one_group_and_logs_once(store):
    from resnet_lab import PRESETS
    from resnet_lab.data.registry import DataConfig
    from resnet_lab.train import launcher
    from resnet_lab.train.config import TrainConfig

    data = DataConfig(name="shapes", image_size=32, train_subset=1024, seed=0)
    cfg = TrainConfig(epochs=2, batch_size=128, log_every=2, eval_points=0, device="cuda")
    ids = launcher.submit(PRESETS["resnet20"], data, cfg, twin=True, store=store, world_size=2)
    wait_runs_ended(store, ids)
    job = store.jobs.get(store.runs.get(ids[0]).job_id)
    assert job.status == "done" and len(set(job.slots)) == 2, job.error
    for run_id in ids:
        steps = [s for s, _, _ in store.runs.metrics(run_id, ["train/loss"])["train/loss"]]
        assert steps == sorted(set(steps)) and store.runs.get(run_id).step == 16
