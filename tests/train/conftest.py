import pytest
import torch

from resnet_lab import ModelSpec
from resnet_lab.data.registry import Dataset

TINY = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3, in_channels=3)


def make_data(n_train: int = 96, n_val: int = 48, size: int = 8, seed: int = 0, poison: bool = False) -> Dataset:
    """Three learnable classes: the class sets which channel is bright."""
    g = torch.Generator().manual_seed(seed)

    def split(n):
        y = torch.arange(n) % 3
        x = 0.3 * torch.rand(n, 3, size, size, generator=g)
        x[torch.arange(n), y] += 0.6
        return x.clamp(0, 1), y

    x_train, y_train = split(n_train)
    x_val, y_val = split(n_val)
    if poison:
        x_train[:] = float("inf")
    return Dataset(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, class_names=("r", "g", "b"),
                   mean=(0.4, 0.4, 0.4), std=(0.3, 0.3, 0.3), in_channels=3)


@pytest.fixture
def tiny_data():
    return make_data()


@pytest.fixture
def store(lab_home, monkeypatch):
    """A store in this test's lab home; workers beat every 0.5 s and none outlives the test."""
    from tests.helpers.homes import worker_store

    yield from worker_store(monkeypatch)  # no worker left behind
