"""The one atomic write (resnet_lab.paths): a reader sees the old content or the new, never half of one, and a
write that fails leaves no temporary file behind."""

import errno
import os

import pytest

from resnet_lab.paths import atomic_path, write_atomic, write_files_atomic, write_synced


@pytest.fixture
def out(tmp_path):
    """A folder of its own (the suite's conftest keeps the lab home in the test's tmp_path)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_atomic_replaces_the_content_with_bytes_or_text(out):
    target = out / "result.json"
    assert write_atomic(target, b"old") == target and target.read_bytes() == b"old"
    write_atomic(target, "néw")
    assert target.read_text(encoding="utf-8") == "néw" and listing(out) == ["result.json"]


def test_a_writer_that_fails_half_way_leaves_the_old_content_and_no_temporary_file(out):
    target = out / "last.safetensors"
    target.write_bytes(b"the previous checkpoint")

    def full_disk(path, data):
        path.write_bytes(data[: len(data) // 2])  # part of it reached the disk, then the disk was full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as caught:
        write_files_atomic(out, {"last.safetensors": b"x" * 1000}, write=full_disk)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"the previous checkpoint" and listing(out) == ["last.safetensors"]


def test_several_files_are_written_all_or_nothing(out):
    write_files_atomic(out, {"a.bin": b"a1", "a.json": "{}"})
    calls = []

    def second_fails(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(errno.EIO, "the disk went away")
        write_synced(path, data)

    with pytest.raises(OSError):
        write_files_atomic(out, {"a.bin": b"a2", "a.json": '{"new": 1}'}, write=second_fails)
    assert [n.split(".")[1] for n in calls] == ["a", "a"] and all(n.startswith(".") for n in calls)  # temp names
    assert (out / "a.bin").read_bytes() == b"a1" and (out / "a.json").read_text() == "{}"
    assert listing(out) == ["a.bin", "a.json"]


def test_atomic_path_renames_on_success_and_cleans_up_on_an_exception(out):
    target = out / "cache.pt"
    with atomic_path(target) as tmp:
        assert tmp.parent == out and tmp != target and not target.exists()
        tmp.write_bytes(b"new cache")
    assert target.read_bytes() == b"new cache" and listing(out) == ["cache.pt"]

    with pytest.raises(RuntimeError, match="torch could not finish"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("torch could not finish")
    assert target.read_bytes() == b"new cache" and listing(out) == ["cache.pt"]


def test_a_folder_that_does_not_exist_is_an_error_and_creates_nothing(out):
    with pytest.raises(FileNotFoundError):
        write_atomic(out / "missing" / "x.json", "{}")
    assert listing(out) == []
