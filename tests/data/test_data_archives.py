"""The safe archive door, end to end through ``import_zip``: every hostile or messy upload gives the right
report or a clear refusal, writes nothing outside its destination, and never leaves a partial dataset.

Every zip is built here with ``zipfile`` from images drawn with PIL; nothing is downloaded.
"""

import io
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_lab.data.archives import ArchiveLimits, ArchiveRejected, extract_zip, is_junk
from resnet_lab.data.folders import META_FILE, datasets_root, list_user_datasets
from resnet_lab.data.zip_import import DatasetRejected, import_zip


def image_bytes(seed: int, fmt: str = "PNG", size: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def make_zip(path: Path, entries: dict) -> Path:
    """entries: name -> bytes (a file), None (a folder entry) or a ZipInfo-ready (info, bytes) pair."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name if name.endswith("/") else name + "/"), b"")
            elif isinstance(data, tuple):
                zf.writestr(*data)
            else:
                info = zipfile.ZipInfo(name)  # a ZipInfo keeps the name verbatim (no sanitising)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
    return path


def two_classes(prefix: str = "", n: int = 5) -> dict:
    classes = enumerate(("cats", "dogs"))
    return {f"{prefix}{c}/{c}_{i}.png": image_bytes(10 * k + i) for k, c in classes for i in range(n)}


def snapshot(root: Path) -> set[str]:
    """Every path under root (files and folders), relative."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def box(tmp_path):
    """A sandbox: uploads in tmp_path/upload, datasets in $RESNET_LAB_HOME/datasets (created up front)."""
    (tmp_path / "upload").mkdir()
    datasets_root().mkdir(parents=True)
    return tmp_path


def assert_refused(box: Path, zip_path: Path, name: str, exc=ValueError, match: str = "") -> pytest.ExceptionInfo:
    """The import fails with a clear message and leaves the whole sandbox (and the registry) as it was."""
    before, listed = snapshot(box), list_user_datasets()
    with pytest.raises(exc, match=match) as e:
        import_zip(zip_path, name)
    assert snapshot(box) == before
    assert list_user_datasets() == listed
    assert str(e.value)
    return e


def assert_imported(box: Path, zip_path: Path, name: str):
    """The import succeeds and only adds files under datasets/<name>."""
    before = snapshot(box)
    report = import_zip(zip_path, name)
    added = snapshot(box) - before
    prefix = (datasets_root() / name).relative_to(box).as_posix()
    assert added and all(a == prefix or a.startswith(prefix + "/") for a in added)
    assert snapshot(box) >= before
    assert name in list_user_datasets()
    return report


# ---------------------------------------------------------------------------------------------------
# the archive suite


def test_valid_zip(box):
    z = make_zip(box / "upload" / "pets.zip", two_classes())
    report = assert_imported(box, z, "pets")
    assert report.ok and report.error is None
    assert report.class_names == ("cats", "dogs")
    assert report.counts == {"cats": 5, "dogs": 5}
    assert report.skipped == () and report.warnings == ()
    assert sorted(p.name for p in (datasets_root() / "pets" / "cats").iterdir()) == [f"cats_{i}.png" for i in range(5)]


def test_wrapper_folder_accepted(box):
    z = make_zip(box / "upload" / "pets.zip", {"myzip/": None, **two_classes("myzip/")})
    report = assert_imported(box, z, "pets")
    assert report.ok and report.class_names == ("cats", "dogs")
    assert report.root == datasets_root() / "pets" / "myzip"


@pytest.mark.parametrize("evil", ["../evil.png", "cats/../../evil.png", "cats/../../../upload/evil.png"])
def test_parent_traversal_refused(box, evil):
    z = make_zip(box / "upload" / "evil.zip", {**two_classes(), evil: image_bytes(99)})
    e = assert_refused(box, z, "evil", ArchiveRejected, match=r"outside the archive folder")
    assert e.value.entry == evil


@pytest.mark.parametrize("evil", ["/tmp/evil.png", "//server/share/evil.png"])
def test_absolute_path_refused(box, evil):
    z = make_zip(box / "upload" / "evil.zip", {**two_classes(), evil: image_bytes(99)})
    e = assert_refused(box, z, "evil", ArchiveRejected, match="absolute path")
    assert e.value.entry == evil


@pytest.mark.parametrize(
    "evil,match",
    [("C:/Windows/evil.png", "drive letter"), ("cats\\..\\..\\evil.png", "backslash"), ("c:evil.png", "drive letter")],
)
def test_windows_path_tricks_refused(box, evil, match):
    z = make_zip(box / "upload" / "evil.zip", {**two_classes(), evil: image_bytes(99)})
    assert_refused(box, z, "evil", ArchiveRejected, match=match)


def test_symlink_entry_refused(box):
    link = zipfile.ZipInfo("cats/link.png")
    link.create_system = 3  # Unix, so external_attr carries st_mode
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = make_zip(box / "upload" / "link.zip", {**two_classes(), "cats/link.png": (link, "../../../../etc/passwd")})
    e = assert_refused(box, z, "link", ArchiveRejected, match="symbolic link")
    assert e.value.entry == "cats/link.png"


def test_compression_bomb_refused(box):
    # 200 MiB of zeros deflate to ~200 KiB (ratio ~1030x); streamed in, so the test stays fast and small.
    # Refused from the central directory (ratio > 200x) before a single byte is written.
    z = box / "upload" / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in two_classes().items():
            zf.writestr(name, data)
        with zf.open("cats/huge.png", "w") as f:
            zeros = bytes(1 << 20)
            for _ in range(200):
                f.write(zeros)
    assert z.stat().st_size < 1 << 20
    e = assert_refused(box, z, "bomb", ArchiveRejected, match="zip bomb")
    assert e.value.entry == "cats/huge.png"


def test_twenty_thousand_tiny_files_refused(box):
    z = box / "upload" / "many.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for i in range(20_000):
            zf.writestr(f"c{i % 2}/{i}.png", b"x")
    assert_refused(box, z, "many", ArchiveRejected, match=r"20,000 files; at most 10,000")


def test_macos_and_windows_debris_ignored(box):
    debris = {
        "__MACOSX/": None,
        "__MACOSX/cats/._cats_0.png": b"\x00\x05\x16\x07resource fork",
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
        "cats/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "dogs/Thumbs.db": b"\xd0\xcf\x11\xe0",
        "dogs/._dogs_0.png": b"appledouble",
        ".hidden/secret.png": image_bytes(77),
    }
    z = make_zip(box / "upload" / "mac.zip", {**two_classes(), **debris})
    report = assert_imported(box, z, "mac")
    assert report.ok and report.class_names == ("cats", "dogs")
    assert report.counts == {"cats": 5, "dogs": 5}
    assert report.skipped == ()  # debris is not even reported as skipped: it was never extracted
    written = set(snapshot(datasets_root() / "mac")) - {META_FILE}  # the lab's own record of the dataset
    assert not any("MACOSX" in p or "/." in "/" + p or "Thumbs" in p for p in written)


def test_one_class_only_refused_with_report(box):
    z = make_zip(box / "upload" / "cats.zip", {f"cats/{i}.png": image_bytes(i) for i in range(6)})
    e = assert_refused(box, z, "cats", DatasetRejected, match="only one class")
    report = e.value.report
    assert not report.ok and report.class_names == ("cats",)
    assert any("only one class" in w for w in report.warnings)
    assert not (datasets_root() / "cats").exists()


def test_empty_class_flagged_and_left_out(box):
    empty = {"birds/": None, "fish/": None, "fish/.DS_Store": b"junk"}  # fish holds only junk
    z = make_zip(box / "upload" / "pets.zip", {**two_classes(), **empty})
    report = assert_imported(box, z, "pets")
    assert report.ok
    assert report.class_names == ("cats", "dogs")  # the empty classes get no label
    assert report.counts == {"birds": 0, "cats": 5, "dogs": 5, "fish": 0}
    assert any("'birds' has no usable images" in w for w in report.warnings)
    assert any("'fish' has no usable images" in w for w in report.warnings)


def test_corrupt_jpeg_skipped_rest_fine(box):
    good = image_bytes(5, "JPEG", size=64)  # big enough that half of it is cut inside the scan data
    bad = {"cats/broken.jpg": good[: len(good) // 2], "dogs/garbage.jpg": b"\xff\xd8\xff" + bytes(500)}
    entries = {**two_classes(), **bad}
    z = make_zip(box / "upload" / "pets.zip", entries)
    report = assert_imported(box, z, "pets")
    assert report.ok and report.counts == {"cats": 5, "dogs": 5}
    reasons = {s.path: (s.kind, s.reason) for s in report.skipped}
    assert set(reasons) == {"cats/broken.jpg", "dogs/garbage.jpg"}
    assert reasons["cats/broken.jpg"][0] == "truncated" and "truncated" in reasons["cats/broken.jpg"][1]
    assert reasons["dogs/garbage.jpg"][0] in ("corrupt", "truncated")
    assert any("2 files were skipped" in w for w in report.warnings)


@pytest.mark.parametrize(
    "content,match",
    [
        (image_bytes(1, "JPEG"), "not a zip archive.*JPEG image"),
        (b"just some notes\n" * 20, "not a zip archive.*text file"),
        (b"Rar!\x1a\x07\x00" + bytes(100), "not a zip archive.*RAR"),
        (b"", "empty"),
    ],
)
def test_non_zip_renamed_refused(box, content, match):
    z = box / "upload" / "photos.zip"
    z.write_bytes(content)
    assert_refused(box, z, "photos", ArchiveRejected, match=match)


# ---------------------------------------------------------------------------------------------------
# extract_zip details


@pytest.fixture
def work(tmp_path):
    """An empty folder of its own (tmp_path also holds the autouse lab_home)."""
    w = tmp_path / "work"
    w.mkdir()
    return w


def test_extract_reports_files_dirs_and_junk(work):
    tmp_path = work
    entries = {"x/": None, "x/a.txt": b"hello", "x/sub/b.txt": b"!", "__MACOSX/x": b"", "y/": None}
    z = make_zip(tmp_path / "a.zip", entries)
    res = extract_zip(z, tmp_path / "out")
    assert res.dest == tmp_path / "out"
    assert res.files == ("x/a.txt", "x/sub/b.txt")
    assert res.dirs == ("x", "y")
    assert res.skipped == ("__MACOSX/x",)
    assert res.total_bytes == 6
    assert (tmp_path / "out" / "x" / "a.txt").read_bytes() == b"hello"
    assert (tmp_path / "out" / "y").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "out"]  # no temp folder left


def test_dest_must_not_exist(work):
    tmp_path = work
    z = make_zip(tmp_path / "a.zip", {"a.txt": b"1"})
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        extract_zip(z, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_encrypted_entry_refused(work):
    tmp_path = work
    z = make_zip(tmp_path / "a.zip", {"a.txt": b"secret"})
    data = bytearray(z.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 8] |= 0x1  # the "encrypted" bit, as a password-protected zip sets it (central record...)
    data[6] |= 0x1  # ... and local header)
    z.write_bytes(bytes(data))
    with pytest.raises(ArchiveRejected, match="encrypted"):
        extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_duplicate_names_refused(work):
    tmp_path = work
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("a.txt", b"1")
        zf.writestr("a.txt", b"2")
    with pytest.raises(ArchiveRejected, match="twice"):
        extract_zip(z, tmp_path / "out")


def test_header_lying_about_size_caught_while_streaming(work):
    tmp_path = work
    # central directory and local header both claim 100 bytes; the data inflates to 5 MiB
    z = make_zip(tmp_path / "a.zip", {"ok.txt": b"fine", "big.bin": bytes(5 << 20)})
    data = bytearray(z.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # the last central record is big.bin's
    local = struct.unpack_from("<I", data, cd + 42)[0]
    struct.pack_into("<I", data, cd + 24, 100)
    struct.pack_into("<I", data, local + 22, 100)
    z.write_bytes(bytes(data))
    with pytest.raises(ArchiveRejected, match="'big.bin' is corrupt"):
        extract_zip(z, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]  # ok.txt was written, then all removed


def test_overlapping_entries_refused(work):
    tmp_path = work
    # two central records pointing at the same local data: the "overlapping files" bomb construction
    z = make_zip(tmp_path / "a.zip", {"a.txt": b"A" * 1000, "b.txt": b"B" * 1000})
    data = bytearray(z.read_bytes())
    first_cd = data.find(b"PK\x01\x02")
    second_cd = data.find(b"PK\x01\x02", first_cd + 4)
    struct.pack_into("<I", data, second_cd + 42, 0)  # b.txt's record now points at a.txt's header
    z.write_bytes(bytes(data))
    with pytest.raises(ArchiveRejected, match="overlaps"):
        extract_zip(z, tmp_path / "out")


def test_lowered_limits(work):
    tmp_path = work
    z = make_zip(tmp_path / "a.zip", {f"{i}.txt": b"x" * 600 for i in range(3)})
    with pytest.raises(ArchiveRejected, match="more than 1000 B"):
        extract_zip(z, tmp_path / "o1", ArchiveLimits(max_total_bytes=1000))
    with pytest.raises(ArchiveRejected, match="600 B uncompressed; at most 500 B per file"):
        extract_zip(z, tmp_path / "o2", ArchiveLimits(max_file_bytes=500))
    with pytest.raises(ArchiveRejected, match="3 files; at most 2"):
        extract_zip(z, tmp_path / "o3", ArchiveLimits(max_files=2))
    with pytest.raises(ArchiveRejected, match="3 entries; at most 2"):
        extract_zip(z, tmp_path / "o4", ArchiveLimits(max_entries=2))
    with pytest.raises(ArchiveRejected, match="zip bomb"):
        extract_zip(z, tmp_path / "o5", ArchiveLimits(max_ratio=2, ratio_floor_bytes=0))
    with pytest.raises(ArchiveRejected, match="at most"):
        extract_zip(z, tmp_path / "o6", ArchiveLimits(max_archive_bytes=100))
    with pytest.raises(ArchiveRejected, match="nested"):
        extract_zip(make_zip(tmp_path / "d.zip", {"a/b/c/d.txt": b"1"}), tmp_path / "o7", ArchiveLimits(max_depth=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "d.zip"]
    with pytest.raises(ValueError):
        ArchiveLimits(max_files=0)


def test_dot_segments_and_double_slashes_normalised(work):
    tmp_path = work
    z = make_zip(tmp_path / "a.zip", {"./x//a.txt": b"1"})
    res = extract_zip(z, tmp_path / "out")
    assert res.files == ("x/a.txt",)
    assert (tmp_path / "out" / "x" / "a.txt").read_bytes() == b"1"


def test_file_and_folder_collision_refused(work):
    tmp_path = work
    z = make_zip(tmp_path / "a.zip", {"x": b"file", "x/y.txt": b"inside a file?"})
    with pytest.raises(ArchiveRejected, match="could not be written"):
        extract_zip(z, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_is_junk():
    assert is_junk(("__MACOSX", "a.png")) and is_junk((".DS_Store",)) and is_junk(("a", "Thumbs.db"))
    assert is_junk(("a", ".git", "x")) and is_junk(("._a.png",))
    assert not is_junk(("cats", "a.png"))


def test_import_name_rules(box):
    z = make_zip(box / "upload" / "pets.zip", two_classes())
    for bad in ("", "Pets", "../x", "a/b", "x" * 41, "héllo", ".hidden"):
        assert_refused(box, z, bad, ValueError, match="not allowed")
    assert_imported(box, z, "pets")
    assert_refused(box, z, "pets", ValueError, match="already exists")
    assert os.listdir(datasets_root()) == ["pets"]
