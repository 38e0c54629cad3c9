import os

import pytest
import torch


@pytest.fixture(autouse=True)
def lab_home(tmp_path, monkeypatch):
    """Every test gets its own RESNET_LAB_HOME, never the user's."""
    home = tmp_path / "lab_home"
    home.mkdir()
    monkeypatch.setenv("RESNET_LAB_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    # two cores: keep torch from oversubscribing when pytest and a server share the machine
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
