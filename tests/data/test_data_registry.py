"""Registry, DataConfig validation, the Dataset container and the split helpers."""

import dataclasses
from pathlib import Path

import pytest
import torch

from resnet_lab.data import (
    DATASET_INFO,
    DATASETS,
    DataConfig,
    Dataset,
    channel_stats,
    data_root,
    load_dataset,
    stratified_order,
    take_subset,
)


def test_registry_names_and_descriptions():
    assert set(DATASETS) == {"shapes", "digits", "cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "imagenette"}
    assert set(DATASET_INFO) == set(DATASETS)
    assert all(isinstance(d, str) and d for d in DATASETS.values())
    for info in DATASET_INFO.values():  # what is fetched is no longer "placed by hand"
        assert "by hand" not in info.description
        assert ("downloaded on request" in info.description) == info.needs_files
        assert info.min_size <= (info.default_size or info.native_size) <= info.max_size
        assert (info.val_images is not None) == info.official_val
    assert DATASET_INFO["cifar100"].num_classes == 100 and DATASET_INFO["cifar100"].hflip
    assert not DATASET_INFO["svhn"].hflip  # digits: a mirror image is not the same digit
    nette = DATASET_INFO["imagenette"]
    assert nette.hflip and nette.native_size == 160 and nette.default_size == 64 and nette.max_size == 160


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as e:
        DataConfig(name="imagenet")
    msg = str(e.value)
    assert "name='imagenet'" in msg
    for known in DATASETS:
        assert known in msg


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"image_size": 8}, ["image_size=8", "16..128", "shapes"]),
        ({"image_size": 129}, ["image_size=129", "16..128"]),
        ({"name": "digits", "image_size": 4}, ["image_size=4", "8..128", "digits"]),
        ({"name": "cifar10", "image_size": 300}, ["image_size=300", "8..256"]),
        ({"image_size": 32.0}, ["image_size must be an integer"]),
        ({"image_size": True}, ["image_size must be an integer"]),
        ({"train_subset": 0}, ["train_subset=0", "1..10000000"]),
        ({"train_subset": "all"}, ["train_subset must be an integer"]),
        ({"val_fraction": 0.9}, ["val_fraction=0.9", "0.01..0.5"]),
        ({"val_fraction": 0.0}, ["val_fraction=0.0", "0.01..0.5"]),
        ({"val_fraction": "0.2"}, ["val_fraction must be a number in 0.01..0.5", "got '0.2'"]),
        ({"val_fraction": float("nan")}, ["val_fraction=nan is out of range"]),
        ({"augment": "yes"}, ["augment must be true or false"]),
        ({"seed": -1}, ["seed=-1", "0..2147483647"]),
        ({"name": 3}, ["name must be a string"]),
    ],
)
def test_dataconfig_validation_names_field_and_range(changes, fragments):
    with pytest.raises(ValueError) as e:
        DataConfig(**changes)
    for fragment in fragments:
        assert fragment in str(e.value)


