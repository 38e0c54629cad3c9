"""The hidden test split of the file datasets, on small files in the genuine formats (the fakes of test_data_*):
cut from the official test split (MNIST, CIFAR-10, SVHN, Imagenette) or from an imported folder's files, written
once, disjoint from everything ``load_dataset`` hands out (train, val, and test with ``holdout_val``) for several
seeds, val fractions and subsets, its halves a partition, a changed pool refused rather than leaked, and a challenge
on these datasets opened (the files missing: refused with the missing-files message)."""

import json
import shutil

import pytest
import torch

from resnet_lab.classroom.challenges import ChallengeError, list_challenges, open_challenge, parse_challenge_text
from resnet_lab.classroom.settings import ClassSettings
from resnet_lab.data.folders import datasets_root
from resnet_lab.data.holdout import create_holdout, find_holdout, holdout_path, load_hidden_split
from resnet_lab.data.registry import DataConfig, load_dataset
from resnet_lab.data.torchvision_sets import DatasetMissing
from resnet_lab.identity import MACHINE
from resnet_lab.store import Store
from tests.data.test_data_folders import make_dataset, save_image
from tests.data.test_data_imagenette import make_nette
from tests.data.test_data_svhn import make_svhn, trust_svhn_files
from tests.data.test_data_torchvision import make_cifar, make_mnist, trust_cifar_files


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r.numpy().tobytes()) for r in x.reshape(x.shape[0], -1)}


def _seen(ds) -> set[bytes]:
    """Every image ``ds`` hands out, as uint8 rows."""
    out = _rows(ds.pixels_train) | _rows(ds.pixels_val)
    return out | (_rows(ds.pixels_test) if ds.pixels_test is not None else set())


def _u8(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.uint8 else x.mul(255).round().to(torch.uint8)


def _check_halves(hold, hidden) -> None:
    assert set(hold.public) < set(hold.indices) and abs(len(hold.public) - len(hold.indices) / 2) <= 1
    assert int(hidden.public.sum()) == len(hold.public) and int((~hidden.public).sum()) == len(hold.indices) - len(
        hold.public)  # public and private partition the hidden split


CONFIGS = [dict(seed=0, val_fraction=0.2), dict(seed=3, val_fraction=0.5, train_subset=10),
           dict(seed=1, val_fraction=0.1, holdout_val=True), dict(seed=2, val_fraction=0.3, holdout_val=True,
                                                                  train_subset=12)]


def test_mnist_hides_a_balanced_share_of_its_official_test_split_from_every_split(lab_home):
    arrays = make_mnist(lab_home / "data" / "MNIST" / "raw", n_train=40, n_test=50)
    hold = create_holdout("mnist", seed=4)
    assert create_holdout("mnist", seed=9) == hold and json.loads(holdout_path("mnist").read_text())["seed"] == 4
    assert hold.pool_size == 50 and len(hold.indices) == 10  # 20 % of the official test split
    test_y = torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long()
    assert torch.bincount(test_y[list(hold.indices)], minlength=10).tolist() == [1] * 10  # class-balanced
    hidden = load_hidden_split(hold, 28)
    test_x = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).unsqueeze(1)
    assert torch.equal(_u8(hidden.x), test_x[list(hold.indices)]) and hidden.x.dtype == torch.float32
    _check_halves(hold, hidden)
    for kw in CONFIGS:
        ds = load_dataset(DataConfig("mnist", image_size=28, **kw))
        assert not _seen(ds) & _rows(test_x[list(hold.indices)])
        shown = ds.y_test if kw.get("holdout_val") else ds.y_val
        assert len(shown) == 40  # the official test split less the hidden 10, as val or (holdout_val) test
    assert load_hidden_split(hold, 14).x.shape == (10, 1, 14, 14)  # at the scored run's image size


