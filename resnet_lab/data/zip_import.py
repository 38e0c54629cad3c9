"""Importing an upload: a zip of class folders in, through the safe archive door, a user dataset (or nothing) out.

:func:`import_zip` extracts an upload through :mod:`resnet_lab.data.archives` into
``$RESNET_LAB_HOME/datasets/<name>``, scans it (:func:`resnet_lab.data.folders.scan_folder`), and removes it again
when it cannot train, so a bad upload never leaves a half-registered dataset behind. It keeps the files and what
training reads about them; who uploaded a dataset is the store's record, written by the caller
(:func:`resnet_lab.classroom.uploads.import_dataset`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from .archives import ArchiveLimits, extract_zip
from .folders import DEFAULT_MIN_SIDE, FolderReport, datasets_root, scan_folder, write_dataset_meta
from .types import validate_name


class DatasetRejected(ValueError):
    """An imported folder that cannot train; ``report`` says why (the folder was removed again)."""

    def __init__(self, report: FolderReport) -> None:
        super().__init__(report.error or "the dataset cannot be used for training")
        self.report = report

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.report,))


def import_zip(
    zip_path: str | os.PathLike[str],
    name: str,
    datasets_dir: str | os.PathLike[str] | None = None,
    *,
    limits: ArchiveLimits = ArchiveLimits(),
    min_side: int = DEFAULT_MIN_SIDE,
    hflip: bool = False,
) -> FolderReport:
    """Import an uploaded zip of class folders as the user dataset ``name``.

    ``hflip``: whether a mirror image keeps its label (a cat flipped is a cat; a "b" flipped is a "d").
    The lab cannot guess it for your images, so the import asks; the answer is kept with the dataset
    (:func:`~resnet_lab.data.folders.dataset_meta`) and decides whether training augments with flips. Default: no
    flips.

    ``name`` must be a safe slug (:func:`validate_name`) not already in use. The archive goes through
    :func:`~resnet_lab.data.archives.extract_zip` (raising its ``ArchiveRejected`` for an unsafe
    archive) into ``datasets_dir/name`` (default ``$RESNET_LAB_HOME/datasets``), then
    :func:`~resnet_lab.data.folders.scan_folder` validates it. When the report is not ``ok`` the extracted folder
    is removed and :class:`DatasetRejected` (carrying the report) is raised, so nothing partial stays registered.
    Returns the report of a dataset that can train (it may still carry warnings).
    """
    validate_name(name)
    base = Path(datasets_dir) if datasets_dir is not None else datasets_root()
    dest = base / name
    if dest.exists() or dest.is_symlink():
        raise ValueError(f"a dataset named {name!r} already exists; choose another name or delete it first")
    try:
        extract_zip(zip_path, dest, limits)
    except FileExistsError as e:
        raise ValueError(f"a dataset named {name!r} already exists; choose another name or delete it first") from e
    try:
        report = scan_folder(dest, min_side=min_side)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    if not report.ok:
        shutil.rmtree(dest, ignore_errors=True)
        raise DatasetRejected(report)
    write_dataset_meta(name, {"hflip": bool(hflip), "native_size": report.native_size,
                              "zip_sha256": _file_sha256(zip_path)}, datasets_dir)
    return report


def _file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["DatasetRejected", "import_zip"]
