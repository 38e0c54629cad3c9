"""Fine-tuning defaults sized to the data: a few dozen images still get enough optimizer steps to learn."""

import pytest

from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.finetune import (DEFAULT_BATCH, DEFAULT_EPOCHS, MAX_SIZED_EPOCHS, MIN_BATCH, MIN_STEPS,
                                       optimizer_steps, sized_schedule)

from .conftest import TINY, make_data


@pytest.mark.parametrize("n, epochs, batch", [(45, 3, 64), (45, 2, 8), (96, 1, 32), (100, 3, 7), (5, 4, 4)])
def test_optimizer_steps_count_as_the_engine_counts(n, epochs, batch):
    trainer = Trainer([TINY], make_data(n_train=n, n_val=6), TrainConfig(epochs=epochs, batch_size=batch,
                                                                         device="cpu"))
    assert optimizer_steps(n, epochs, batch) == trainer.total_steps


def test_the_old_defaults_on_45_images_made_3_steps_and_the_sized_ones_make_enough():
    assert optimizer_steps(45, 3, 64) == 3  # what the issue saw: accuracy flat
    epochs, batch = sized_schedule(45)
    assert batch <= 45 and optimizer_steps(45, epochs, batch) >= MIN_STEPS


@pytest.mark.parametrize("n", [1, 3, 8, 20, 36, 45, 100, 360, 1437, 2000, 50_000])
@pytest.mark.parametrize("max_epochs, max_batch", [(500, 4096), (10, 128), (3, 64), (1, 2)])
def test_sized_schedule_stays_inside_the_caps_and_reaches_the_steps_whenever_they_allow(n, max_epochs, max_batch):
    epochs, batch = sized_schedule(n, max_epochs=max_epochs, max_batch=max_batch)
    assert 1 <= epochs <= max_epochs and 1 <= batch <= min(n, max_batch, DEFAULT_BATCH)
    steps = optimizer_steps(n, epochs, batch)
    # the most steps any schedule inside the caps makes without going below MIN_BATCH (unless the data is smaller)
    smallest = min(MIN_BATCH, n, max_batch)
    reachable = optimizer_steps(n, min(max_epochs, MAX_SIZED_EPOCHS), smallest)
    assert steps >= min(MIN_STEPS, reachable)
    assert epochs >= min(DEFAULT_EPOCHS, max_epochs)


def test_a_large_dataset_keeps_the_usual_defaults():
    assert sized_schedule(50_000) == (DEFAULT_EPOCHS, DEFAULT_BATCH)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "45"])
def test_counts_must_be_whole_numbers(bad):
    with pytest.raises(ValueError):
        sized_schedule(bad)
    with pytest.raises(ValueError):
        optimizer_steps(bad, 1, 1)
