"""User datasets: a zip (or folder) of class folders in, a validation report and a :class:`Dataset` out.

Layout, as torchvision's ``ImageFolder`` expects it: one folder per class, images inside (sub-folders
of a class folder are searched too)::

    <dataset>/cats/001.jpg
    <dataset>/dogs/a/002.png

A single wrapper folder is accepted as well (``<dataset>/myzip/cats/...``), which is what zipping a
folder usually produces. Junk (``__MACOSX``, ``.DS_Store``, hidden files) is ignored.

* :func:`scan_folder` decodes every file once through the safe image door (``images.py``) and reports
  classes, per-class counts, skipped files with reasons, warnings, and whether it can train at all.
* An upload becomes a dataset in ``$RESNET_LAB_HOME/datasets/<name>`` through :mod:`resnet_lab.data.zip_import`;
  what the lab keeps about its files (flips keep the label, native size, the zip's digest) is in its hidden
  ``.lab.json`` (:func:`dataset_meta`). Who uploaded it is not the files' business: the store keeps it
  (:mod:`resnet_lab.store.datasets`, asked by :mod:`resnet_lab.classroom.uploads`);
  :func:`delete_dataset_files` only deletes the files.
* :func:`load_folder_dataset` turns a dataset folder into train/val tensors at a given image size,
  caching the decoded, resized images as uint8 in ``<dataset>/.cache_<size>.pt`` (rebuilt when the
  folder's files change).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..checks import MAX_SEED, check_float, check_int
from ..paths import atomic_path, lab_home, write_atomic
from .archives import is_junk
from .images import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, resize_square
from .types import FOLDER_NATIVE_SIZE, NAME_PATTERN, VAL_FRACTION_RANGE, Dataset, validate_name

DEFAULT_MIN_SIDE = 16  # images whose shorter side is below this many px are skipped as too small
MIN_IMAGES_WARN = 5  # a class with fewer usable images than this gets a warning
IMBALANCE_WARN = 10.0  # largest / smallest class size above this gets a warning
IMAGE_SIZE_RANGE = (8, 512)  # allowed image_size for load_folder_dataset, px
CACHE_VERSION = 2  # bump when the cache layout or the decoding changes (2: odd modes converted before shrinking)
OUTSIDE_CLASS = "outside_class"  # SkippedFile.kind of a file not inside any class folder
SYMLINK = "symlink"  # SkippedFile.kind of a symbolic link (never followed)
META_FILE = ".lab.json"  # what the lab keeps about an imported dataset (hidden: never listed as an image)


@dataclass(frozen=True)
class SkippedFile:
    path: str  # POSIX path relative to the dataset folder
    kind: str  # an ImageRejected kind (corrupt, truncated, unsupported, ...), outside_class or symlink
    reason: str  # a sentence for the person who made the dataset


@dataclass(frozen=True)
class FolderReport:
    root: Path  # folder holding the class folders (inside the wrapper folder when there is one)
    class_names: tuple[str, ...]  # classes with at least one usable image, sorted: label i is class_names[i]
    counts: dict[str, int] = field(hash=False)  # usable images per class folder, empty ones included (0)
    skipped: tuple[SkippedFile, ...] = ()  # files that will not be used, with the reason
    warnings: tuple[str, ...] = ()  # things worth fixing (tiny, empty or imbalanced classes, ...)
    ok: bool = False  # True when it can train: at least two classes with usable images
    error: str | None = None  # why it cannot train (None when ok)
    native_size: int | None = None  # median shorter side of the usable images, px (None: no usable image)

    @property
    def num_images(self) -> int:
        """Usable images over all classes."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (paths as strings)."""
        return {
            "root": str(self.root),
            "class_names": list(self.class_names),
            "counts": dict(self.counts),
            "skipped": [{"path": s.path, "kind": s.kind, "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
            "ok": self.ok,
            "error": self.error,
            "num_images": self.num_images,
            "native_size": self.native_size,
        }


def datasets_root() -> Path:
    """Where imported user datasets live: ``$RESNET_LAB_HOME/datasets`` (read at call time)."""
    return lab_home() / "datasets"


def list_user_datasets(datasets_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Sorted names of the imported datasets (folders with a valid name; temp and hidden folders excluded)."""
    base = Path(datasets_dir) if datasets_dir is not None else datasets_root()
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir() if NAME_PATTERN.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
    )


def dataset_path(name_or_path: str | os.PathLike[str], datasets_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of an imported dataset, given its name or its path; it must be a folder with a valid
    name directly inside ``datasets_dir`` (default ``$RESNET_LAB_HOME/datasets``), symlinks resolved.
    Anything else ("../x", "/etc", a symlink pointing out) raises ValueError."""
    base = (Path(datasets_dir) if datasets_dir is not None else datasets_root()).resolve()
    if isinstance(name_or_path, str) and "/" not in name_or_path and os.sep not in name_or_path:
        candidate = base / validate_name(name_or_path)
    elif isinstance(name_or_path, (str, os.PathLike)):
        p = Path(name_or_path).expanduser()
        candidate = p if p.is_absolute() else base / p
    else:
        raise TypeError(f"need a dataset name or path, got {type(name_or_path).__name__}")
    resolved = candidate.resolve()
    if resolved.parent != base or not NAME_PATTERN.fullmatch(resolved.name):
        raise ValueError(f"{str(name_or_path)!r} is not a dataset folder directly inside {base}")
    if not resolved.is_dir():
        known = ", ".join(list_user_datasets(base)) or "none yet"
        raise ValueError(f"there is no user dataset named {resolved.name!r} (imported: {known})")
    return resolved


def delete_dataset_files(name: str, datasets_dir: str | os.PathLike[str] | None = None) -> None:
    """Delete an imported dataset's folder (and its caches). Who may is the caller's business
    (:func:`resnet_lab.classroom.uploads.remove_dataset` asks, and forgets the dataset's owner with it)."""
    shutil.rmtree(dataset_path(validate_name(name), datasets_dir))


# ---------------------------------------------------------------------------------------------------
# listing and scanning


@dataclass(frozen=True)
class _Listing:
    root: Path  # folder holding the class folders
    classes: tuple[str, ...]  # every class folder, sorted
    files: tuple[tuple[int, Path], ...]  # (index into classes, path) of every candidate file, sorted
    skipped: tuple[SkippedFile, ...]  # files ruled out without decoding (outside a class, symlinks)


def _visible(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Non-junk (sub-folders, regular files, symlinks) directly in ``folder``, sorted by name."""
    dirs: list[Path] = []
    files: list[Path] = []
    links: list[Path] = []
    for p in sorted(folder.iterdir(), key=lambda q: q.name):
        if is_junk((p.name,)):
            continue
        if p.is_symlink():
            links.append(p)
        elif p.is_dir():
            dirs.append(p)
        elif p.is_file():
            files.append(p)
    return dirs, files, links


def _list(folder: Path) -> _Listing:
    """Find the class root (descending into a single wrapper folder) and every candidate image file."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    dirs, loose, links = _visible(folder)
    root = folder
    if len(dirs) == 1 and _visible(dirs[0])[0]:  # one wrapper folder that itself holds folders
        root = dirs[0]
        inner_dirs, inner_loose, inner_links = _visible(root)
        dirs, loose, links = inner_dirs, loose + inner_loose, links + inner_links
    skipped = [
        SkippedFile(_rel(p, folder), OUTSIDE_CLASS, "not inside a class folder (put each image in its class's folder)")
        for p in loose
    ]
    skipped += [SkippedFile(_rel(p, folder), SYMLINK, "a symbolic link (never followed)") for p in links]
    classes = tuple(d.name for d in dirs)
    files: list[tuple[int, Path]] = []
    for ci, d in enumerate(dirs):
        for dirpath, subdirs, names in os.walk(d, followlinks=False):
            subdirs[:] = sorted(s for s in subdirs if not is_junk((s,)))
            here = Path(dirpath)
            for s in list(subdirs):
                if (here / s).is_symlink():
                    skipped.append(SkippedFile(_rel(here / s, folder), SYMLINK, "a symbolic link (never followed)"))
                    subdirs.remove(s)
            for n in sorted(names):
                if is_junk((n,)):
                    continue
                p = here / n
                if p.is_symlink():
                    skipped.append(SkippedFile(_rel(p, folder), SYMLINK, "a symbolic link (never followed)"))
                elif p.is_file():
                    files.append((ci, p))
    return _Listing(root=root, classes=classes, files=tuple(files), skipped=tuple(skipped))


def folder_listing(name_or_path: str | os.PathLike[str],
                   datasets_dir: str | os.PathLike[str] | None = None) -> tuple[tuple[str, ...], int]:
    """(class folders holding candidate files, number of candidate files) of a user dataset, decoding nothing."""
    listing = _list(dataset_path(name_or_path, datasets_dir))
    used = sorted({ci for ci, _ in listing.files})
    return tuple(listing.classes[i] for i in used), len(listing.files)


def candidate_files(name: str) -> tuple[Path, tuple[str, ...], list[tuple[int, str]]]:
    """(dataset folder, class folders, every candidate file as (class index, POSIX path in the folder)), sorted and
    decoding nothing: the pool a challenge's hidden test split is cut from (:mod:`resnet_lab.data.holdout_files`)."""
    folder = dataset_path(name)
    listing = _list(folder)
    return folder, listing.classes, [(ci, _rel(p, folder)) for ci, p in listing.files]


def _rel(p: Path, base: Path) -> str:
    return p.relative_to(base).as_posix()


def scan_folder(
    root: str | os.PathLike[str], min_side: int = DEFAULT_MIN_SIDE, max_pixels: int = DEFAULT_MAX_PIXELS
) -> FolderReport:
    """Validate a folder of class folders without building tensors.

    Classes are the immediate sub-folders of ``root`` (or of its single wrapper folder), sorted by name.
    Every other file is decoded once through :func:`~resnet_lab.data.images.decode_image` (JPEGs at
    reduced DCT scale, which still reads all their data); files it refuses (corrupt, truncated,
    unsupported format, not an image, shorter side below ``min_side`` px, above ``max_pixels``) are
    listed in ``skipped`` with the reason. ``ok`` is True when at least two classes have usable images;
    otherwise ``error`` says why. Warnings flag a single class, empty classes (left out of
    ``class_names``), classes with fewer than :data:`MIN_IMAGES_WARN` images, and a largest/smallest
    class ratio above :data:`IMBALANCE_WARN`.
    """
    folder = Path(root)
    listing = _list(folder)
    counts = dict.fromkeys(listing.classes, 0)
    skipped = list(listing.skipped)
    sides: list[int] = []
    for ci, path in listing.files:
        try:
            decode_image(path, max_pixels, min_side=min_side, shrink_to=max(1, min_side))
        except ImageRejected as e:
            skipped.append(SkippedFile(_rel(path, folder), e.kind, str(e)))
            continue
        counts[listing.classes[ci]] += 1
        with Image.open(path) as im:  # the door accepted it: its header's size is safe to read
            sides.append(min(im.size))
    native = int(statistics.median(sides)) if sides else None
    return dataclasses.replace(_report(listing.root, counts, tuple(skipped)), native_size=native)


def _report(root: Path, counts: dict[str, int], skipped: tuple[SkippedFile, ...]) -> FolderReport:
    """Warnings, ok and error from the per-class counts."""
    names = tuple(c for c in counts if counts[c] > 0)
    warnings: list[str] = []
    error = None
    if not counts:
        error = "no class folders found: put each class's images in its own folder (e.g. cats/..., dogs/...)"
    elif not names:
        error = "no usable images found in the class folders"
    elif len(names) == 1:
        error = f"only one class ({names[0]!r}) has images; a classifier needs at least two"
        warnings.append(error)
    for c, n in counts.items():
        if n == 0:
            warnings.append(f"class folder {c!r} has no usable images and is left out")
        elif n < MIN_IMAGES_WARN:
            warnings.append(
                f"class {c!r} has only {n} image{'s' if n != 1 else ''}; fewer than {MIN_IMAGES_WARN} "
                "makes training and validation unreliable"
            )
    if len(names) >= 2:
        big = max(names, key=lambda c: counts[c])
        small = min(names, key=lambda c: counts[c])
        ratio = counts[big] / counts[small]
        if ratio > IMBALANCE_WARN:
            warnings.append(
                f"classes are heavily imbalanced: {big!r} has {counts[big]} images, {small!r} only "
                f"{counts[small]} ({ratio:.1f}x, more than {IMBALANCE_WARN:g}x)"
            )
    if skipped:
        warnings.append(f"{len(skipped)} file{'s were' if len(skipped) != 1 else ' was'} skipped (see the list)")
    return FolderReport(
        root=root, class_names=names, counts=counts, skipped=skipped, warnings=tuple(warnings),
        ok=error is None, error=error,
    )


# ---------------------------------------------------------------------------------------------------
# what the lab keeps about a dataset's files


def _meta_path(name: str, datasets_dir: str | os.PathLike[str] | None = None) -> Path:
    return dataset_path(name, datasets_dir) / META_FILE


def dataset_meta(name: str, datasets_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What the lab keeps about an imported dataset: ``hflip`` (a mirror image keeps its label) and
    ``native_size`` (median shorter side of its images, px). A dataset imported before these were kept,
    or a damaged file, gives the safe defaults: no flips, FOLDER_NATIVE_SIZE."""
    out: dict[str, Any] = {"hflip": False, "native_size": FOLDER_NATIVE_SIZE}
    try:
        raw = json.loads(_meta_path(name, datasets_dir).read_text())
    except (OSError, ValueError):
        return out
    if isinstance(raw, dict):
        if isinstance(raw.get("hflip"), bool):
            out["hflip"] = raw["hflip"]
        size = raw.get("native_size")
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            out["native_size"] = size
    return out


def dataset_contents(name: str, datasets_dir: str | os.PathLike[str] | None = None) -> str:
    """What a dataset's images are, to tell apart two datasets that had the same name (say, one deleted and
    another uploaded under its name): the sha256 of the zip it was imported from, kept at import; for a folder
    placed by hand (or imported before that was kept), a sha256 of its files' paths, sizes and modification
    times. ValueError when there is no such dataset."""
    digest = _raw_meta(name, datasets_dir).get("zip_sha256")
    if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
        return f"zip:{digest}"
    folder = dataset_path(name, datasets_dir)
    h = hashlib.sha256()
    _hash_files(h, folder, _list(folder))
    return f"files:{h.hexdigest()}"


def _raw_meta(name: str, datasets_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything kept in the dataset's ``.lab.json`` (empty when missing or damaged). ValueError when there is
    no such dataset."""
    path = _meta_path(name, datasets_dir)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def write_dataset_meta(name: str, meta: dict[str, Any], datasets_dir: str | os.PathLike[str] | None = None) -> None:
    """Keep ``meta`` (merged into what is kept) with the dataset, written atomically."""
    merged = {**_raw_meta(name, datasets_dir), **dataset_meta(name, datasets_dir),
              **{k: v for k, v in meta.items() if v is not None}}
    merged.pop("version", None)
    write_atomic(_meta_path(name, datasets_dir), json.dumps({"version": 1, **merged}))


# ---------------------------------------------------------------------------------------------------
# loading as tensors


def load_folder_dataset(
    name_or_path: str | os.PathLike[str],
    image_size: int,
    val_fraction: float = 0.2,
    seed: int = 0,
    datasets_dir: str | os.PathLike[str] | None = None,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    exclude: frozenset[str] = frozenset(),
) -> Dataset:
    """Load an imported dataset as RGB tensors of ``image_size x image_size`` px.

    Every usable image is decoded once through the safe door, its shorter side resized to
    ``image_size`` (antialiased) and centre-cropped; files the door refuses are left out, as are
    classes left without images (labels follow the sorted non-empty classes, as in :func:`scan_folder`).
    The uint8 result is cached in ``<dataset>/.cache_<image_size>.pt`` (read with
    ``torch.load(weights_only=True)``) together with a fingerprint of the folder's file list, sizes and
    mtimes; any change to the files rebuilds it. Files in ``exclude`` (paths as :func:`candidate_files` gives
    them: a challenge's hidden test split) leave the pool before anything is decoded, split or cached.

    The split is stratified and seeded: in each class with n >= 2 images, ``round(n * val_fraction)``
    of them (at least 1, at most n - 1) go to val; a class with one image goes to train. Mean/std come
    from the train split; ``hflip`` is what was said at import (:func:`dataset_meta`). Raises ValueError
    when fewer than two classes have images.
    """
    check_int("image_size", image_size, *IMAGE_SIZE_RANGE)
    val_fraction = check_float("val_fraction", val_fraction, *VAL_FRACTION_RANGE)
    check_int("seed", seed, 0, MAX_SEED)
    folder = dataset_path(name_or_path, datasets_dir)
    listing = _list(folder)
    if exclude:
        kept = tuple(f for f in listing.files if _rel(f[1], folder) not in exclude)
        listing = dataclasses.replace(listing, files=kept)
    key = _fingerprint(folder, listing, image_size, min_side)
    cache = folder / f".cache_{image_size}.pt"
    hit = _read_cache(cache, key, image_size)
    if hit is None:
        x, y, names = _build(listing, image_size, min_side)
        _write_cache(cache, {"version": CACHE_VERSION, "key": key, "x": x, "y": y, "class_names": list(names)})
    else:
        x, y, names = hit
    if len(names) < 2:
        raise ValueError(
            f"dataset {folder.name!r} has images in {len(names)} class(es); a classifier needs at least two"
        )
    train_idx, val_idx = stratified_split(y, len(names), float(val_fraction), seed)
    xf = x.to(torch.float32).div_(255.0)
    return Dataset.from_tensors(
        xf[train_idx], y[train_idx], xf[val_idx], y[val_idx], class_names=names,
        hflip=bool(dataset_meta(folder.name, folder.parent)["hflip"]),
    )


def stratified_split(
    y: torch.Tensor, num_classes: int, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-class split of indices ``range(len(y))`` into (train, val), each sorted ascending.

    A class with n >= 2 images sends ``min(n - 1, max(1, round(n * val_fraction)))`` of them to val, so
    every such class appears in both splits; a class with one image stays in train.
    """
    g = torch.Generator().manual_seed(seed)
    train: list[torch.Tensor] = []
    val: list[torch.Tensor] = []
    for c in range(num_classes):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        n = idx.numel()
        nv = 0 if n < 2 else min(n - 1, max(1, round(n * val_fraction)))
        val.append(idx[:nv])
        train.append(idx[nv:])
    empty = torch.zeros(0, dtype=torch.int64)
    tr = torch.cat(train).sort().values if train else empty
    va = torch.cat(val).sort().values if val else empty
    return tr, va


def _fingerprint(folder: Path, listing: _Listing, image_size: int, min_side: int) -> str:
    """sha256 over the decoding settings and every candidate file's path, size and mtime."""
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{image_size}|{min_side}|{_rel(listing.root, folder)}|".encode())
    _hash_files(h, folder, listing)
    return h.hexdigest()


def _hash_files(h: Any, folder: Path, listing: _Listing) -> None:
    """Add the class names and every candidate file's path, size and modification time to the hash ``h``."""
    h.update(("|".join(listing.classes) + "\n").encode("utf-8", "surrogateescape"))
    for ci, p in listing.files:
        st = p.stat()
        h.update(f"{ci}|{_rel(p, folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))


def _build(listing: _Listing, image_size: int, min_side: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Decode, resize and stack every usable image: uint8 N x 3 x S x S, int64 labels, non-empty class names."""
    x = torch.empty((len(listing.files), 3, image_size, image_size), dtype=torch.uint8)
    labels: list[int] = []
    n = 0
    for ci, path in listing.files:
        try:
            img = decode_image(path, min_side=min_side, shrink_to=image_size)
        except ImageRejected:
            continue
        x[n] = resize_square(img, image_size).mul_(255.0).round_().to(torch.uint8)
        labels.append(ci)
        n += 1
    x = x[:n].clone()
    used = sorted(set(labels))
    remap = {old: new for new, old in enumerate(used)}
    y = torch.tensor([remap[c] for c in labels], dtype=torch.int64)
    return x, y, tuple(listing.classes[c] for c in used)


def _read_cache(path: Path, key: str, image_size: int) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]] | None:
    """The cached (x, y, class_names) when the file exists and matches ``key``; None otherwise."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable or foreign cache: rebuild  # noqa: BLE001
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or data.get("key") != key:
        return None
    x, y, names = data.get("x"), data.get("y"), data.get("class_names")
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and isinstance(names, list)):
        return None
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != (3, image_size, image_size):
        return None
    if y.dtype != torch.int64 or y.shape != (x.shape[0],) or not all(isinstance(c, str) for c in names):
        return None
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(names)):
        return None
    return x, y, tuple(names)


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write the cache atomically (:func:`resnet_lab.paths.atomic_path`); a failure only costs the next load a
    rebuild, so it is not raised."""
    # a read-only folder, a full disk (torch reports that as RuntimeError): nothing is left half-written
    with contextlib.suppress(OSError, RuntimeError), atomic_path(path) as tmp:
        torch.save(data, tmp)
