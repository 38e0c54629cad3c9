"""A person's uploads: the one way a zip becomes someone's dataset, and the one way a dataset is deleted.

:func:`import_dataset` checks the per-person upload cap (``Bounds.max_upload_mb``) against what that person
already keeps (:func:`owner_upload_bytes`) before anything is extracted, imports through the safe archive door
(:func:`resnet_lab.data.zip_import.import_zip`), and records the person as the dataset's owner, with the zip's size,
in the store (``store.datasets``). A teacher is not capped. Imports by one person are serialised in this process,
so two uploads started at once cannot both slip under the cap. :func:`remove_dataset` lets only the owner or a
teacher delete a dataset, and forgets its record with its files. A dataset without a record (placed by hand) is
the machine's.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from ..data.archives import ArchiveLimits
from ..data.folders import FolderReport, dataset_path, delete_dataset_files, list_user_datasets
from ..data.types import validate_name
from ..data.zip_import import import_zip
from ..identity import Identity, require
from .bounds import Bounds

if TYPE_CHECKING:
    from ..store import Store

_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock_of(owner: str) -> threading.Lock:
    with _locks_guard:
        return _locks[owner]


def owner_upload_bytes(store: Store, owner: str | Identity, datasets_dir: str | os.PathLike[str] | None = None) -> int:
    """Bytes of the datasets ``owner`` (a key such as ``"class:3"``, or an Identity) uploaded and still keeps (the
    records of datasets whose folder is gone do not count)."""
    key = owner.owner if isinstance(owner, Identity) else owner
    if not isinstance(key, str):
        raise TypeError(f"owner must be an owner key or an Identity, got {type(owner).__name__}")
    return store.datasets.bytes_per_owner(list_user_datasets(datasets_dir)).get(key, 0)


def import_dataset(zip_path: str | os.PathLike[str], name: str, *, owner: Identity, bounds: Bounds, hflip: bool,
                   store: Store, datasets_dir: str | os.PathLike[str] | None = None,
                   limits: ArchiveLimits = ArchiveLimits()) -> FolderReport:
    """Import ``zip_path`` as the dataset ``name`` owned by ``owner``, refused with
    :class:`~resnet_lab.classroom.bounds.OutOfBounds` (before extraction) when it would bring the owner's
    uploads above ``bounds.max_upload_mb``. Everything :func:`~resnet_lab.data.zip_import.import_zip` raises, too.
    The owner and the zip's size go into ``store.datasets``; when that fails the files are removed again."""
    if not isinstance(owner, Identity):
        raise TypeError(f"owner must be an Identity, got {type(owner).__name__}")
    if not isinstance(bounds, Bounds):
        raise TypeError(f"bounds must be Bounds, got {type(bounds).__name__}")
    with _lock_of(owner.owner):
        size = os.path.getsize(zip_path)
        if not owner.teacher and bounds.max_upload_mb is not None:
            bounds.check_upload(owner_upload_bytes(store, owner.owner, datasets_dir), size)
        report = import_zip(zip_path, name, datasets_dir, limits=limits, hflip=hflip)
        try:
            store.datasets.record(name, owner, size)
        except BaseException:
            delete_dataset_files(name, datasets_dir)  # an upload nobody owns would slip past the cap
            raise
        return report


def remove_dataset(name: str, by: Identity, *, store: Store,
                   datasets_dir: str | os.PathLike[str] | None = None) -> None:
    """Delete an imported dataset (its folder, caches and record) on behalf of ``by``: its owner or a teacher.

    Anyone else gets :class:`~resnet_lab.identity.NotAllowed` and the dataset stays as it was; a name that is not
    an imported dataset ("../x", one never imported) raises ValueError."""
    dataset_path(validate_name(name), datasets_dir)
    owner, owner_name = store.datasets.owner_of(name)
    require(by, owner, "delete", f"the dataset {name!r}", owner_name)
    delete_dataset_files(name, datasets_dir)
    store.datasets.delete(name)


__all__ = ["import_dataset", "owner_upload_bytes", "remove_dataset"]
