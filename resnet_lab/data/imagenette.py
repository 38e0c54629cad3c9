"""Imagenette (fast.ai, 160 px): real photos of 10 easy ImageNet classes, read through the lab's safe image door.

Files, in the layout torchvision's ``Imagenette(root=<data_root>, size="160px")`` reads (the extracted
``imagenette2-160.tgz``; its shorter side is 160 px)::

    <data_root>/imagenette2-160/train/<wnid>/*.JPEG   9,469 images
    <data_root>/imagenette2-160/val/<wnid>/*.JPEG     3,925 images (the official val split)

Labels follow the sorted WordNet ids, as torchvision's ``Imagenette`` (``find_classes``) numbers them; class
names are the first of torchvision's words for each id ("tench", "English springer", ...). Every image is
decoded through ``images.decode_image`` (the one safe door: format allowlist, size limits, truncated files,
odd modes such as CMYK or grey JPEGs become RGB), its shorter side resized to the image size (antialiased),
centre-cropped and rounded to uint8; a file the door refuses (say, a non-image named ``.JPEG``) is skipped and
named in a warning (the ``resnet_lab.data.imagenette`` logger). Symbolic links and hidden files are never read.

Decoding some 13,000 JPEGs takes a while on a CPU, so it is done once per image size: the uint8 tensors of
both splits are cached in ``<data_root>/imagenette2-160/.lab_cache_<size>.pt`` (written atomically, read with
``torch.load(weights_only=True)``), keyed by the files' names, sizes and modification times; a change to the
files rebuilds it. Loading never downloads: the archive is downloaded on request (the lab's download job) or
placed by hand. Flips keep the label.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from ..paths import atomic_path
from .images import ImageRejected, decode_image, resize_square
from .torchvision_sets import DatasetMissing
from .types import DataConfig, Dataset, builtin_info, take_subset, to_uint8

FOLDER = "imagenette2-160"  # under the data root: the extracted imagenette2-160.tgz
ARCHIVE = "imagenette2-160.tgz"
SPLITS = ("train", "val")
WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257")  # sorted: label i is WNIDS[i]
CLASS_NAMES = ("tench", "English springer", "cassette player", "chain saw", "church",
               "French horn", "garbage truck", "gas pump", "golf ball", "parachute")
EXTENSION = ".jpeg"  # what torchvision's Imagenette lists (any case: the files are *.JPEG)
MIN_SIDE = 8  # px: smaller images are skipped (the door's min_side)
CACHE_VERSION = 1  # bump when the cache layout or the decoding changes
DECODE_THREADS = 8  # at most; Pillow decodes with the GIL released

log = logging.getLogger(__name__)


def _source() -> tuple[str, str]:
    """(url, md5) of the 160-px archive, from torchvision's table so it never drifts."""
    from torchvision.datasets import Imagenette

    url, md5 = Imagenette._ARCHIVES["160px"]
    return url, md5


def _missing_message(root: Path, missing: tuple[str, ...]) -> str:
    url, md5 = _source()
    folder = root / FOLDER
    return "\n".join([
        f"Imagenette (160 px) is not in {folder} (loading never downloads: download it on request from the lab, "
        "or put the files there by hand as follows).",
        f"Missing there: {', '.join(missing)}.",
        f"Download {url} (md5 {md5}) and extract it in {root}, so that {folder}{os.sep} holds train{os.sep} and "
        f"val{os.sep}, each with one folder of JPEGs per class ({', '.join(WNIDS)});",
        f"or put {ARCHIVE} in {root} and ask the lab to download Imagenette: a verified archive in place is "
        "extracted without downloading.",
    ])


def check_imagenette_files(root: Path) -> None:
    """Cheap presence check (nothing decoded): DatasetMissing naming the split/class folders that are absent."""
    folder = Path(root) / FOLDER
    missing = tuple(f"{s}/{w}" for s in SPLITS for w in WNIDS if not (folder / s / w).is_dir())
    if len(missing) == len(SPLITS) * len(WNIDS):
        missing = tuple(f"{s}/" for s in SPLITS)
    if missing:
        raise DatasetMissing(_missing_message(Path(root), missing), folder, missing=missing)


def _listing(folder: Path) -> dict[str, list[tuple[int, Path]]]:
    """Per split, every candidate file as (label, path), in a fixed order; links and hidden files left out."""
    out: dict[str, list[tuple[int, Path]]] = {}
    for split in SPLITS:
        files: list[tuple[int, Path]] = []
        for label, wnid in enumerate(WNIDS):
            d = folder / split / wnid
            if d.is_symlink():
                continue
            with os.scandir(d) as it:
                names = sorted(e.name for e in it if e.is_file(follow_symlinks=False) and not e.name.startswith("."))
            files += [(label, d / n) for n in names if n.lower().endswith(EXTENSION)]
        out[split] = files
    return out


