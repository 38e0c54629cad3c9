"""User datasets through the registry: DataConfig(name="folder:NAME") and load_dataset."""

import contextlib
import os

import numpy as np
import pytest
from PIL import Image

from resnet_lab.data.registry import DataConfig, dataset_info, load_dataset


@pytest.fixture
def toy(lab_home):
    root = lab_home / "datasets" / "toy"
    rng = np.random.default_rng(0)
    for c in ("cats", "dogs", "owls"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray((rng.random((40, 48, 3)) * 255).astype("uint8")).save(root / c / f"{i}.png")
    return root


def test_folder_dataset_info_and_load(toy):
    info = dataset_info("folder:toy")
    assert info.num_classes == 3 and info.in_channels == 3 and not info.needs_files
    ds = load_dataset(DataConfig(name="folder:toy", image_size=24, train_subset=6, seed=1))
    assert ds.class_names == ("cats", "dogs", "owls")
    assert ds.x_train.shape == (6, 3, 24, 24) and sorted(ds.y_train.tolist()) == [0, 0, 1, 1, 2, 2]
    assert len(ds.y_val) == 3  # one per class: round(5 * 0.2)


@pytest.mark.parametrize("name", ["folder:../toy", "folder:Bad Name", "folder:", "folder:a/b"])
def test_malformed_folder_names_are_refused_by_the_config(toy, name):
    with pytest.raises(ValueError, match="is not allowed: use 1 to 40 lower-case letters"):
        DataConfig(name=name)


def test_a_missing_folder_dataset_is_refused_where_it_is_looked_up_or_loaded(toy):
    cfg = DataConfig(name="folder:nope")  # a config is only a description: its folder is not looked at
    with pytest.raises(ValueError, match="no user dataset named 'nope' \\(imported: toy\\)"):
        dataset_info(cfg.name)
    with pytest.raises(ValueError, match="no user dataset named 'nope' \\(imported: toy\\)"):
        load_dataset(cfg)


class FilesystemTouched(AssertionError):
    pass


@contextlib.contextmanager
def no_filesystem():
    """Inside, every stat, lstat and directory listing raises (pathlib and os.path go through these).

    Kept to the few lines under test: pytest itself stats files when it reports a failure.
    """
    def refuse(*args, **kwargs):
        raise FilesystemTouched(f"the filesystem was touched: {args!r}")

    with pytest.MonkeyPatch.context() as mp:
        for name in ("stat", "lstat", "listdir", "scandir"):
            mp.setattr(os, name, refuse)
        yield


@pytest.mark.parametrize("kwargs", [{"name": "folder:nope", "image_size": 64}, {"name": "folder:toy"},
                                    {"name": "cifar10", "image_size": 32}, {"name": "shapes"}])
def test_building_a_data_config_never_touches_the_filesystem(toy, kwargs):
    with no_filesystem():
        cfg = DataConfig(**kwargs)
        again = DataConfig.from_dict(cfg.to_dict())
        reseeded = cfg.replace(seed=1)
    assert again == cfg and reseeded.seed == 1 and cfg.name == kwargs["name"]


def test_a_folder_configs_image_size_range_comes_from_the_name_alone(toy):
    with no_filesystem(), pytest.raises(ValueError) as e:
        DataConfig(name="folder:nope", image_size=300)
    assert "image_size=300 is out of range; allowed 8..256 for folder:nope" in str(e.value)


def test_the_filesystem_guard_catches_a_folder_lookup(toy):
    with no_filesystem(), pytest.raises(FilesystemTouched):  # so a config that looked would be caught
        dataset_info("folder:toy")
