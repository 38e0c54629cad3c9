"""CIFAR-10 / MNIST / Fashion-MNIST read through torchvision from files laid out exactly as it expects.

What torchvision 0.29 checks, and so what these tests can and cannot fake:

* MNIST and FashionMNIST only check that ``<root>/<Class>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
  exist, then parse them: tiny idx files written here go through torchvision's real reader.
* CIFAR10 checks the md5 of all six batch files (and of batches.meta) against a table in the class.
  Hand-made batch files are therefore rejected, which is tested as such. To exercise the whole
  load path anyway, one test points that table at the md5s of the tiny files it writes
  (``monkeypatch`` on the class attributes): torchvision's own md5 check, pickle reading and
  HWC->CHW handling then run for real on them.
"""

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets

from resnet_lab.data import DataConfig, DatasetMissing, load_dataset

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def idx_bytes(arr: np.ndarray) -> bytes:
    """The idx format: magic 0x0000 08 <ndim> (0x08 = unsigned byte), big-endian dims, then the raw bytes."""
    assert arr.dtype == np.uint8
    return struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def make_mnist(raw: Path, n_train=30, n_test=10, seed=0, gz=False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    raw.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
        else:
            (raw / name).write_bytes(idx_bytes(arr))
    return arrays


def make_cifar(folder: Path, per_batch=4, seed=0) -> dict[str, dict]:
    """Tiny batches in CIFAR-10's python format: {'data': uint8 N x 3072 (R plane, G, B, row-major), 'labels'}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate(CIFAR_BATCHES):
        batch = {
            "batch_label": name,
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            "labels": [int(v) for v in (np.arange(per_batch) + i) % 10],
            "filenames": [f"{name}_{j}.png" for j in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    meta = {"label_names": CIFAR_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def trust_cifar_files(monkeypatch, folder: Path) -> None:
    """Point torchvision's CIFAR10 md5 table at the files in ``folder`` (what a genuine download would match)."""
    c = datasets.CIFAR10
    monkeypatch.setattr(c, "train_list", [[f, md5(folder / f)] for f, _ in c.train_list])
    monkeypatch.setattr(c, "test_list", [[f, md5(folder / f)] for f, _ in c.test_list])
    monkeypatch.setattr(c, "meta", {**c.meta, "md5": md5(folder / "batches.meta")})


# --- MNIST / Fashion-MNIST ----------------------------------------------------------------------


def test_mnist_loads_from_idx_files_under_resnet_lab_home(lab_home):
    arrays = make_mnist(lab_home / "data" / "MNIST" / "raw")
    ds = load_dataset(DataConfig("mnist", image_size=28))  # root defaults to $RESNET_LAB_HOME/data
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_val.shape == (10, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    assert torch.equal(ds.x_train, expected)
    assert ds.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert ds.y_val.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()  # the official test split is val
    assert ds.class_names == tuple(datasets.MNIST.classes) and ds.in_channels == 1 and not ds.hflip


def test_fashion_mnist_resized_from_explicit_root(tmp_path):
    make_mnist(tmp_path / "FashionMNIST" / "raw", seed=1)
    ds = load_dataset(DataConfig("fashion_mnist", image_size=32), root=tmp_path)
    assert ds.x_train.shape == (30, 1, 32, 32) and ds.x_val.shape == (10, 1, 32, 32)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.class_names == tuple(datasets.FashionMNIST.classes) and ds.hflip
    small = load_dataset(DataConfig("fashion_mnist", image_size=14), root=tmp_path)  # antialiased downsizing
    assert small.x_val.shape == (10, 1, 14, 14)


def test_mnist_train_subset_is_stratified(lab_home):
    make_mnist(lab_home / "data" / "MNIST" / "raw", n_train=100)
    ds = load_dataset(DataConfig("mnist", image_size=28, train_subset=20))
    assert ds.y_train.bincount(minlength=10).tolist() == [2] * 10
    assert len(ds.y_val) == 10


def test_mnist_missing_files_say_what_to_download_and_where(lab_home):
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("mnist", image_size=28))
    err = e.value
    raw = lab_home / "data" / "MNIST" / "raw"
    assert isinstance(err, ValueError) and err.directory == raw and err.missing == MNIST_FILES
    msg = str(err)
    assert str(raw) in msg and "never downloads" in msg
    for name in MNIST_FILES:
        assert name in msg and f"{name}.gz" in msg
    assert datasets.MNIST.mirrors[0] in msg
    again = pickle.loads(pickle.dumps(err))  # e.g. reported from a worker process
    assert str(again) == msg and again.directory == raw and again.missing == MNIST_FILES


def test_mnist_partly_missing_names_only_the_missing_files(lab_home):
    raw = lab_home / "data" / "MNIST" / "raw"
    make_mnist(raw)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("mnist", image_size=28))
    assert e.value.missing == ("t10k-labels-idx1-ubyte",)


