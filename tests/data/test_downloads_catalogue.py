"""The catalogue of what the lab can fetch (read from torchvision's own classes) and the safe tar door that unpacks
the downloaded archives: hostile tars refused as a whole, nothing left behind."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest
import torch.hub
import torchvision.datasets as tvd
import torchvision.models as tvm

from resnet_lab.data import catalogue
from resnet_lab.data.archives import ArchiveLimits, ArchiveRejected, extract_tar
from resnet_lab.data.catalogue import CATALOGUE, RemoteFile, describe_missing, entry, parse_checksum, present
from resnet_lab.data.fetch import OFFLINE_ENV, DownloadError, fetch

NAMES = ["cifar10", "cifar100", "mnist", "fashion_mnist", "svhn", "imagenette", "resnet18", "resnet34", "resnet50",
         "resnet50_v2"]


# ---------------------------------------------------------------------------------------------------
# the catalogue


def test_the_catalogue_holds_the_promised_entries():
    assert list(CATALOGUE) == NAMES
    assert {e.kind for e in CATALOGUE.values()} == {"dataset", "weights"}


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_has_parsable_checksums_urls_terms_and_yields(name):
    e = entry(name)
    assert e.title and e.licence and e.citation and e.homepage.startswith(("http://", "https://"))
    assert e.files and e.yields and e.total_bytes() == sum(f.bytes for f in e.files) > 0
    for f in e.files:
        algo, digest = parse_checksum(f.checksum)
        assert algo in ("md5", "sha256", "sha256-prefix") and re.fullmatch(r"[0-9a-f]+", digest)
        assert f.urls and all(u.startswith(("https://", "http://")) for u in f.urls)
        assert all(u.rsplit("/", 1)[1] == f.name for u in f.urls)  # a mirror base + the file name
        assert f.unpack in (None, "tar.gz", "gz")


def test_checksums_and_urls_are_torchvisions_own():
    assert entry("cifar10").files[0].checksum == f"md5:{tvd.CIFAR10.tgz_md5}"
    assert entry("cifar10").files[0].urls == (tvd.CIFAR10.url,)
    assert entry("cifar100").files[0].checksum == f"md5:{tvd.CIFAR100.tgz_md5}"
    mnist = entry("mnist")
    assert [(f.name, f.checksum) for f in mnist.files] == [(n, f"md5:{m}") for n, m in tvd.MNIST.resources]
    assert mnist.files[0].urls[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    assert len(mnist.files[0].urls) == 2 == len(tvd.MNIST.mirrors)
    assert [f.checksum for f in entry("fashion_mnist").files] == [f"md5:{m}" for _, m in tvd.FashionMNIST.resources]
    svhn = {f.name: f for f in entry("svhn").files}
    for split in ("train", "test"):
        url, file, md5 = tvd.SVHN.split_list[split]
        assert svhn[file].urls == (url,) and svhn[file].checksum == f"md5:{md5}"
    url, md5 = tvd.Imagenette._ARCHIVES["160px"]
    assert entry("imagenette").files[0].urls == (url,) and entry("imagenette").files[0].checksum == f"md5:{md5}"


@pytest.mark.parametrize("name, weights", [
    ("resnet18", tvm.ResNet18_Weights.IMAGENET1K_V1), ("resnet34", tvm.ResNet34_Weights.IMAGENET1K_V1),
    ("resnet50", tvm.ResNet50_Weights.IMAGENET1K_V1), ("resnet50_v2", tvm.ResNet50_Weights.IMAGENET1K_V2),
])
def test_weights_carry_the_hash_prefix_torch_hub_checks(name, weights):
    f = entry(name).files[0]
    assert f.urls == (weights.url,) and f.unpack is None
    assert f.checksum == "sha256-prefix:" + torch.hub.HASH_REGEX.search(f.name).group(1)


def test_the_genuine_sizes():
    sizes = {e.name: [f.bytes for f in e.files] for e in CATALOGUE.values()}
    assert sizes["cifar10"] == [170498071] and sizes["cifar100"] == [169001437]
    assert sizes["mnist"] == [9912422, 28881, 1648877, 4542]
    assert sizes["fashion_mnist"] == [26421880, 29515, 4422102, 5148]
    assert sizes["svhn"] == [182040794, 64275384]


def test_files_land_in_torchvisions_layout(tmp_path, monkeypatch):
    from resnet_lab.models.pretrained import weights_path

    root = tmp_path / "d"
    assert entry("cifar10").folder(root) == root and entry("cifar100").folder(root) == root
    assert entry("mnist").folder(root) == root / "MNIST" / "raw"
    assert entry("fashion_mnist").folder(root) == root / "FashionMNIST" / "raw"
    assert entry("svhn").folder(root) == root / "svhn"
    assert entry("imagenette").folder(root) == root and "imagenette2-160/train" in entry("imagenette").yields
    assert entry("cifar10").yields[0] == "cifar-10-batches-py/data_batch_1"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    for name in ("resnet18", "resnet34", "resnet50"):
        assert entry(name).folder() / entry(name).files[0].name == weights_path(name)
    monkeypatch.setenv("RESNET_LAB_HOME", str(tmp_path / "home"))
    assert entry("svhn").folder() == tmp_path / "home" / "data" / "svhn"


def test_present_is_a_cheap_existence_check(tmp_path):
    root = tmp_path / "d"
    assert not present("mnist", root)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in entry("mnist").yields[:-1]:
        (raw / name).write_bytes(b"x")
    assert not present("mnist", root)
    (raw / entry("mnist").yields[-1]).write_bytes(b"x")
    assert present("mnist", root)


@pytest.mark.parametrize("name", NAMES)
def test_the_offline_message_says_what_to_download_and_where_to_put_it(name, tmp_path):
    e = entry(name)
    msg = describe_missing(name, tmp_path)
    assert str(e.folder(tmp_path)) in msg and all(f.urls[0] in msg and f.name in msg for f in e.files)
    assert e.licence in msg


def test_unknown_names_and_bad_checksums_are_refused():
    with pytest.raises(ValueError, match="known: cifar10, cifar100"):
        entry("imagenet")
    for bad in ("md5:abc", "sha1:" + "0" * 40, "sha256:" + "g" * 64, "", "sha256-prefix:"):
        with pytest.raises(ValueError):
            parse_checksum(bad)
    with pytest.raises(ValueError, match="plain file name"):
        RemoteFile("../x.pth", 1, "md5:" + "0" * 32, ("https://x/x.pth",), None)
    with pytest.raises(ValueError, match="http"):
        RemoteFile("x.pth", 1, "md5:" + "0" * 32, ("file:///etc/x.pth",), None)


# ---------------------------------------------------------------------------------------------------
# the safe tar door


Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"data", kind: bytes = tarfile.REGTYPE, link: str = "") -> Member:
    """A tar header of any type (with its data, for a regular file), written as is by :func:`make_tar`."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(path: Path, members: list[Member], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_plain_tar_is_extracted_with_junk_skipped(tmp_path):
    tar = make_tar(tmp_path / "a.tgz", [member("top", kind=tarfile.DIRTYPE), member("top/a.txt", b"a" * 10),
                                        member("./top/sub/b.txt", b"b"), member("top/.DS_Store"),
                                        member("__MACOSX/top/._a.txt")])
    out = extract_tar(tar, tmp_path / "out")
    assert out.files == ("top/a.txt", "top/sub/b.txt") and out.dirs == ("top",) and len(out.skipped) == 2
    assert (tmp_path / "out/top/a.txt").read_bytes() == b"a" * 10 and out.total_bytes == 11
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("bad, why", [
    (member("../evil.txt"), "outside"),
    (member("top/../../evil.txt"), "outside"),
    (member("/etc/evil.txt"), "absolute"),
    (member("top\\evil.txt"), "backslash"),
    (member("C:evil.txt"), "drive letter"),
    (member("top/bad\x01name"), "control character"),
    (member("top/link", kind=tarfile.SYMTYPE, link="/etc/passwd"), "symbolic link"),
    (member("top/hard", kind=tarfile.LNKTYPE, link="top/a.txt"), "hard link"),
    (member("top/dev", kind=tarfile.CHRTYPE), "device"),
    (member("top/fifo", kind=tarfile.FIFOTYPE), "FIFO"),
    (member("top/a.txt", b"again"), "twice"),
])
def test_a_hostile_tar_is_refused_naming_the_member_and_leaves_nothing(tmp_path, bad, why):
    tar = make_tar(tmp_path / "bad.tgz", [member("top/a.txt"), bad, member("top/z.txt")])
    with pytest.raises(ArchiveRejected, match=why) as err:
        extract_tar(tar, tmp_path / "out")
    assert err.value.entry == bad[0].name
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    assert not (tmp_path.parent / "evil.txt").exists()


