"""The hidden test split: cut once and recorded, disjoint from train and val by construction (digits: indices taken
out of the pool before any split or subset, for every seed, val fraction and subset; shapes: a stream no loader
asks for), halves public and private, and a damaged record refused rather than ignored."""

import json

import pytest
import torch

from resnet_lab.data.digits import digits_tensors
from resnet_lab.data.holdout import (
    SHAPES_STREAM,
    create_holdout,
    digits_split,
    find_holdout,
    holdout_path,
    load_hidden_split,
    visible_indices,
)
from resnet_lab.data.registry import DataConfig, load_dataset


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r.numpy().tobytes()) for r in x.reshape(x.shape[0], -1)}


def test_the_digits_holdout_is_cut_once_with_balanced_public_and_private_halves():
    assert find_holdout("digits") is None
    hold = create_holdout("digits", seed=5)
    again = create_holdout("digits", seed=99)  # recorded once: the second call finds the first record
    assert again == hold and hold.seed == 5 and json.loads(holdout_path("digits").read_text())["seed"] == 5
    y = digits_tensors(8)[1]
    assert len(hold.indices) == round(0.2 * len(y)) and set(hold.public) < set(hold.indices)
    assert abs(len(hold.public) - len(hold.indices) / 2) <= 1
    counts = torch.bincount(y[list(hold.indices)], minlength=10)
    assert int(counts.min()) >= 30  # stratified: every digit is in the hidden split


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("val_fraction", [0.01, 0.2, 0.5])
@pytest.mark.parametrize("subset", [None, 50])
def test_no_digits_loader_sees_a_hidden_index_whatever_the_seed_fraction_or_subset(seed, val_fraction, subset):
    hold = create_holdout("digits", seed=1)
    x, y = digits_tensors(8)
    vis = visible_indices(len(y), hold)
    assert not set(vis.tolist()) & set(hold.indices) and len(vis) + len(hold.indices) == len(y)
    cfg = DataConfig(name="digits", image_size=8, val_fraction=val_fraction, seed=seed, train_subset=subset)
    train_pos, val_pos = digits_split(y[vis], cfg)
    train_idx, val_idx = set(vis[train_pos].tolist()), set(vis[val_pos].tolist())
    assert not (train_idx | val_idx) & set(hold.indices) and not train_idx & val_idx
    ds = load_dataset(cfg)  # the registry's own door: the images it hands out are the visible pool's
    hidden_only = _rows(x[list(hold.indices)]) - _rows(x[vis])  # (digits has a few duplicate images)
    seen = _rows(ds.x_train) | _rows(ds.x_val)
    assert not seen & hidden_only
    assert len(ds.y_train) == (subset or len(train_pos)) and len(ds.y_val) == len(val_pos)


def test_without_a_holdout_digits_load_as_they_always_did():
    from resnet_lab.data.digits import load_digits_dataset

    cfg = DataConfig(name="digits", image_size=8)
    assert torch.equal(load_dataset(cfg).x_train, load_digits_dataset(cfg).x_train)


def test_the_hidden_split_loads_only_the_hidden_images_with_their_halves():
    hold = create_holdout("digits", seed=2)
    hidden = load_hidden_split(hold, 8)
    x, y = digits_tensors(8)
    idx = torch.tensor(hold.indices)
    assert torch.equal(hidden.x, x[idx]) and torch.equal(hidden.y, y[idx])
    assert int(hidden.public.sum()) == len(hold.public) and hidden.class_names[3] == "3"


def test_the_shapes_holdout_is_a_stream_no_loader_asks_for():
    from resnet_lab.data.shapes import generate_shapes

    hold = create_holdout("shapes", seed=0)
    hidden = load_hidden_split(hold, 16)
    assert hidden.x.shape == (len(hold.indices), 3, 16, 16) and int(hidden.public.sum()) == len(hold.public)
    ds = load_dataset(DataConfig(name="shapes", image_size=16, train_subset=600, seed=0))
    assert not (_rows(ds.x_train) | _rows(ds.x_val)) & _rows(hidden.x)
    assert torch.equal(hidden.x[:5], generate_shapes(5, 16, 0, SHAPES_STREAM)[0])  # the recorded stream


def test_a_damaged_record_stops_digits_from_loading_rather_than_leaking():
    create_holdout("digits", seed=0)
    holdout_path("digits").write_text('{"version": 1, "dataset": "digits"}')
    with pytest.raises(ValueError, match="is damaged"):
        load_dataset(DataConfig(name="digits", image_size=8))
    with pytest.raises(ValueError, match="can be cut of digits, shapes, cifar10.* or an imported folder:NAME"):
        create_holdout("imagenet")