def test_mnist_gz_files_are_decompressed_only_when_their_md5_matches(lab_home, monkeypatch):
    raw = lab_home / "data" / "MNIST" / "raw"
    arrays = make_mnist(raw, gz=True)
    with pytest.raises(DatasetMissing) as e:  # the real md5 table: these .gz files are not the official ones
        load_dataset(DataConfig("mnist", image_size=28))
    assert "md5 does not match" in str(e.value) and not (raw / MNIST_FILES[0]).exists()
    trusted = [(gz, md5(raw / gz)) for gz, _ in datasets.MNIST.resources]
    monkeypatch.setattr(datasets.MNIST, "resources", trusted)
    ds = load_dataset(DataConfig("mnist", image_size=28))
    assert all((raw / f).is_file() for f in MNIST_FILES)
    assert torch.equal(ds.x_val, torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().unsqueeze(1) / 255)


def test_mnist_unreadable_file_is_reported(lab_home):
    raw = lab_home / "data" / "MNIST" / "raw"
    make_mnist(raw)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03 not an idx file")
    with pytest.raises(DatasetMissing, match="could not be read") as e:
        load_dataset(DataConfig("mnist", image_size=28))
    assert str(raw) in str(e.value)


# --- CIFAR-10 ------------------------------------------------------------------------------------


def test_cifar_missing_files_say_what_to_download_and_where(lab_home):
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("cifar10"))
    folder = lab_home / "data" / "cifar-10-batches-py"
    assert e.value.directory == folder and e.value.missing == (*CIFAR_BATCHES, "batches.meta")
    msg = str(e.value)
    assert str(folder) in msg and "cifar-10-python.tar.gz" in msg and datasets.CIFAR10.url in msg
    for name in (*CIFAR_BATCHES, "batches.meta"):
        assert name in msg


def test_cifar_handmade_files_fail_torchvisions_md5_check(lab_home):
    make_cifar(lab_home / "data" / "cifar-10-batches-py")
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("cifar10"))
    assert e.value.corrupted == (*CIFAR_BATCHES, "batches.meta") and not e.value.missing
    assert "md5 does not match" in str(e.value)


def test_cifar_loads_through_torchvision_when_md5s_match(lab_home, monkeypatch):
    folder = lab_home / "data" / "cifar-10-batches-py"
    batches = make_cifar(folder)
    trust_cifar_files(monkeypatch, folder)
    ds = load_dataset(DataConfig("cifar10", image_size=32))
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_val.shape == (4, 3, 32, 32)
    # the python format stores each image as R, G, B planes of 32x32, row-major
    first = torch.from_numpy(batches["data_batch_1"]["data"][0]).view(3, 32, 32).float() / 255
    assert torch.equal(ds.x_train[0], first)
    test = torch.from_numpy(batches["test_batch"]["data"]).view(-1, 3, 32, 32).float() / 255
    assert torch.equal(ds.x_val, test)
    expected_labels = sum((batches[b]["labels"] for b in CIFAR_BATCHES[:5]), [])
    assert ds.y_train.tolist() == expected_labels
    assert ds.class_names == tuple(CIFAR_NAMES) and ds.in_channels == 3 and ds.hflip
    resized = load_dataset(DataConfig("cifar10", image_size=16, train_subset=10))
    assert resized.x_train.shape == (10, 3, 16, 16)
    assert len(set(resized.y_train.tolist())) == 8  # stratified: all 8 classes of the fake files first


