"""Verified downloads (resnet_lab/data/fetch.py) against a local HTTP server with faults on demand: resume, mirrors,
retries, wrong bytes, stop, disk, offline, proxies, and torchvision reading the result. No test reaches the internet:
the catalogue's URLs and checksums are replaced for each test by ones that point at 127.0.0.1."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
from collections import namedtuple

import pytest
import torch

from resnet_lab.data import catalogue
from resnet_lab.data import fetch as fetch_mod
from resnet_lab.data.fetch import DownloadError, DownloadStopped, fetch
from resnet_lab.fmt import format_bytes
from tests.helpers.httpfaults import Faults, FaultServer

PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
              "NO_PROXY")
FAST = dict(backoff_s=0.01, timeout_s=5.0)  # keep every retry wait tiny


# ---------------------------------------------------------------------------------------------------
# genuine formats, made here, and the catalogue pointed at the local server


@pytest.fixture
def server(monkeypatch):
    """A fault-injecting server on 127.0.0.1, reached directly (no proxy, mirror or offline flag from outside)."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(fetch_mod.OFFLINE_ENV, raising=False)
    monkeypatch.delenv(fetch_mod.MIRROR_ENV, raising=False)
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def idx_images(n: int, seed: int = 0) -> bytes:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    return struct.pack(">IIII", 2051, n, 28, 28) + pixels.numpy().tobytes()


def idx_labels(n: int) -> bytes:
    return struct.pack(">II", 2049, n) + bytes(i % 10 for i in range(n))


def mnist_files(n_train: int = 12, n_test: int = 6) -> dict[str, bytes]:
    """The four MNIST .gz files (gzip of genuine idx files), by torchvision's names."""
    raw = {"train-images-idx3-ubyte": idx_images(n_train), "train-labels-idx1-ubyte": idx_labels(n_train),
           "t10k-images-idx3-ubyte": idx_images(n_test, 1), "t10k-labels-idx1-ubyte": idx_labels(n_test)}
    return {f"{k}.gz": gzip.compress(v, mtime=0) for k, v in raw.items()}


def cifar_tar(n: int = 4) -> bytes:
    """A tiny cifar-10-python.tar.gz: cifar-10-batches-py/ with five train batches, the test batch and the meta."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        batches = {f"data_batch_{i}": i for i in range(1, 6)} | {"test_batch": 0}
        for name, seed in batches.items():
            g = torch.Generator().manual_seed(seed)
            obj = {"data": torch.randint(0, 256, (n, 3072), generator=g, dtype=torch.uint8).numpy(),
                   "labels": [i % 10 for i in range(n)]}
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(obj))
        _add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def pth_bytes(n: int = 6) -> bytes:
    buf = io.BytesIO()
    torch.save({"fc.weight": torch.arange(float(n)).reshape(2, -1)}, buf)
    return buf.getvalue()


def point(monkeypatch, name: str, files: dict[str, bytes], urls: dict[str, tuple[str, ...]],
          checksums: dict[str, str] | None = None) -> catalogue.CatalogueEntry:
    """Replace catalogue entry ``name``'s files (same names and unpack rules) by ``files``' sizes and md5s (or
    ``checksums``) and ``urls`` (per file name), for this test only."""
    e = catalogue.entry(name)
    new = tuple(dataclasses.replace(f, bytes=len(files[f.name]), urls=urls[f.name],
                                    checksum=(checksums or {}).get(f.name) or md5(files[f.name]))
                for f in e.files)
    e = dataclasses.replace(e, files=new)
    monkeypatch.setitem(catalogue.CATALOGUE, name, e)
    return e


def serve_all(srv: FaultServer, prefix: str, files: dict[str, bytes],
              faults: dict[str, Faults] | None = None) -> dict[str, tuple[str, ...]]:
    """Publish ``files`` under ``/prefix/``; their URLs by file name."""
    return {n: (srv.serve(f"{prefix}/{n}", data, (faults or {}).get(n)),) for n, data in files.items()}


def big_weights(monkeypatch, tmp_path, size: int = 600_000) -> bytes:
    """A .pth of about ``size`` bytes for resnet18's entry (its checksum a sha256 prefix, as torchvision's), with
    torch.hub's cache in the test's folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return pth_bytes(size // 4)


def sha_prefix(data: bytes) -> str:
    return "sha256-prefix:" + hashlib.sha256(data).hexdigest()[:8]


WEIGHTS = "resnet18-f37072fd.pth"


# ---------------------------------------------------------------------------------------------------
# the happy path: torchvision reads what fetch leaves


def test_mnist_is_fetched_gunzipped_and_read_by_torchvision(server, monkeypatch, root):
    from torchvision.datasets import MNIST

    files = mnist_files()
    point(monkeypatch, "mnist", files, serve_all(server, "mnist", files))
    seen = []
    folder = fetch("mnist", data_root=root, progress=lambda d, t: seen.append((d, t)), **FAST)
    assert folder == root / "MNIST" / "raw" and catalogue.present("mnist", root)
    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    assert (len(train), len(test)) == (12, 6) and train.data.shape == (12, 28, 28)
    assert torch.equal(train.targets, torch.tensor([i % 10 for i in range(12)]))
    total = sum(map(len, files.values()))
    assert seen[-1] == (total, total) and all(d <= t for d, t in seen)
    assert not list(folder.glob("*.part"))
    # present: no second request
    before = len(server.requests)
    assert fetch("mnist", data_root=root, **FAST) == folder and len(server.requests) == before


def test_cifar_archive_is_verified_and_extracted_in_torchvision_layout(server, monkeypatch, root):
    from resnet_lab.data.torchvision_sets import check_files

    data = cifar_tar()
    point(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": data},
          serve_all(server, "c", {"cifar-10-python.tar.gz": data}))
    assert fetch("cifar10", data_root=root, **FAST) == root
    batches = root / "cifar-10-batches-py"
    assert sorted(p.name for p in batches.iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])
    assert (root / "cifar-10-python.tar.gz").read_bytes() == data  # the verified archive is kept, as torchvision
    assert [p.name for p in root.iterdir() if p.name.startswith(".") and "lock" not in p.name] == []
    check_files("cifar10", root)  # torchvision_sets finds everything in place
    with open(batches / "data_batch_3", "rb") as fp:
        assert pickle.load(fp)["labels"] == [0, 1, 2, 3]


