"""scikit-learn digits: counts, split, values, resizing."""

import pytest
import torch

from resnet_lab.data import DataConfig, load_dataset
from resnet_lab.data.digits import digits_tensors


@pytest.mark.parametrize("val_fraction", [0.1, 0.2, 0.5])
def test_all_1797_images_split_by_val_fraction(val_fraction):
    ds = load_dataset(DataConfig("digits", image_size=8, val_fraction=val_fraction))
    n_val = round(1797 * val_fraction)
    assert len(ds.y_val) == n_val and len(ds.y_train) == 1797 - n_val
    # train and val together are exactly the 1,797 images (as a multiset of rows): no overlap, none lost
    x_all, _ = digits_tensors(8)
    ours = torch.cat([ds.x_train, ds.x_val]).flatten(1)
    assert torch.equal(_sorted_rows(ours), _sorted_rows(x_all.flatten(1)))


def _sorted_rows(rows: torch.Tensor) -> torch.Tensor:
    # lexicographic sort of rows by repeated stable sorts from the last column to the first
    for col in reversed(range(rows.shape[1])):
        rows = rows[torch.sort(rows[:, col], stable=True).indices]
    return rows


def test_values_and_format():
    ds = load_dataset(DataConfig("digits", image_size=32))
    assert ds.x_train.shape[1:] == (1, 32, 32) and ds.x_val.shape[1:] == (1, 32, 32)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.min() == 0.0 and 0.9 < ds.x_train.max() <= 1.0
    assert ds.in_channels == 1 and ds.class_names == tuple("0123456789") and not ds.hflip
    assert ds.mask_val is None
    x8, _ = digits_tensors(8)
    # at native size the values are sklearn's 0..16 scaled by 1/16
    assert torch.equal((x8 * 16).round(), x8 * 16) and x8.max() == 1.0


def test_split_is_stratified_and_seeded():
    a = load_dataset(DataConfig("digits", image_size=8, seed=0))
    b = load_dataset(DataConfig("digits", image_size=8, seed=0))
    c = load_dataset(DataConfig("digits", image_size=8, seed=1))
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_val, c.x_val)
    counts = a.y_val.bincount(minlength=10)
    assert counts.max() - counts.min() <= 1  # every digit gets its share of val


def test_train_subset_is_a_balanced_subset():
    ds = load_dataset(DataConfig("digits", image_size=8, train_subset=100))
    assert len(ds.y_train) == 100 and ds.y_train.bincount(minlength=10).tolist() == [10] * 10
    assert len(ds.y_val) == round(1797 * 0.2)  # val is not cut by train_subset