def _tar_gz(path: Path, source: Path, extra: dict[str, bytes] | None = None, link: bool = False) -> None:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("cifar-10-batches-py/link")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)


def test_cifar_archive_is_extracted_when_its_md5_matches(lab_home, tmp_path, monkeypatch):
    staging = tmp_path / "staging"
    make_cifar(staging)
    trust_cifar_files(monkeypatch, staging)
    root = lab_home / "data"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    _tar_gz(archive, staging, extra={"../escaped.txt": b"x", "elsewhere/file.txt": b"y"}, link=True)

    with pytest.raises(DatasetMissing) as e:  # the real table: this archive is not the official one
        load_dataset(DataConfig("cifar10"))
    assert "md5 does not match" in str(e.value) and not (root / "cifar-10-batches-py").exists()

    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", md5(archive))
    ds = load_dataset(DataConfig("cifar10"))
    assert ds.x_train.shape == (20, 3, 32, 32)
    # only plain files inside cifar-10-batches-py/ were written
    assert not (lab_home / "escaped.txt").exists() and not (root / "elsewhere").exists()
    assert not (root / "cifar-10-batches-py" / "link").exists()


# --- kept as uint8, converted per batch on the device ---------------------------------------------


def test_cifar_is_kept_as_uint8_and_batches_match_the_float_path(lab_home, monkeypatch):
    """One byte a value in the Dataset; training batches (augmented, normalized) equal, to 1e-6, what the
    old float32-at-load path gave for the same images and the same random numbers."""
    from resnet_lab.data import Dataset
    from resnet_lab.train.batches import ImageBatches

    folder = lab_home / "data" / "cifar-10-batches-py"
    batches = make_cifar(folder, per_batch=8)
    trust_cifar_files(monkeypatch, folder)
    ds = load_dataset(DataConfig("cifar10", image_size=32))
    assert ds.pixels_train.dtype == torch.uint8 and ds.pixels_train.element_size() == 1
    assert ds.pixels_train.shape == (40, 3, 32, 32) and ds.pixels_train.is_contiguous()
    assert ds.nbytes == (40 + 8) * 3 * 32 * 32  # 1 byte a value; the float view is not made by loading
    assert "_unit_train" not in ds.__dict__
    raw = np.concatenate([batches[b]["data"] for b in CIFAR_BATCHES[:5]]).reshape(-1, 3, 32, 32)
    assert torch.equal(ds.pixels_train, torch.from_numpy(raw))

    old = Dataset.from_tensors(ds.pixels_train.float() / 255, ds.y_train, ds.pixels_val.float() / 255, ds.y_val,
                               ds.class_names, hflip=ds.hflip)  # what loading gave before: float32 in [0, 1]
    assert old.mean == pytest.approx(ds.mean, abs=1e-7) and old.std == pytest.approx(ds.std, abs=1e-7)
    assert torch.equal(ds.x_train, old.pixels_train)  # the float view is exactly the old tensor
    cpu = torch.device("cpu")
    new_b = ImageBatches(ds, cpu, True, torch.Generator().manual_seed(3))
    old_b = ImageBatches(old, cpu, True, torch.Generator().manual_seed(3))
    assert new_b.x_train.dtype == torch.uint8  # what goes to the device
    for idx in (torch.arange(16), torch.tensor([5, 1, 39, 0, 22])):
        (xn, yn), (xo, yo) = new_b.train(idx), old_b.train(idx)
        assert xn.dtype == torch.float32 and torch.equal(yn, yo)
        torch.testing.assert_close(xn, xo, atol=1e-6, rtol=0)
    for (xn, yn), (xo, yo) in zip(new_b.val(), old_b.val(), strict=True):
        torch.testing.assert_close(xn, xo, atol=1e-6, rtol=0)
        assert torch.equal(yn, yo)