def test_dataconfig_defaults_are_valid_frozen_and_replaceable():
    cfg = DataConfig()
    assert (cfg.name, cfg.image_size, cfg.train_subset, cfg.val_fraction, cfg.augment, cfg.seed) == (
        "shapes", 32, None, 0.2, True, 0
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    assert cfg.replace(seed=3).seed == 3
    assert DataConfig(val_fraction=0.5).val_fraction == 0.5  # ints and floats at the bounds are fine
    with pytest.raises(ValueError, match="image_size"):
        cfg.replace(image_size=4)


def test_data_root_follows_resnet_lab_home(lab_home, monkeypatch, tmp_path):
    assert data_root() == lab_home / "data"
    monkeypatch.delenv("RESNET_LAB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "someone"))
    assert data_root() == tmp_path / "someone" / ".resnet_lab" / "data"


def test_load_dataset_wants_a_dataconfig():
    with pytest.raises(TypeError, match="DataConfig"):
        load_dataset({"name": "shapes"})  # type: ignore[arg-type]


def _tiny(n=10, m=4, c=3, s=8):
    return (torch.rand(n, c, s, s), torch.arange(n) % 2, torch.rand(m, c, s, s), torch.arange(m) % 2)


def test_dataset_from_tensors_computes_stats_and_validates():
    xt, yt, xv, yv = _tiny()
    ds = Dataset.from_tensors(xt, yt, xv, yv, ["a", "b"])
    assert ds.in_channels == 3 and ds.num_classes == 2 and ds.image_size == 8 and ds.class_names == ("a", "b")
    assert ds.mean == pytest.approx(xt.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert ds.std == pytest.approx(xt.std(dim=(0, 2, 3), correction=0).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="x_train must be float32"):
        Dataset.from_tensors(xt.double(), yt, xv, yv, ["a", "b"])
    with pytest.raises(ValueError, match="y_val must be int64"):
        Dataset.from_tensors(xt, yt, xv, yv.int(), ["a", "b"])
    with pytest.raises(ValueError, match="differ in shape"):
        Dataset.from_tensors(xt, yt, torch.rand(4, 3, 9, 9), yv, ["a", "b"])
    with pytest.raises(ValueError, match="mask_val"):
        Dataset.from_tensors(xt, yt, xv, yv, ["a", "b"], mask_val=torch.ones(4, 8, 8))


def test_dataset_to_moves_every_tensor():
    xt, yt, xv, yv = _tiny()
    ds = Dataset.from_tensors(xt, yt, xv, yv, ["a", "b"], mask_val=torch.zeros(4, 8, 8, dtype=torch.bool))
    moved = ds.to("meta")
    for name in ("x_train", "y_train", "x_val", "y_val", "mask_val"):
        assert getattr(moved, name).device.type == "meta"
    assert moved.mean == ds.mean and moved.class_names == ds.class_names
    assert ds.x_train.device.type == "cpu"  # the original is untouched


def test_channel_stats_constant_channel_has_floored_std():
    x = torch.zeros(5, 2, 4, 4)
    x[:, 1] = 1.0
    mean, std = channel_stats(x, chunk=2)
    assert mean == (0.0, 1.0) and std == (1e-3, 1e-3)


def test_stratified_order_is_a_seeded_balanced_permutation():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    order = stratified_order(y, seed=1)
    assert sorted(order.tolist()) == list(range(100))
    assert torch.equal(order, stratified_order(y, seed=1))
    assert not torch.equal(order, stratified_order(y, seed=2))
    first = y[order[:30]].bincount(minlength=3)
    assert first.tolist() == [10, 10, 10]  # round-robin: every prefix is as balanced as the counts allow


def test_take_subset_keeps_n_balanced_images():
    x = torch.arange(100).float().view(100, 1, 1, 1)
    y = torch.arange(100) % 4
    xs, ys = take_subset(x, y, 40, seed=0)
    assert ys.bincount().tolist() == [10, 10, 10, 10]
    assert torch.equal(ys, y[xs.view(-1).long()])  # images keep their labels
    assert take_subset(x, y, None, seed=0)[0] is x
    assert take_subset(x, y, 1000, seed=0)[0] is x


def test_package_does_not_import_streamlit():
    root = Path(__file__).resolve().parents[2] / "resnet_lab" / "data"
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def test_uint8_images_have_float_views_stats_in_unit_range_and_move_as_bytes():
    g = torch.Generator().manual_seed(0)
    xt = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=g)
    xv = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=g)
    ds = Dataset.from_tensors(xt, torch.arange(10) % 2, xv, torch.arange(4) % 2, ["a", "b"])
    f = xt.float() / 255
    assert ds.mean == pytest.approx(f.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert ds.std == pytest.approx(f.std(dim=(0, 2, 3), correction=0).tolist(), abs=1e-6)
    (m8, s8), (mf, sf) = channel_stats(xt, chunk=3), channel_stats(f)  # chunked, like float
    assert m8 == pytest.approx(mf, abs=1e-6) and s8 == pytest.approx(sf, abs=1e-6)
    assert ds.pixels_train is xt and ds.nbytes == xt.nbytes + xv.nbytes
    assert torch.equal(ds.x_train, f) and ds.x_train is ds.x_train  # converted once, then kept
    assert torch.equal(ds.images("val", torch.tensor([3, 0])), xv[[3, 0]].float() / 255)
    assert torch.equal(ds.images("train", slice(2, 4)), f[2:4])
    with pytest.raises(ValueError, match="split"):
        ds.images("test")
    moved = ds.to("meta")
    assert moved.pixels_train.dtype == torch.uint8 and moved.pixels_train.device.type == "meta"
    # replace / construct under the old names: what is given is kept as the pixels
    sub = dataclasses.replace(ds, x_train=xt[:4], y_train=torch.tensor([0, 1, 0, 1]))
    assert sub.pixels_train.dtype == torch.uint8 and len(sub.x_train) == 4
    again = dataclasses.replace(ds, hflip=False)
    assert again.pixels_train is xt and not again.hflip
    with pytest.raises(ValueError, match="x_val must be float32"):
        Dataset.from_tensors(xt, torch.arange(10) % 2, xv.to(torch.int16), torch.arange(4) % 2, ["a", "b"])


def test_float_datasets_are_their_own_float_views():
    xt, yt, xv, yv = _tiny()
    ds = Dataset.from_tensors(xt, yt, xv, yv, ["a", "b"])
    assert ds.x_train is xt and ds.x_val is xv and ds.x_test is None