def test_caps_on_files_and_bytes(tmp_path):
    tar = make_tar(tmp_path / "many.tar", [member(f"f{i}") for i in range(5)], mode="w")
    with pytest.raises(ArchiveRejected, match="more than 3 files"):
        extract_tar(tar, tmp_path / "o1", ArchiveLimits(max_files=3))
    big = make_tar(tmp_path / "big.tgz", [member("zeros", bytes(3_000_000))])  # gzips to a few KiB
    with pytest.raises(ArchiveRejected, match="expands to more than"):
        extract_tar(big, tmp_path / "o2", ArchiveLimits(max_ratio=10, ratio_floor_bytes=1000))
    with pytest.raises(ArchiveRejected, match="per file"):
        extract_tar(big, tmp_path / "o3", ArchiveLimits(max_file_bytes=1_000_000))
    assert leftovers(tmp_path) == [] and not any((tmp_path / o).exists() for o in ("o1", "o2", "o3"))


def test_truncated_or_foreign_archives_are_refused(tmp_path):
    whole = make_tar(tmp_path / "w.tgz", [member("x.bin", bytes(range(256)) * 4000)]).read_bytes()
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ArchiveRejected, match="corrupt or truncated"):
        extract_tar(cut, tmp_path / "o1")
    text = tmp_path / "t.tgz"
    text.write_text("<html>a proxy's error page</html>")
    with pytest.raises(ArchiveRejected, match="not a readable tar"):
        extract_tar(text, tmp_path / "o2")
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        extract_tar(tmp_path / "w.tgz", tmp_path / "exists")
    assert leftovers(tmp_path) == []


def test_fetch_refuses_a_hostile_archive_even_when_its_checksum_matches(tmp_path, monkeypatch):
    """An archive that passes its checksum still goes through the tar door (here one placed by hand, offline)."""
    root = tmp_path / "d"
    root.mkdir()
    tar = make_tar(root / "cifar-10-python.tar.gz",
                   [member("cifar-10-batches-py/data_batch_1"), member("cifar-10-batches-py/x", kind=tarfile.SYMTYPE,
                                                                       link="/etc/passwd")])
    digest = hashlib.md5(tar.read_bytes()).hexdigest()
    e = entry("cifar10")
    monkeypatch.setitem(catalogue.CATALOGUE, "cifar10", dataclasses.replace(
        e, files=(dataclasses.replace(e.files[0], checksum=f"md5:{digest}", bytes=tar.stat().st_size),)))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(DownloadError, match="safe tar door refused it.*symbolic link"):
        fetch("cifar10", data_root=root)
    assert sorted(p.name for p in root.iterdir() if not p.name.endswith("lock")) == ["cifar-10-python.tar.gz"]