def test_a_resize_keeps_uint8_rounded_from_the_antialiased_float(tmp_path):
    arrays = make_mnist(tmp_path / "MNIST" / "raw", n_train=20)
    ds = load_dataset(DataConfig("mnist", image_size=14), root=tmp_path)
    assert ds.pixels_train.dtype == torch.uint8 and ds.pixels_train.shape == (20, 1, 14, 14)
    src = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 255
    exact = torch.nn.functional.interpolate(src, size=(14, 14), mode="bilinear", align_corners=False, antialias=True)
    assert (ds.x_train - exact).abs().max() <= 0.5 / 255 + 1e-6  # rounding to the nearest level only


def test_holdout_val_splits_the_uint8_training_images_and_keeps_the_test_split(lab_home, monkeypatch):
    folder = lab_home / "data" / "cifar-10-batches-py"
    make_cifar(folder, per_batch=10)
    trust_cifar_files(monkeypatch, folder)
    ds = load_dataset(DataConfig("cifar10", val_fraction=0.2, holdout_val=True))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (40, 10, 10)
    assert ds.pixels_train.dtype == ds.pixels_val.dtype == ds.pixels_test.dtype == torch.uint8
    assert ds.x_test.dtype == torch.float32 and ds.x_test.shape == (10, 3, 32, 32)


# --- CIFAR-100 -----------------------------------------------------------------------------------


def make_cifar100(folder: Path, n_train=30, n_test=10, seed=0) -> dict[str, dict]:
    """Tiny files in CIFAR-100's python format: 'train' and 'test' with fine and coarse labels, 'meta' the names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        fine = [int(v) for v in (np.arange(n) * 7) % 100]
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": fine,
                 "coarse_labels": [v // 5 for v in fine], "filenames": [f"{name}_{j}.png" for j in range(n)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        out[name] = entry
    meta = {"fine_label_names": [f"class{i:02d}" for i in range(100)], "coarse_label_names": [str(i) for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return out


def test_cifar100_loads_through_torchvision_as_uint8_when_md5s_match(lab_home, monkeypatch):
    folder = lab_home / "data" / "cifar-100-python"
    files = make_cifar100(folder)
    with pytest.raises(DatasetMissing) as e:  # torchvision's real table: hand-made files are refused
        load_dataset(DataConfig("cifar100"))
    assert e.value.corrupted == ("train", "test", "meta")
    c = datasets.CIFAR100
    monkeypatch.setattr(c, "train_list", [["train", md5(folder / "train")]])
    monkeypatch.setattr(c, "test_list", [["test", md5(folder / "test")]])
    monkeypatch.setattr(c, "meta", {**c.meta, "md5": md5(folder / "meta")})
    ds = load_dataset(DataConfig("cifar100"))
    assert ds.pixels_train.dtype == torch.uint8 and ds.pixels_train.shape == (30, 3, 32, 32)
    assert torch.equal(ds.pixels_val, torch.from_numpy(files["test"]["data"]).view(-1, 3, 32, 32))
    assert ds.y_train.tolist() == files["train"]["fine_labels"]  # the 100 fine labels
    assert len(ds.class_names) == 100 and ds.class_names[7] == "class07" and ds.hflip


def test_cifar100_missing_files_say_what_to_download_and_where(lab_home):
    with pytest.raises(DatasetMissing) as e:
        load_dataset(DataConfig("cifar100"))
    folder = lab_home / "data" / "cifar-100-python"
    assert e.value.directory == folder and e.value.missing == ("train", "test", "meta")
    msg = str(e.value)
    assert "CIFAR-100" in msg and str(folder) in msg and datasets.CIFAR100.url in msg
    assert datasets.CIFAR100.tgz_md5 in msg and "cifar-100-python.tar.gz" in msg
