"""User datasets from class folders: scanning, naming, path safety, loading, caching and the split."""

import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import resnet_lab.data.folders as folders
from resnet_lab.data.folders import (
    dataset_path,
    datasets_root,
    delete_dataset_files,
    list_user_datasets,
    load_folder_dataset,
    scan_folder,
    stratified_split,
    validate_name,
)
from resnet_lab.data.registry import Dataset, channel_stats
from resnet_lab.data.zip_import import DatasetRejected, import_zip


def save_image(path: Path, seed: int, size: tuple[int, int] = (24, 20), fmt: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(path, fmt)
    return path


def make_dataset(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    for k, (cls, n) in enumerate(counts.items()):
        for i in range(n):
            save_image(root / cls / f"{i:03d}.png", seed + 100 * k + i)
    return root


@pytest.fixture
def ds():
    """A dataset folder registered under $RESNET_LAB_HOME/datasets/pets: 3 classes of 10, 6 and 4 images."""
    return make_dataset(datasets_root() / "pets", {"cats": 10, "dogs": 6, "mice": 4})


# ---------------------------------------------------------------------------------------------------
# scan_folder


def test_scan_counts_and_skips_with_reasons(tmp_path):
    root = make_dataset(tmp_path / "d", {"b_dogs": 5, "a_cats": 6})
    (root / "a_cats" / "notes.txt").write_text("taken on holiday\n")
    save_image(root / "a_cats" / "tiny.png", 1, size=(8, 30))
    save_image(root / "b_dogs" / "icon.ico", 2, size=(32, 32), fmt="ICO")
    good = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(good, "JPEG")
    (root / "b_dogs" / "cut.jpg").write_bytes(good.getvalue()[:-300])
    save_image(root / "a_cats" / "nested" / "deep.png", 3)  # sub-folders of a class count for the class
    save_image(root / "loose.png", 4)  # not inside a class folder
    (root / "a_cats" / ".DS_Store").write_bytes(b"junk")
    (root / "__MACOSX").mkdir()
    report = scan_folder(root)
    assert report.ok and report.error is None
    assert report.root == root
    assert report.class_names == ("a_cats", "b_dogs")
    assert report.counts == {"a_cats": 7, "b_dogs": 5}
    assert report.num_images == 12
    kinds = {s.path: s.kind for s in report.skipped}
    assert kinds == {
        "loose.png": "outside_class",
        "a_cats/notes.txt": "not_image",
        "a_cats/tiny.png": "too_small",
        "b_dogs/icon.ico": "unsupported",
        "b_dogs/cut.jpg": "truncated",
    }
    assert all(s.reason for s in report.skipped)
    assert report.warnings == ("5 files were skipped (see the list)",)
    assert report.to_dict()["counts"] == {"a_cats": 7, "b_dogs": 5}


def test_scan_warnings_small_empty_imbalanced(tmp_path):
    root = make_dataset(tmp_path / "d", {"big": 33, "small": 3})
    (root / "empty").mkdir()
    report = scan_folder(root)
    assert report.ok and report.class_names == ("big", "small")
    assert report.counts == {"big": 33, "empty": 0, "small": 3}
    text = "\n".join(report.warnings)
    assert "'empty' has no usable images" in text
    assert "'small' has only 3 images" in text
    assert "heavily imbalanced" in text and "11.0x" in text


def test_scan_not_ok_cases(tmp_path):
    one = scan_folder(make_dataset(tmp_path / "one", {"cats": 5}))
    assert not one.ok and "only one class" in one.error and one.class_names == ("cats",)
    assert any("only one class" in w for w in one.warnings)
    (tmp_path / "none" / "a").mkdir(parents=True)
    (tmp_path / "none" / "b").mkdir()
    none = scan_folder(tmp_path / "none")
    assert not none.ok and "no usable images" in none.error
    (tmp_path / "flat").mkdir()
    save_image(tmp_path / "flat" / "x.png", 0)
    flat = scan_folder(tmp_path / "flat")
    assert not flat.ok and "no class folders" in flat.error
    assert flat.skipped[0].kind == "outside_class"


def test_scan_descends_into_one_wrapper_folder(tmp_path):
    root = make_dataset(tmp_path / "d" / "myzip", {"cats": 5, "dogs": 5})
    report = scan_folder(tmp_path / "d")
    assert report.ok and report.root == root and report.class_names == ("cats", "dogs")
    # a single class folder holding only images is not a wrapper: it is one class
    single = make_dataset(tmp_path / "s", {"cats": 5})
    assert scan_folder(single).class_names == ("cats",)


def test_scan_never_follows_symlinks(tmp_path):
    root = make_dataset(tmp_path / "d", {"cats": 5, "dogs": 5})
    outside = save_image(tmp_path / "outside.png", 9)
    os.symlink(outside, root / "cats" / "link.png")
    os.symlink(tmp_path, root / "dogs" / "up")
    report = scan_folder(root)
    assert report.counts == {"cats": 5, "dogs": 5}
    assert {s.path: s.kind for s in report.skipped} == {"cats/link.png": "symlink", "dogs/up": "symlink"}


# ---------------------------------------------------------------------------------------------------
# names and paths


def test_validate_name():
    for good in ("pets", "a", "my-set_2", "x" * 40):
        assert validate_name(good) == good
    for bad in ("", "Pets", "a b", "../x", "x" * 41, ".", "..", "a.b", "ümlaut", None, 3):
        with pytest.raises(ValueError, match="not allowed"):
            validate_name(bad)


def test_dataset_path_stays_inside_datasets_dir(ds, tmp_path):
    base = datasets_root().resolve()
    assert dataset_path("pets") == base / "pets"
    assert dataset_path(ds) == base / "pets"
    assert dataset_path(str(ds)) == base / "pets"
    assert dataset_path(Path("pets")) == base / "pets"
    for bad in ("../x", "..", "/etc", str(tmp_path), "pets/cats", base / "pets" / ".." / ".." / "x", "Pets"):
        with pytest.raises(ValueError):
            dataset_path(bad)
    os.symlink(tmp_path, datasets_root() / "sneaky")
    with pytest.raises(ValueError, match="not a dataset folder directly inside"):
        dataset_path("sneaky")
    with pytest.raises(ValueError, match="no user dataset named 'nope'.*imported: pets"):
        dataset_path("nope")
    with pytest.raises(ValueError):
        load_folder_dataset("../x", 16)


def test_list_and_remove_user_datasets(ds):
    assert list_user_datasets() == ["pets"]
    (datasets_root() / ".pets2.partial-abc").mkdir()  # an extraction in progress is not a dataset
    (datasets_root() / "Bad Name").mkdir()
    (datasets_root() / "file").write_text("x")
    assert list_user_datasets() == ["pets"]
    assert list_user_datasets(datasets_root()) == ["pets"]
    delete_dataset_files("pets")
    assert list_user_datasets() == []
    with pytest.raises(ValueError):
        delete_dataset_files("../x")


def test_list_user_datasets_without_folder(tmp_path):
    assert list_user_datasets(tmp_path / "missing") == []


def test_import_zip_then_load(tmp_path):
    z = tmp_path / "pets.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for cls in ("cats", "dogs"):
            for i in range(5):
                buf = io.BytesIO()
                Image.new("RGB", (20, 20), (255, 0, 0) if cls == "cats" else (0, 0, 255)).save(buf, "PNG")
                zf.writestr(f"pets/{cls}/{i}.png", buf.getvalue())
    report = import_zip(z, "pets")
    assert report.ok and list_user_datasets() == ["pets"]
    d = load_folder_dataset("pets", 16)
    assert d.class_names == ("cats", "dogs")
    red = d.x_train[d.y_train == 0]
    assert torch.allclose(red[:, 0], torch.ones_like(red[:, 0])) and float(red[:, 2].max()) == 0.0


def _zip_of(path: Path, sizes: list[tuple[int, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("bs", "ds"):
            for i, size in enumerate(sizes):
                buf = io.BytesIO()
                Image.new("RGB", size, (200, 10 * i, 0) if cls == "bs" else (0, 10 * i, 200)).save(buf, "PNG")
                zf.writestr(f"{cls}/{i}.png", buf.getvalue())
    return path


@pytest.mark.parametrize("hflip", [True, False])
def test_import_keeps_the_flip_answer_and_the_images_size_with_the_dataset(tmp_path, hflip):
    from resnet_lab.data.folders import dataset_meta
    from resnet_lab.data.registry import DataConfig, dataset_info, load_dataset

    z = _zip_of(tmp_path / "letters.zip", [(40, 30), (90, 50), (48, 60), (200, 44), (41, 41)])
    report = import_zip(z, "letters", hflip=hflip)
    assert report.native_size == 44  # the median shorter side of 30, 50, 48, 44, 41
    assert dataset_meta("letters") == {"hflip": hflip, "native_size": 44}
    info = dataset_info("folder:letters")
    assert info.hflip is hflip and info.native_size == 44
    assert load_dataset(DataConfig(name="folder:letters", image_size=16)).hflip is hflip


def test_a_dataset_imported_without_an_answer_or_with_a_damaged_record_does_not_flip(tmp_path):
    from resnet_lab.data.folders import META_FILE, dataset_meta, dataset_path

    import_zip(_zip_of(tmp_path / "old.zip", [(20, 20)] * 3), "old")
    dataset_path("old").joinpath(META_FILE).unlink()  # imported before the lab kept it
    assert dataset_meta("old") == {"hflip": False, "native_size": 64}
    dataset_path("old").joinpath(META_FILE).write_text('{"hflip": "yes", "native_size": -3')
    assert dataset_meta("old") == {"hflip": False, "native_size": 64}
    assert list_user_datasets() == ["old"] and load_folder_dataset("old", 16).class_names == ("bs", "ds")


def test_import_zip_rejects_and_cleans_up(tmp_path):
    z = tmp_path / "cats.zip"
    with zipfile.ZipFile(z, "w") as zf:
        buf = io.BytesIO()
        Image.new("RGB", (20, 20)).save(buf, "PNG")
        zf.writestr("cats/0.png", buf.getvalue())
    with pytest.raises(DatasetRejected) as e:
        import_zip(z, "cats", datasets_dir=tmp_path / "sets")
    assert not e.value.report.ok
    assert list_user_datasets(tmp_path / "sets") == []
    assert os.listdir(tmp_path / "sets") == []


# ---------------------------------------------------------------------------------------------------
# load_folder_dataset


def test_load_shapes_dtypes_and_stats(ds):
    d = load_folder_dataset("pets", 16, val_fraction=0.25, seed=3)
    assert isinstance(d, Dataset)
    assert d.class_names == ("cats", "dogs", "mice")
    assert d.in_channels == 3 and d.hflip is False and d.image_size == 16
    assert d.x_train.dtype == torch.float32 and d.x_val.dtype == torch.float32
    assert d.y_train.dtype == torch.int64 and d.y_val.dtype == torch.int64
    assert tuple(d.x_train.shape[1:]) == (3, 16, 16) and tuple(d.x_val.shape[1:]) == (3, 16, 16)
    assert d.x_train.shape[0] + d.x_val.shape[0] == 20
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) <= 1
    # values are multiples of 1/255: the uint8 cache round trip
    assert torch.allclose(d.x_train * 255, (d.x_train * 255).round(), atol=1e-4)
    mean, std = channel_stats(d.x_train)
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(std)


def test_split_is_stratified_and_seeded(ds):
    d = load_folder_dataset(ds, 16, val_fraction=0.25, seed=0)
    # round(n * 0.25) per class, at least one: cats 10 -> 2 (round half to even: 2.5 -> 2), dogs 6 -> 2, mice 4 -> 1
    assert torch.bincount(d.y_val, minlength=3).tolist() == [2, 2, 1]
    assert torch.bincount(d.y_train, minlength=3).tolist() == [8, 4, 3]
    again = load_folder_dataset(ds, 16, val_fraction=0.25, seed=0)
    assert torch.equal(again.x_val, d.x_val) and torch.equal(again.y_val, d.y_val)
    other = load_folder_dataset(ds, 16, val_fraction=0.25, seed=1)
    assert not torch.equal(other.x_val, d.x_val)
    assert torch.bincount(other.y_val, minlength=3).tolist() == [2, 2, 1]
    # train and val never share an image
    flat_t, flat_v = d.x_train.flatten(1), d.x_val.flatten(1)
    assert not (torch.cdist(flat_v, flat_t).min(dim=1).values == 0).any()


def test_stratified_split_every_class_with_two_images_in_val():
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])
    tr, va = stratified_split(y, 4, 0.01, seed=5)
    assert sorted(set(y[va].tolist())) == [0, 1, 3]  # class 2 has one image: it stays in train
    assert torch.equal(torch.cat([tr, va]).sort().values, torch.arange(len(y)))
    tr, va = stratified_split(y, 4, 0.5, seed=5)
    assert torch.bincount(y[va], minlength=4).tolist() == [1, 2, 0, 8]  # 0.5 * 2 = 1, 1.5 -> 2, 16 * 0.5 = 8


def test_cache_hit_on_second_load(ds, monkeypatch):
    calls = []
    real = folders.decode_image
    monkeypatch.setattr(folders, "decode_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    t0 = time.perf_counter()
    first = load_folder_dataset("pets", 16)
    cold = time.perf_counter() - t0
    assert len(calls) == 20
    assert (ds / ".cache_16.pt").is_file()
    t0 = time.perf_counter()
    second = load_folder_dataset("pets", 16)
    warm = time.perf_counter() - t0
    assert len(calls) == 20  # nothing decoded again
    for f in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(first, f), getattr(second, f))
    assert second.class_names == first.class_names and second.mean == first.mean
    print(f"cold load {cold * 1000:.1f} ms, cached load {warm * 1000:.1f} ms")  # shown with -s; never asserted
    # the cache file is read back safely and never counted as data
    data = torch.load(ds / ".cache_16.pt", weights_only=True)
    assert data["x"].dtype == torch.uint8 and tuple(data["x"].shape) == (20, 3, 16, 16)
    assert scan_folder(ds).counts == {"cats": 10, "dogs": 6, "mice": 4}
    # another size gets its own cache
    calls.clear()
    load_folder_dataset("pets", 20)
    assert (ds / ".cache_20.pt").is_file() and len(calls) == 20


def test_cache_invalidated_when_files_change(ds, monkeypatch):
    calls = []
    real = folders.decode_image
    monkeypatch.setattr(folders, "decode_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = load_folder_dataset("pets", 16)
    save_image(ds / "mice" / "new.png", 1234)
    second = load_folder_dataset("pets", 16)
    assert len(calls) == 20 + 21
    assert first.x_train.shape[0] + first.x_val.shape[0] == 20
    assert second.x_train.shape[0] + second.x_val.shape[0] == 21
    # rewriting a file in place (new content, new mtime) also invalidates
    target = ds / "cats" / "000.png"
    save_image(target, 999)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_folder_dataset("pets", 16)
    assert len(calls) == 20 + 21 + 21


def test_corrupt_cache_is_rebuilt(ds):
    first = load_folder_dataset("pets", 16)
    (ds / ".cache_16.pt").write_bytes(b"not a torch file")
    again = load_folder_dataset("pets", 16)
    assert torch.equal(first.x_train, again.x_train)
    assert torch.load(ds / ".cache_16.pt", weights_only=True)["x"].dtype == torch.uint8


def test_load_skips_bad_files_and_empty_classes(ds):
    (ds / "cats" / "bad.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    (ds / "birds").mkdir()
    (ds / "birds" / "readme.txt").write_text("no birds yet")
    d = load_folder_dataset("pets", 16)
    assert d.class_names == ("cats", "dogs", "mice")
    assert d.x_train.shape[0] + d.x_val.shape[0] == 20


def test_load_refuses_one_class_and_bad_arguments(tmp_path):
    make_dataset(datasets_root() / "solo", {"cats": 4})
    with pytest.raises(ValueError, match="at least two"):
        load_folder_dataset("solo", 16)
    make_dataset(datasets_root() / "duo", {"a": 2, "b": 2})
    for kwargs in ({"image_size": 4}, {"image_size": 16.0}, {"image_size": 16, "val_fraction": 0.9},
                   {"image_size": 16, "seed": -1}):
        with pytest.raises(ValueError, match="out of range|must be an integer"):
            load_folder_dataset("duo", **kwargs)


def test_load_with_explicit_datasets_dir_and_wrapper(tmp_path):
    make_dataset(tmp_path / "sets" / "wrapped" / "inner", {"a": 3, "b": 3})
    d = load_folder_dataset("wrapped", 12, datasets_dir=tmp_path / "sets")
    assert d.class_names == ("a", "b") and tuple(d.x_val.shape[1:]) == (3, 12, 12)
    assert torch.bincount(d.y_val).tolist() == [1, 1]
    assert (tmp_path / "sets" / "wrapped" / ".cache_12.pt").is_file()
