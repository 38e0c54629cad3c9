"""Synthetic shapes: deterministic, well-formed, balanced, masked, and not solvable by colour."""

import pytest
import torch

from resnet_lab.data import SHAPE_CLASSES, DataConfig, generate_shapes, load_dataset
from resnet_lab.data.shapes import default_train_size


@pytest.fixture(scope="module")
def shapes():
    """1,200 train / 300 val images at 32 px, shared by the read-only tests below."""
    return load_dataset(DataConfig("shapes", train_subset=1200, val_fraction=0.2, seed=7))


def test_same_seed_is_bit_identical_and_other_seeds_differ():
    a = generate_shapes(40, 32, seed=3)
    b = generate_shapes(40, 32, seed=3)
    for ta, tb in zip(a, b):
        assert torch.equal(ta, tb)
    c = generate_shapes(40, 32, seed=4)
    assert not torch.equal(a[0], c[0])
    assert (a[0] - c[0]).abs().mean() > 0.05  # really different images, not a rounding difference
    val = generate_shapes(40, 32, seed=3, split="val")
    assert not torch.equal(a[0], val[0])  # train and val are independent streams


def test_load_dataset_is_deterministic(shapes):
    again = load_dataset(DataConfig("shapes", train_subset=1200, val_fraction=0.2, seed=7))
    for name in ("x_train", "y_train", "x_val", "y_val", "mask_val"):
        assert torch.equal(getattr(shapes, name), getattr(again, name))
    assert again.mean == shapes.mean and again.std == shapes.std


def test_first_images_do_not_depend_on_how_many_are_made():
    small = generate_shapes(10, 32, seed=5)
    large = generate_shapes(700, 32, seed=5)  # spans two chunks at 32 px
    for ts, tl in zip(small, large):
        assert torch.equal(ts, tl[:10])


def test_shapes_dtypes_and_ranges(shapes):
    assert shapes.x_train.shape == (1200, 3, 32, 32) and shapes.x_val.shape == (300, 3, 32, 32)
    assert shapes.x_train.dtype == shapes.x_val.dtype == torch.float32
    assert shapes.y_train.dtype == shapes.y_val.dtype == torch.int64
    assert shapes.mask_val is not None and shapes.mask_val.shape == (300, 32, 32)
    assert shapes.mask_val.dtype == torch.bool
    assert 0.0 <= shapes.x_train.min() and shapes.x_train.max() <= 1.0
    assert 0.0 <= shapes.x_val.min() and shapes.x_val.max() <= 1.0
    assert set(shapes.y_train.unique().tolist()) == set(range(len(SHAPE_CLASSES)))
    assert shapes.class_names == SHAPE_CLASSES and len(SHAPE_CLASSES) >= 6
    assert shapes.in_channels == 3 and shapes.hflip
    assert shapes.mean == pytest.approx(shapes.x_train.mean(dim=(0, 2, 3)).tolist(), abs=1e-5)
    assert shapes.std == pytest.approx(shapes.x_train.std(dim=(0, 2, 3), correction=0).tolist(), abs=1e-5)


def test_classes_are_balanced(shapes):
    for y in (shapes.y_train, shapes.y_val):
        counts = y.bincount(minlength=len(SHAPE_CLASSES))
        assert counts.max() - counts.min() <= 1, counts
    for n in (1, 5, 7, 100, 517):  # any prefix, across chunk boundaries too
        counts = generate_shapes(n, 32, seed=1)[1].bincount(minlength=len(SHAPE_CLASSES))
        assert counts.max() - counts.min() <= 1, (n, counts)


def test_val_size_follows_val_fraction():
    ds = load_dataset(DataConfig("shapes", train_subset=300, val_fraction=0.25))
    assert len(ds.y_train) == 300 and len(ds.y_val) == 100  # val is 25% of the 400 images
    assert default_train_size(32) == 10_000 and default_train_size(128) == 2_500


def test_masks_cover_the_shape_pixels(shapes):
    x, mask = shapes.x_val, shapes.mask_val
    area = mask.flatten(1).float().mean(1)
    assert (area > 0.01).all() and (area < 0.6).all()  # every image has a shape, none fills the frame
    m = mask.unsqueeze(1).float()
    inside = (x * m).sum(dim=(2, 3)) / m.sum(dim=(2, 3))
    outside = (x * (1 - m)).sum(dim=(2, 3)) / (1 - m).sum(dim=(2, 3))
    contrast = (inside - outside).abs().mean(1)  # per image, mean over RGB
    assert contrast.mean() > 0.25 and (contrast > 0.1).float().mean() > 0.95
    # a mask shifted off the shape loses the contrast: the mask marks the shape, not just any region
    shifted = torch.roll(mask, shifts=(16, 16), dims=(1, 2)) & ~mask
    ms = shifted.unsqueeze(1).float()
    ok = ms.sum(dim=(1, 2, 3)) > 0
    in_shift = (x * ms).sum(dim=(2, 3))[ok] / ms.sum(dim=(2, 3))[ok]
    assert (in_shift - outside[ok]).abs().mean() < contrast.mean() / 2


def _nearest_centroid_accuracy(f_train, y_train, f_val, y_val, k):
    centroids = torch.stack([f_train[y_train == c].mean(0) for c in range(k)])
    pred = torch.cdist(f_val, centroids).argmin(1)
    return (pred == y_val).float().mean().item()


def test_class_is_not_predictable_from_colour(shapes):
    k = len(SHAPE_CLASSES)
    chance = 1 / k
    mean_rgb = lambda x: x.mean(dim=(2, 3))  # noqa: E731
    acc = _nearest_centroid_accuracy(mean_rgb(shapes.x_train), shapes.y_train, mean_rgb(shapes.x_val), shapes.y_val, k)
    assert acc < chance + 0.1, acc
    # nor from the colour of the shape itself (mean over its mask): colour is drawn independently of class
    m = shapes.mask_val.unsqueeze(1).float()
    shape_rgb = (shapes.x_val * m).sum(dim=(2, 3)) / m.sum(dim=(2, 3))
    half = len(shapes.y_val) // 2
    acc = _nearest_centroid_accuracy(shape_rgb[:half], shapes.y_val[:half], shape_rgb[half:], shapes.y_val[half:], k)
    assert acc < chance + 0.12, acc


@pytest.mark.parametrize("size", [16, 128])
def test_other_sizes(size):
    x, y, mask = generate_shapes(12, size, seed=0)
    assert x.shape == (12, 3, size, size) and mask.shape == (12, size, size) and y.shape == (12,)
    assert mask.flatten(1).any(1).all()


def test_empty_request_gives_empty_tensors():
    x, y, mask = generate_shapes(0, 32, seed=0)
    assert x.shape == (0, 3, 32, 32) and y.shape == (0,) and mask.shape == (0, 32, 32)
