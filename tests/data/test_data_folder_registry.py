"""User datasets through the registry: DataConfig(name="folder:NAME") and load_dataset."""

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


@pytest.mark.parametrize("name, message", [("folder:nope", "no user dataset named 'nope'"),
                                           ("folder:../toy", "not a dataset folder"),
                                           ("folder:Bad Name", "is not allowed")])
def test_bad_folder_names_are_refused(toy, name, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(name=name)
