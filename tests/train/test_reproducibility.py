"""Same settings, same numbers, in one process (two processes through the job queue:
tests/train/test_reproducibility_processes.py): every logged number of a run is a function of its settings and
seed; another seed gives another curve; a run resumed from a checkpoint written between two log points logs what
the uninterrupted run logs; the switches of deterministic training are set for a run and put back; and the note a
page shows says what holds on this device."""

import shutil

import pytest
import torch

from resnet_lab.models.checkpoint import read_manifest
from resnet_lab.train import engine, reproducible
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.members import Callbacks

from .conftest import TINY, make_data

CFG = TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=2, grad_norm_every=3, eval_points=3, device="cpu")
TIMING = {"images_per_s", "compile_s", "train_s"}  # how fast, not what: the only logged numbers that may differ


class Curve(Callbacks):
    """Every number a run reports, in order (timings left out), and a copy of the "last" checkpoint at one step."""

    def __init__(self, keep_at: int | None = None, into=None):
        self.rows = []
        self.keep_at, self.into = keep_at, into

    def on_log(self, idx, step, epoch, metrics):
        self.rows.append(("log", idx, step, epoch, {k: v for k, v in metrics.items() if k not in TIMING}))

    def on_eval(self, idx, step, epoch, metrics):
        self.rows.append(("eval", idx, step, epoch, dict(metrics)))

    def on_grad_norms(self, idx, step, norms):
        self.rows.append(("norms", idx, step, list(norms)))

    def on_checkpoint(self, idx, tag, path, metrics):
        if tag == "last" and self.keep_at is not None and read_manifest(path)["step"] == self.keep_at:
            shutil.copytree(path.parent, self.into, dirs_exist_ok=True)
            self.rows.append(("kept", idx, self.keep_at))  # what comes after this, a resume from it reports again


def curve(cfg=CFG, specs=(TINY, TINY.twin()), **kwargs):
    rec = Curve(**{k: kwargs.pop(k) for k in ("keep_at", "into") if k in kwargs})
    Trainer(list(specs), make_data(), cfg, rec, **kwargs).run()
    return rec.rows


def test_the_same_settings_give_every_number_again_and_another_seed_another_curve():
    first, again, other = curve(), curve(), curve(CFG.replace(seed=1))  # a ResNet and its twin: both curves
    assert len(first) > 20 and {r[0] for r in first} == {"log", "eval", "norms"}
    assert again == first  # every loss, accuracy, lr and gradient norm, to the last bit
    assert len(other) == len(first) and other != first  # so the comparison above can fail
    losses = [r[4]["train/loss"] for r in first if r[0] == "log"]
    assert losses != [r[4]["train/loss"] for r in other if r[0] == "log"]


def test_deterministic_training_on_the_cpu_gives_the_curve_of_the_default(tmp_path):
    assert curve(CFG.replace(deterministic=True), [TINY]) == curve(specs=[TINY])  # the CPU's kernels are deterministic already


@pytest.mark.parametrize("at", [3, 6])
def test_a_resume_logs_what_the_whole_run_logs_from_between_two_log_points_or_an_epoch_end(tmp_path, monkeypatch, at):
    """A checkpoint written on the clock (every CHECKPOINT_EVERY_S) falls between log points (step 3): it keeps the
    loss and accuracy gathered since the last log (so the resumed run's first log averages the same steps) and
    reports the gradient norms taken since (so none is reported twice). One at an epoch's end (step 6 of 6 a
    epoch) goes on with the next epoch's own batch order. Every later number is the uninterrupted run's."""
    monkeypatch.setattr(engine, "CHECKPOINT_EVERY_S", -1.0)  # "the clock says so" after every step
    cfg = CFG.replace(grad_norm_every=1)
    kept = tmp_path / "kept"
    whole = curve(cfg, specs=[TINY], checkpoint_dirs=[tmp_path / "a"], keep_at=at, into=kept)
    assert read_manifest(kept / "last.json")["step"] == at and cfg.log_every == 2 and len(make_data().y_train) == 96
    norm_steps = [r[2] for r in whole if r[0] == "norms"]
    assert norm_steps == sorted(set(norm_steps)) == list(range(12))  # each step's norms once, early ones included
    rec = Curve()
    resumed = Trainer([TINY], make_data(), cfg, rec, checkpoint_dirs=[tmp_path / "b"])
    resumed.resume_from([kept / "last.json"])
    resumed.run()
    after = whole[whole.index(("kept", 0, at)) + 1:]
    first_log = next(r[2] for r in after if r[0] == "log")
    assert rec.rows == after and after[0][:3] == ("norms", 0, at) and first_log == at + 2 - at % 2


def test_a_checkpoint_records_what_its_numbers_depend_on(tmp_path):
    curve(CFG.replace(epochs=1), checkpoint_dirs=[tmp_path / "a", None])
    cond = read_manifest(tmp_path / "a" / "last.json")["reproducibility"]
    assert cond == {"device": "cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "deterministic": False}


def test_deterministic_switches_are_set_for_a_run_and_put_back():
    cpu = torch.device("cpu")
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    seen = []

    class Look(Callbacks):
        def on_log(self, idx, step, epoch, metrics):
            seen.append((torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.deterministic))

    Trainer([TINY], make_data(), CFG.replace(epochs=1, deterministic=True), Look()).run()
    assert seen and set(seen) == {(True, True, True)}
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    with pytest.raises(RuntimeError), reproducible.configured(cpu, True):
        raise RuntimeError("a failing run")
    assert torch.are_deterministic_algorithms_enabled() == before[0]


def test_deterministic_is_a_setting_old_configs_and_fingerprints_do_without():
    assert TrainConfig.from_dict({"epochs": 2}).deterministic is False
    assert "deterministic" not in TrainConfig().fingerprint_dict()
    assert TrainConfig(deterministic=True).fingerprint_dict()["deterministic"] is True
    with pytest.raises(ValueError, match="deterministic must be true or false"):
        TrainConfig(deterministic="yes")


def test_the_note_says_what_holds_on_the_cpu_with_its_thread_count(monkeypatch):
    note = reproducible.reproducibility_note("cpu")
    threads = torch.get_num_threads()
    assert f"{threads} CPU thread" in note and "to the last bit" in note and torch.__version__.split("+")[0] in note
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert "1 CPU thread " in reproducible.reproducibility_note(torch.device("cpu"))
    if not torch.cuda.is_available():
        assert "no GPU is visible" in reproducible.reproducibility_note("cuda")