def test_cifar10_and_svhn_hide_from_their_official_test_split(lab_home, monkeypatch):
    folder = lab_home / "data" / "cifar-10-batches-py"
    batches = make_cifar(folder, per_batch=20)
    trust_cifar_files(monkeypatch, folder)
    make_svhn(lab_home / "data" / "svhn", n_train=20, n_test=30)
    trust_svhn_files(monkeypatch, lab_home / "data" / "svhn")
    for name, n_test in (("cifar10", 20), ("svhn", 30)):
        hold = create_holdout(name, seed=1)
        hidden = load_hidden_split(hold, 32)
        assert len(hold.indices) == round(0.2 * n_test) and hidden.x.shape == (len(hold.indices), 3, 32, 32)
        _check_halves(hold, hidden)
        for kw in CONFIGS:
            ds = load_dataset(DataConfig(name, image_size=32, **kw))
            assert not _seen(ds) & _rows(_u8(hidden.x))
            assert len(ds.y_test if kw.get("holdout_val") else ds.y_val) == n_test - len(hold.indices)
    raw = torch.tensor(batches["test_batch"]["data"]).reshape(-1, 3, 32, 32)
    assert torch.equal(_u8(load_hidden_split(find_holdout("cifar10"), 32).x),
                       raw[list(find_holdout("cifar10").indices)])  # the official test images, in file order


def test_other_files_under_the_same_name_are_refused_not_split_at_the_wrong_indices(lab_home):
    raw = lab_home / "data" / "MNIST" / "raw"
    make_mnist(raw, n_train=20, n_test=30)
    hold = create_holdout("mnist", seed=0)
    make_mnist(raw, n_train=20, n_test=40, seed=1)  # another MNIST: torchvision checks no md5 for it
    with pytest.raises(ValueError, match="is not the pool mnist's hidden test split was cut from"):
        load_dataset(DataConfig("mnist", image_size=28))
    with pytest.raises(ValueError, match="is not the pool"):
        load_hidden_split(hold, 28)


def test_imagenette_hides_files_of_its_official_val_split(lab_home):
    make_nette(lab_home / "data", train=1, val=5)
    hold = create_holdout("imagenette", seed=2)
    assert len(hold.files) == len(hold.digests) == len(hold.indices) == 10 and hold.pool_size == 50
    assert all(f.startswith("val/") for f in hold.files)
    hidden = load_hidden_split(hold, 16)
    assert torch.bincount(hidden.y, minlength=10).tolist() == [1] * 10
    _check_halves(hold, hidden)
    for kw in ({}, {"holdout_val": True, "val_fraction": 0.5}):
        ds = load_dataset(DataConfig("imagenette", image_size=16, **kw))
        shown = ds.pixels_test if kw else ds.pixels_val
        assert len(shown) == 40 and not _rows(shown) & _rows(_u8(hidden.x))


@pytest.fixture
def pets():
    """folder:pets under $RESNET_LAB_HOME/datasets: 3 classes of 10, 6 and 4 images."""
    return make_dataset(datasets_root() / "pets", {"cats": 10, "dogs": 6, "mice": 4})


def test_a_folder_dataset_hides_files_of_each_class_before_the_val_split(lab_home, pets):
    hold = create_holdout("folder:pets", seed=0)
    assert holdout_path("folder:pets") == lab_home / "holdouts" / "folders" / "pets.json"
    assert hold.pool_size == 20 and len(hold.files) == 4  # round(20 %) of each class: 2, 1 and 1
    assert sorted(f.split("/")[0] for f in hold.files) == ["cats", "cats", "dogs", "mice"]
    hidden = load_hidden_split(hold, 16)
    _check_halves(hold, hidden)
    assert hidden.class_names == ("cats", "dogs", "mice") and sorted(hidden.y.tolist()) == [0, 0, 1, 2]
    secret = _rows(_u8(hidden.x))
    for seed in (0, 5):
        for fraction in (0.01, 0.2, 0.5):
            for subset in (None, 6):
                ds = load_dataset(DataConfig("folder:pets", image_size=16, seed=seed, val_fraction=fraction,
                                             train_subset=subset))
                assert not _seen(_as_u8(ds)) & secret
                assert len(ds.y_train) == subset if subset else len(ds.y_train) + len(ds.y_val) == 16