def _fingerprint(folder: Path, listing: dict[str, list[tuple[int, Path]]], size: int) -> str:
    """sha256 over the decoding settings and every candidate file's path, size and modification time."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{size}|{MIN_SIDE}\n".encode())
    for split, files in listing.items():
        for label, p in files:
            st = p.stat()
            rel = p.relative_to(folder).as_posix()
            h.update(f"{split}|{label}|{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _decode(path: Path, size: int) -> torch.Tensor | ImageRejected:
    """One image through the safe door, resized and centre-cropped to uint8 3 x size x size (or the refusal)."""
    try:
        img = decode_image(path, min_side=MIN_SIDE, shrink_to=size)
    except ImageRejected as e:
        return e
    return to_uint8(resize_square(img, size))


def _build(folder: Path, files: list[tuple[int, Path]], size: int) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """Decode every file of a split: (uint8 N x 3 x S x S, int64 N, skipped as [path, kind, reason])."""
    x = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    labels: list[int] = []
    skipped: list[list[str]] = []
    workers = max(1, min(DECODE_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (label, path), got in zip(files, pool.map(lambda f: _decode(f[1], size), files)):
            if isinstance(got, ImageRejected):
                skipped.append([path.relative_to(folder).as_posix(), got.kind, str(got)])
                continue
            x[len(labels)] = got
            labels.append(label)
    return x[: len(labels)].clone(), torch.tensor(labels, dtype=torch.int64), skipped


def _read_cache(path: Path, key: str, size: int) -> dict[str, Any] | None:
    """The cached splits when the file exists, is well formed and matches ``key``; None otherwise."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  unreadable or foreign cache: rebuild
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or data.get("key") != key:
        return None
    for split in SPLITS:
        x, y = data.get(f"{split}_x"), data.get(f"{split}_y")
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            return None
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
            return None
        if y.dtype != torch.int64 or y.shape != (x.shape[0],):
            return None
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(WNIDS)):
            return None
    if not isinstance(data.get("skipped"), list):
        return None
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write the cache atomically; a failure (read-only folder, full disk) only costs the next load a rebuild."""
    with contextlib.suppress(OSError, RuntimeError), atomic_path(path) as tmp:
        torch.save(data, tmp)


def imagenette_tensors(root: Path, size: int) -> dict[str, Any]:
    """Both splits decoded at ``size`` px: ``{"train_x", "train_y", "val_x", "val_y", "skipped"}`` (uint8 images,
    int64 labels, skipped files as [path, kind, reason]), from the cache when the files have not changed."""
    check_imagenette_files(root)
    folder = Path(root) / FOLDER
    listing = _listing(folder)
    key = _fingerprint(folder, listing, size)
    cache = folder / f".lab_cache_{size}.pt"
    data = _read_cache(cache, key, size)
    if data is None:
        data = {"version": CACHE_VERSION, "key": key, "skipped": []}
        for split in SPLITS:
            x, y, skipped = _build(folder, listing[split], size)
            data[f"{split}_x"], data[f"{split}_y"] = x, y
            data["skipped"] += skipped
        _write_cache(cache, data)
    return data


def val_files(root: Path) -> list[tuple[int, str]]:
    """The official val split's candidate files as (label, path relative to the Imagenette folder), in the order
    they are decoded: the pool a challenge's hidden test split is cut from (:mod:`resnet_lab.data.holdout_files`)."""
    check_imagenette_files(root)
    folder = Path(root) / FOLDER
    return [(label, p.relative_to(folder).as_posix()) for label, p in _listing(folder)["val"]]


def decode_files(root: Path, files: list[tuple[int, str]],
                 size: int) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """Decode ``files`` ((label, relative path), as :func:`val_files` lists them) at ``size`` px, not cached:
    (uint8 images, int64 labels, which files were decoded: the door's refusals are False)."""
    folder = Path(root) / FOLDER
    x, y, skipped = _build(folder, [(label, folder / rel) for label, rel in files], size)
    refused = {p for p, _, _ in skipped}
    return x, y, [rel not in refused for _, rel in files]


def load_imagenette(cfg: DataConfig, root: Path, hide: frozenset[str] = frozenset()) -> Dataset:
    """Imagenette from ``root``: the training split (optionally a stratified ``train_subset``) and the official val
    split less the files in ``hide`` (a challenge's hidden test split: paths as :func:`val_files` gives them), at
    ``cfg.image_size`` px, kept as uint8. Skipped files are logged; a split left without any usable image raises
    DatasetMissing."""
    info = builtin_info("imagenette")
    data = imagenette_tensors(Path(root), cfg.image_size)
    folder = Path(root) / FOLDER
    if data["skipped"]:
        shown = "; ".join(f"{p} ({reason})" for p, _, reason in data["skipped"][:5])
        more = f" and {len(data['skipped']) - 5} more" if len(data["skipped"]) > 5 else ""
        log.warning("Imagenette: %d file(s) in %s skipped by the image door: %s%s",
                    len(data["skipped"]), folder, shown, more)
    for split in SPLITS:
        if not len(data[f"{split}_y"]):
            raise DatasetMissing(f"Imagenette's {split} folder in {folder} has no usable images: extract "
                                 f"{ARCHIVE} again.", folder, corrupted=(f"{split}/",))
    x_train, y_train = take_subset(data["train_x"], data["train_y"], cfg.train_subset, cfg.seed)
    x_val, y_val = data["val_x"], data["val_y"]
    if hide:  # the decoded val images are the listed files less the door's refusals, in order
        refused = {p for p, _, _ in data["skipped"]}
        decoded = [rel for _, rel in val_files(Path(root)) if rel not in refused]
        keep = torch.tensor([rel not in hide for rel in decoded], dtype=torch.bool)
        x_val, y_val = x_val[keep], y_val[keep]
    return Dataset.from_tensors(x_train, y_train, x_val, y_val, CLASS_NAMES, hflip=info.hflip)