def test_weights_land_in_torch_hubs_cache_and_load_with_weights_only(server, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    data = pth_bytes()
    point(monkeypatch, "resnet18", {WEIGHTS: data}, serve_all(server, "w", {WEIGHTS: data}),
          {WEIGHTS: sha_prefix(data)})
    folder = fetch("resnet18", **FAST)
    assert folder == tmp_path / "torch" / "hub" / "checkpoints"
    state = torch.load(folder / WEIGHTS, weights_only=True)
    assert torch.equal(state["fc.weight"], torch.arange(6.0).reshape(2, 3))


# ---------------------------------------------------------------------------------------------------
# faults


def test_a_dropped_connection_is_resumed_with_a_range_request(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path)
    urls = serve_all(server, "w", {WEIGHTS: data}, {WEIGHTS: Faults(drop_after=len(data) // 2)})
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    folder = fetch("resnet18", **FAST)
    assert (folder / WEIGHTS).read_bytes() == data
    assert server.count(f"w/{WEIGHTS}") == 2
    assert server.ranges(f"w/{WEIGHTS}") == [f"bytes={len(data) // 2}-"]


def test_a_server_that_ignores_range_restarts_from_zero(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path)
    urls = serve_all(server, "w", {WEIGHTS: data}, {WEIGHTS: Faults(drop_after=len(data) // 3, ignore_range=True)})
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    assert (fetch("resnet18", **FAST) / WEIGHTS).read_bytes() == data


def test_a_mirror_answering_503_gives_way_to_the_next_url(server, monkeypatch, root):
    files = mnist_files()
    first = {n: server.serve(f"down/{n}", d, Faults(status=503)) for n, d in files.items()}
    second = {n: server.serve(f"up/{n}", d) for n, d in files.items()}
    point(monkeypatch, "mnist", files, {n: (first[n], second[n]) for n in files})
    fetch("mnist", data_root=root, retries=1, **FAST)
    assert catalogue.present("mnist", root)
    name = "train-images-idx3-ubyte.gz"
    assert server.count(f"down/{name}") == 2 and server.count(f"up/{name}") == 1  # one try, one retry, then on


def test_a_passing_503_is_retried_on_the_same_url(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    other = server.serve(f"never/{WEIGHTS}", data)
    urls = {WEIGHTS: (server.serve(f"w/{WEIGHTS}", data, Faults(status=503, status_times=2)), other)}
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    fetch("resnet18", retries=3, **FAST)
    assert server.count(f"w/{WEIGHTS}") == 3 and server.count(f"never/{WEIGHTS}") == 0


def test_a_404_is_not_retried(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    urls = {WEIGHTS: (server.url(f"gone/{WEIGHTS}"), server.serve(f"w/{WEIGHTS}", data))}
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    fetch("resnet18", retries=3, **FAST)
    assert server.count(f"gone/{WEIGHTS}") == 1


def test_wrong_bytes_are_refused_nothing_is_extracted_and_the_part_is_deleted(server, monkeypatch, root):
    data = cifar_tar()
    name = "cifar-10-python.tar.gz"
    point(monkeypatch, "cifar10", {name: data}, serve_all(server, "c", {name: data}, {name: Faults(wrong=True)}))
    with pytest.raises(DownloadError) as err:
        fetch("cifar10", data_root=root, **FAST)
    msg = str(err.value)
    assert "does not match" in msg and server.url(f"c/{name}") in msg and "put it in" in msg
    assert not (root / "cifar-10-batches-py").exists() and not (root / name).exists()
    assert not (root / f"{name}.part").exists()


def test_a_mirror_with_a_damaged_copy_gives_way_to_the_official_url(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    urls = {WEIGHTS: (server.serve(f"bad/{WEIGHTS}", data, Faults(wrong=True)), server.serve(f"w/{WEIGHTS}", data))}
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    assert (fetch("resnet18", **FAST) / WEIGHTS).read_bytes() == data
    assert server.count(f"bad/{WEIGHTS}") == 1


def test_a_bad_old_part_is_fetched_again_from_zero(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    point(monkeypatch, "resnet18", {WEIGHTS: data}, serve_all(server, "w", {WEIGHTS: data}),
          {WEIGHTS: sha_prefix(data)})
    folder = catalogue.entry("resnet18").folder()
    folder.mkdir(parents=True)
    (folder / f"{WEIGHTS}.part").write_bytes(b"garbage!" * 100)  # not the start of the file
    assert (fetch("resnet18", **FAST) / WEIGHTS).read_bytes() == data
    assert [r for _, r in server.requests] == ["bytes=800-", None]


def test_a_slow_download_reports_progress_stops_when_asked_and_resumes_later(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 400_000)  # 49 chunks, 20 ms each: about 1 s in all
    urls = serve_all(server, "w", {WEIGHTS: data}, {WEIGHTS: Faults(slow_s=0.02, chunk=8192)})
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    seen: list[tuple[int, int]] = []

    def stop() -> bool:  # after two reports of bytes arriving (about 0.5 s)
        return sum(d > 0 for d, _ in seen) >= 2

    with pytest.raises(DownloadStopped):
        fetch("resnet18", progress=lambda d, t: seen.append((d, t)), should_stop=stop, **FAST)
    folder = catalogue.entry("resnet18").folder()
    kept = (folder / f"{WEIGHTS}.part").stat().st_size
    assert 0 < kept < len(data) and not (folder / WEIGHTS).exists()
    assert seen[-1][1] == len(data) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len({d for d, _ in seen}) >= 3  # 0, then two moves
    server.faults[f"/w/{WEIGHTS}"] = Faults()  # fast again
    assert (fetch("resnet18", **FAST) / WEIGHTS).read_bytes() == data
    assert server.ranges(f"w/{WEIGHTS}")[-1] == f"bytes={kept}-"


def test_a_full_disk_is_refused_before_any_request(server, monkeypatch, root):
    files = mnist_files()
    point(monkeypatch, "mnist", files, serve_all(server, "mnist", files))
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(fetch_mod.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DownloadError) as err:
        fetch("mnist", data_root=root, **FAST)
    msg = str(err.value)
    need = sum(map(len, files.values())) + sum(int(1.1 * len(d)) for d in files.values())
    assert f"needs {format_bytes(need)} free in {root / 'MNIST' / 'raw'}" in msg
    assert f"only {format_bytes(1000)} is free" in msg
    assert server.requests == []


def test_offline_opens_no_socket_and_says_what_to_place_where(monkeypatch, root):
    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened in offline mode")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv(fetch_mod.OFFLINE_ENV, "1")
    assert fetch_mod.offline()
    with pytest.raises(DownloadError) as err:
        fetch("mnist", data_root=root)
    msg = str(err.value)
    assert str(root / "MNIST" / "raw") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in msg and "offline" in msg
    assert not root.exists()  # nothing made either


def test_offline_still_unpacks_verified_files_already_in_place(monkeypatch, root):
    files = mnist_files()
    point(monkeypatch, "mnist", files, {n: ("http://127.0.0.1:9/never",) for n in files})
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for n, d in files.items():
        (raw / n).write_bytes(d)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("socket opened"))
    monkeypatch.setenv(fetch_mod.OFFLINE_ENV, "yes")
    assert fetch("mnist", data_root=root) == raw and catalogue.present("mnist", root)


def test_the_mirror_from_the_environment_is_tried_first(server, monkeypatch, root):
    files = mnist_files()
    official = serve_all(server, "official", files)
    for n, d in files.items():
        server.serve(f"mirror/{n}", d)
    point(monkeypatch, "mnist", files, official)
    monkeypatch.setenv(fetch_mod.MIRROR_ENV, server.url("mirror") + "/")
    fetch("mnist", data_root=root, **FAST)
    assert all(p.startswith("/mirror/") for p, _ in server.requests) and len(server.requests) == 4


def test_the_mirror_argument_beats_the_environment(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    point(monkeypatch, "resnet18", {WEIGHTS: data}, serve_all(server, "w", {WEIGHTS: data}),
          {WEIGHTS: sha_prefix(data)})
    server.serve(f"arg/{WEIGHTS}", data)
    monkeypatch.setenv(fetch_mod.MIRROR_ENV, server.url("env"))
    fetch("resnet18", mirror=server.url("arg"), **FAST)
    assert [p for p, _ in server.requests] == [f"/arg/{WEIGHTS}"]


def test_the_proxy_from_the_environment_is_used(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    server.serve(f"w/{WEIGHTS}", data)
    point(monkeypatch, "resnet18", {WEIGHTS: data}, {WEIGHTS: (f"http://downloads.invalid/w/{WEIGHTS}",)},
          {WEIGHTS: sha_prefix(data)})
    monkeypatch.setenv("http_proxy", server.base)
    assert (fetch("resnet18", **FAST) / WEIGHTS).read_bytes() == data
    assert server.proxied == [f"http://downloads.invalid/w/{WEIGHTS}"]


def test_every_url_failing_says_what_was_tried_and_what_to_do(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    urls = {WEIGHTS: (server.serve(f"a/{WEIGHTS}", data, Faults(status=500)), server.url(f"b/{WEIGHTS}"))}
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    with pytest.raises(DownloadError) as err:
        fetch("resnet18", retries=2, **FAST)
    msg = str(err.value)
    assert "HTTP 500" in msg and "after 3 tries" in msg and "HTTP 404" in msg and fetch_mod.MIRROR_ENV in msg
    assert server.count(f"a/{WEIGHTS}") == 3


def test_an_unknown_name_lists_the_catalogue():
    with pytest.raises(ValueError, match="cifar10.*mnist"):
        fetch("imagenet")


def test_a_server_that_stalls_times_out_and_the_next_url_is_used(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    urls = {WEIGHTS: (server.serve(f"stall/{WEIGHTS}", data, Faults(slow_s=1.0)), server.serve(f"w/{WEIGHTS}", data))}
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    assert (fetch("resnet18", timeout_s=0.2, retries=0, backoff_s=0.01) / WEIGHTS).read_bytes() == data
    assert server.count(f"stall/{WEIGHTS}") == 1


def test_two_fetches_at_once_download_once(server, monkeypatch, tmp_path):
    import threading

    data = big_weights(monkeypatch, tmp_path, 100_000)
    urls = serve_all(server, "w", {WEIGHTS: data}, {WEIGHTS: Faults(slow_s=0.01, chunk=16384)})
    point(monkeypatch, "resnet18", {WEIGHTS: data}, urls, {WEIGHTS: sha_prefix(data)})
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(fetch("resnet18", **FAST))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    folder = catalogue.entry("resnet18").folder()
    assert results == [folder, folder] and server.count(f"w/{WEIGHTS}") == 1
    assert (folder / WEIGHTS).read_bytes() == data


def test_a_mirror_that_is_not_http_is_refused(server, monkeypatch, tmp_path):
    data = big_weights(monkeypatch, tmp_path, 10_000)
    point(monkeypatch, "resnet18", {WEIGHTS: data}, serve_all(server, "w", {WEIGHTS: data}),
          {WEIGHTS: sha_prefix(data)})
    monkeypatch.setenv(fetch_mod.MIRROR_ENV, f"file://{tmp_path}")
    with pytest.raises(DownloadError, match="not an http"):
        fetch("resnet18", **FAST)
    assert server.requests == []