def _as_u8(ds):
    import dataclasses

    return dataclasses.replace(ds, pixels_train=_u8(ds.pixels_train), pixels_val=_u8(ds.pixels_val))


@pytest.mark.parametrize("change", ["rename a hidden file", "add a file", "import again"])
def test_a_folder_whose_files_changed_after_the_cut_is_refused_rather_than_leaked(lab_home, pets, change):
    hold = create_holdout("folder:pets", seed=0)
    if change == "rename a hidden file":  # the hidden image would come back under another name
        (pets / hold.files[0]).rename(pets / "cats" / "renamed.png")
    elif change == "add a file":
        save_image(pets / "dogs" / "new.png", 999)
    else:
        shutil.rmtree(pets)
        make_dataset(pets, {"cats": 10, "dogs": 6, "mice": 4}, seed=50)
    with pytest.raises(ValueError, match="is not the pool folder:pets's hidden test split was cut from"):
        load_dataset(DataConfig("folder:pets", image_size=16))
    with pytest.raises(ValueError, match="is not the pool"):
        load_hidden_split(hold, 16)


def test_a_record_whose_files_do_not_match_its_indices_is_damaged(lab_home, pets):
    create_holdout("folder:pets", seed=0)
    raw = json.loads(holdout_path("folder:pets").read_text())
    raw["digests"] = raw["digests"][:-1]
    holdout_path("folder:pets").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="is damaged"):
        load_dataset(DataConfig("folder:pets", image_size=16))


DEFINITION = '''id = "ch"
title = "A challenge"
dataset = "{}"
deadline = 2099-01-01T00:00:00Z
'''


def test_a_challenge_opens_on_the_file_datasets_and_is_refused_when_their_files_are_missing(lab_home, pets):
    make_mnist(lab_home / "data" / "MNIST" / "raw", n_train=20, n_test=30)
    store = Store()
    try:
        hold = open_challenge(store, parse_challenge_text(DEFINITION.format("mnist")), MACHINE, ClassSettings())
        assert hold == find_holdout("mnist") and len(hold.indices) == 6
        c = parse_challenge_text(DEFINITION.format("folder:pets").replace('"ch"', '"pets"'))
        assert open_challenge(store, c, MACHINE, ClassSettings()).files
        with pytest.raises(DatasetMissing, match="CIFAR-10 is not in") as e:
            c = parse_challenge_text(DEFINITION.format("cifar10").replace('"ch"', '"cif"'))
            open_challenge(store, c, MACHINE, ClassSettings())
        assert "cifar-10-python.tar.gz" in str(e.value) and find_holdout("cifar10") is None
        assert store.challenges.get("cif") is None  # nothing recorded for a refused challenge
        with pytest.raises(ValueError, match="no user dataset named 'cats'"):
            open_challenge(store, parse_challenge_text(DEFINITION.format("folder:cats").replace('"ch"', '"c2"')),
                           MACHINE, ClassSettings())
    finally:
        store.close()
    with pytest.raises(ChallengeError, match="or an imported folder:NAME"):
        parse_challenge_text(DEFINITION.format("imagenet"))


def test_a_challenge_file_on_a_dataset_without_its_files_is_listed_as_a_problem_not_opened(lab_home, tmp_path):
    folder = tmp_path / "lessons" / "challenges"
    folder.mkdir(parents=True)
    for cid, dataset in (("dig", "digits"), ("cif", "cifar10"), ("pets", "folder:pets")):
        (folder / f"{cid}.toml").write_text(DEFINITION.format(dataset).replace('"ch"', f'"{cid}"'))
    store = Store()
    try:
        found, problems = list_challenges(store, ClassSettings(lessons_dirs=(tmp_path / "lessons",)))
    finally:
        store.close()
    assert [c.id for c in found] == ["dig"]  # the pages cut the hidden split of what is listed: only what can be cut
    assert "CIFAR-10 is not in" in problems[str(folder / "cif.toml")]
    assert "no user dataset named 'pets'" in problems[str(folder / "pets.toml")]
    assert find_holdout("cifar10") is None and not (lab_home / "holdouts" / "folders").exists()
