"""CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST through torchvision's own dataset classes (SVHN in
``svhn.py``, Imagenette in ``imagenette.py``); loading never downloads: the files are downloaded on request
(the lab's download job, ``data/fetch.py``) or placed by hand.

Files are read from ``root`` (default ``$RESNET_LAB_HOME/data``) in exactly the layout torchvision
uses, so a folder prepared for torchvision works here and vice versa::

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/cifar-100-python/{train, test, meta}
    <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
    <root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte

What torchvision 0.29 checks (and so what this module relies on):

* CIFAR10 (and CIFAR100, its subclass) compares the md5 of all batch files with its own table before
  loading (and of the meta file while loading). Only the genuine files load; this also matters for safety, since
  the batches are pickles. Any other file raises "not found or corrupted".
* MNIST/FashionMNIST only check that the four uncompressed idx files exist (no md5), then parse them.
  (A legacy ``<root>/MNIST/processed/{training,test}.pt`` pair is also accepted by torchvision.)

As a convenience, the archives torchvision would have downloaded are accepted too: a
``<root>/cifar-10-python.tar.gz`` (``cifar-100-python.tar.gz``) or ``<root>/MNIST/raw/*.gz`` is extracted in
place, but only after its md5 matches torchvision's table (so only the genuine archive is ever opened), and a
tar member is written only if it is a plain file inside ``cifar-10-batches-py/`` (``cifar-100-python/``).

When something is missing or wrong, :class:`DatasetMissing` says which files to download from where
and exactly where to put them. The official test split becomes the val split. The images are kept as
uint8 (N x C x H x W, one byte a value; see ``Dataset``); a size other than the native one is resized
antialiased and rounded back to uint8.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..paths import atomic_path
from .types import DataConfig, Dataset, builtin_info, take_subset, to_uint8

CIFAR_NAMES = ("cifar10", "cifar100")


class DatasetMissing(ValueError):
    """A file-based dataset's files are not where torchvision expects them (or are corrupted).

    ``directory`` is the folder the files belong in; ``missing`` the file names absent from it;
    ``corrupted`` the ones present but rejected. The message says what to download and where to put it.
    """

    def __init__(
        self, message: str, directory: Path, missing: tuple[str, ...] = (), corrupted: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.directory = directory
        self.missing = missing
        self.corrupted = corrupted

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # survive pickling (e.g. from a worker process)
        return (type(self), (str(self), self.directory, self.missing, self.corrupted))


@dataclass(frozen=True)
class _Source:
    title: str  # human name, e.g. "CIFAR-10"
    cls: Any  # the torchvision dataset class
    folder: Path  # where torchvision looks for the files
    files: tuple[tuple[str, str | None], ...]  # (file name in folder, md5 torchvision checks or None)
    archives: tuple[tuple[str, str, str, Path], ...]  # (archive name, md5, url, folder it is found in)


def _source(name: str, root: Path) -> _Source:
    """File layout and md5s read from the torchvision classes themselves, so they never drift."""
    from torchvision import datasets

    if name in CIFAR_NAMES:
        c = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        files = tuple((f, md5) for f, md5 in c.train_list + c.test_list) + ((c.meta["filename"], c.meta["md5"]),)
        title = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
        return _Source(title, c, root / c.base_folder, files, ((c.filename, c.tgz_md5, c.url, root),))
    c = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]
    raw = root / c.__name__ / "raw"
    files = tuple((os.path.splitext(gz)[0], None) for gz, _ in c.resources)
    archives = tuple((gz, md5, f"{c.mirrors[0]}{gz}", raw) for gz, md5 in c.resources)
    title = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}[name]
    return _Source(title, c, raw, files, archives)


def _md5_ok(path: Path, md5: str | None) -> bool:
    from torchvision.datasets.utils import check_integrity

    return check_integrity(str(path), md5)


def _extract_verified_archives(src: _Source) -> None:
    """Unpack archives that torchvision would have downloaded, if present and md5-verified."""
    if all((src.folder / f).is_file() for f, _ in src.files):
        return
    for archive, md5, _, where in src.archives:
        path = where / archive
        if not path.is_file() or not _md5_ok(path, md5):
            continue
        if archive.endswith(".tar.gz"):
            _extract_tar(path, where, src.folder.name)
        elif archive.endswith(".gz"):
            target = where / archive[: -len(".gz")]
            if not target.exists():
                with atomic_path(target) as tmp, gzip.open(path, "rb") as fin, open(tmp, "wb") as fout:
                    shutil.copyfileobj(fin, fout)


def _extract_tar(path: Path, where: Path, folder: str) -> None:
    with tarfile.open(path, "r:gz") as tar:
        members = [
            m for m in tar.getmembers()
            if m.isfile() and m.name.startswith(f"{folder}/") and ".." not in Path(m.name).parts
        ]
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: also refuse odd modes and devices
            tar.extractall(where, members=members, filter="data")
        else:
            tar.extractall(where, members=members)


def _missing_message(src: _Source, missing: tuple[str, ...], bad_archives: tuple[str, ...]) -> str:
    lines = [
        f"{src.title} is not in {src.folder} (loading never downloads: download it on request from the lab, "
        "or put the files there by hand as follows).",
        f"Missing there: {', '.join(missing)}.",
    ]
    if src.cls.__name__ in ("CIFAR10", "CIFAR100"):
        archive, md5, url, where = src.archives[0]
        lines += [
            f"Download {url} (md5 {md5}) and extract it in {where}, so that {src.folder}{os.sep} holds "
            f"{', '.join(f for f, _ in src.files)};",
            f"or just put {archive} in {where} and it is verified and extracted on the next load.",
        ]
    else:
        lines += [
            f"Download {', '.join(a for a, *_ in src.archives)} from {src.archives[0][2].rsplit('/', 1)[0]}/ "
            f"and gunzip them into {src.folder}{os.sep} (giving {', '.join(f for f, _ in src.files)});",
            f"or just put the .gz files in {src.folder}{os.sep} "
            "and they are verified and decompressed on the next load.",
        ]
    if bad_archives:
        lines.append(
            f"Found {', '.join(bad_archives)} there, but the md5 does not match torchvision's "
            "(incomplete or not the official file): delete and download again."
        )
    return "\n".join(lines)


def check_files(name: str, root: Path) -> None:
    """Cheap presence check (no loading, no md5): raise DatasetMissing when files or archives are absent.
    Every file-based dataset of the registry is asked here (SVHN and Imagenette by their own modules)."""
    if name == "svhn":
        from .svhn import check_svhn_files

        return check_svhn_files(Path(root))
    if name == "imagenette":
        from .imagenette import check_imagenette_files

        return check_imagenette_files(Path(root))
    src = _source(name, Path(root))
    missing = tuple(f for f, _ in src.files if not (src.folder / f).is_file())
    if missing and not all((where / a).is_file() for a, _, _, where in src.archives):
        raise DatasetMissing(_missing_message(src, missing, ()), src.folder, missing=missing)


def _open(src: _Source, root: Path) -> tuple[Any, Any]:
    """torchvision's train and test datasets, or DatasetMissing explaining what to fix."""
    _extract_verified_archives(src)
    try:
        train = src.cls(str(root), train=True, download=False)
        test = src.cls(str(root), train=False, download=False)
        return train, test
    except RuntimeError as err:
        cause: Exception = err
    except (AssertionError, ValueError, TypeError, EOFError, OSError, KeyError) as err:  # unreadable files
        cause = err
    missing = tuple(f for f, _ in src.files if not (src.folder / f).is_file())
    if missing:
        bad = tuple(a for a, md5, _, where in src.archives if (where / a).is_file() and not _md5_ok(where / a, md5))
        raise DatasetMissing(_missing_message(src, missing, bad), src.folder, missing=missing) from cause
    corrupted = tuple(f for f, md5 in src.files if md5 is not None and not _md5_ok(src.folder / f, md5))
    if corrupted:
        msg = (
            f"{src.title} files in {src.folder} are corrupted or not the official ones "
            f"(md5 does not match torchvision's): {', '.join(corrupted)}. Delete them and download "
            f"{src.archives[0][2]} again (torchvision refuses to load files it cannot verify)."
        )
    else:
        corrupted = tuple(f for f, _ in src.files)
        msg = (
            f"{src.title} files in {src.folder} could not be read ({type(cause).__name__}: {cause}). "
            "Delete them and download them again."
        )
    raise DatasetMissing(msg, src.folder, corrupted=corrupted) from cause


