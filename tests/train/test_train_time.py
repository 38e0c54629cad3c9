"""A run's training time (the ``train_s`` it logs): the seconds its workers trained, carried across a resume, and
not the time it sat stopped between two attempts (what a challenge's time budget reads)."""

import time

from resnet_lab.models.checkpoint import load_train_state
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.members import Callbacks

from .conftest import TINY, make_data

CFG = TrainConfig(epochs=4, batch_size=16, lr=0.05, log_every=2, eval_points=2, device="cpu")


class Clock(Callbacks):
    """The train_s of every log, and a stop request once ``stop_at`` steps are logged."""

    def __init__(self, stop_at: int | None = None):
        self.logged: list[tuple[int, float]] = []
        self.stop_at = stop_at

    def on_log(self, idx, step, epoch, metrics):
        self.logged.append((step, metrics["train_s"]))

    def should_stop(self):
        return self.stop_at is not None and bool(self.logged) and self.logged[-1][0] >= self.stop_at


def test_a_resumed_run_counts_its_training_time_on_from_its_checkpoint_and_not_the_pause(tmp_path):
    t0 = time.monotonic()
    first = Clock(stop_at=6)
    Trainer([TINY], make_data(), CFG, first, checkpoint_dirs=[tmp_path]).run()
    attempt1 = time.monotonic() - t0
    kept = load_train_state(tmp_path / "last.json")[0]["train_s"]
    assert 0 < first.logged[-1][1] <= kept <= attempt1
    assert [v for _, v in first.logged] == sorted(v for _, v in first.logged)

    time.sleep(1.5)  # stopped: the run sits in the queue, its worker gone
    t1 = time.monotonic()
    again = Clock()
    resumed = Trainer([TINY], make_data(), CFG, again, checkpoint_dirs=[tmp_path])
    resumed.resume_from([tmp_path / "last.json"])
    resumed.run()
    attempt2 = time.monotonic() - t1
    times = [v for _, v in again.logged]
    assert again.logged[0][0] > 6 and times == sorted(times) and times[0] > kept  # counts on from the checkpoint
    assert times[-1] <= kept + attempt2  # the 1.5 s pause is not training time
    assert times[-1] < time.monotonic() - t0 - 1.4