def _to_tensors(ds: Any, subset: int | None, seed: int, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's raw uint8 arrays -> (uint8 N x C x S x S, int64 N); subset before resizing."""
    data = torch.as_tensor(ds.data)  # CIFAR: N x 32 x 32 x 3 numpy uint8; MNIST: N x 28 x 28 uint8 tensor
    data = data.permute(0, 3, 1, 2) if data.dim() == 4 else data.unsqueeze(1)
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    data, y = take_subset(data, y, subset, seed)
    return resize_uint8(data, image_size), y


def resize_uint8(data: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 N x C x H x W -> uint8 N x C x size x size, contiguous: as it is at its own size, else bilinear
    (antialiased when shrinking) and rounded to the nearest level.

    Works chunk by chunk into one preallocated output, so the peak memory is the output plus a float chunk.
    """
    n, c, h, w = data.shape
    if (h, w) == (size, size):
        return data.contiguous()
    out = torch.empty(n, c, size, size, dtype=torch.uint8)
    for i in range(0, n, chunk):
        part = data[i : i + chunk].to(torch.float32).div_(255.0)
        part = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=size < min(h, w))
        out[i : i + chunk] = to_uint8(part)
    return out


def load_torchvision_dataset(cfg: DataConfig, root: Path) -> Dataset:
    """cifar10 / cifar100 / mnist / fashion_mnist from ``root``: official train split (optionally a stratified
    ``train_subset``) and the official test split as val, resized to ``cfg.image_size``, kept as uint8."""
    info = builtin_info(cfg.name)
    src = _source(cfg.name, Path(root))
    train, test = _open(src, Path(root))
    x_train, y_train = _to_tensors(train, cfg.train_subset, cfg.seed, cfg.image_size)
    x_val, y_val = _to_tensors(test, None, cfg.seed, cfg.image_size)
    return Dataset.from_tensors(x_train, y_train, x_val, y_val, tuple(train.classes), hflip=info.hflip)


def official_test(name: str, root: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """The official test split of ``name`` in file order (uint8 N x C x S x S, int64 N, class names): the pool a
    challenge's hidden test split is cut from (:mod:`resnet_lab.data.holdout_files`); DatasetMissing as loading."""
    train, test = _open(_source(name, Path(root)), Path(root))
    x, y = _to_tensors(test, None, 0, size)
    return x, y, tuple(train.classes)
