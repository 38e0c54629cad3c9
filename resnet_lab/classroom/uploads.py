"""A person's upload, within the class's cap: the one way the UI imports a zip for someone.

:func:`import_dataset` checks the per-person upload cap (``Bounds.max_upload_mb``) against what that person
already keeps (:func:`resnet_lab.data.folders.owner_upload_bytes`) before anything is extracted, then imports
through the safe archive door with the person as the dataset's owner. A teacher is not capped. Imports by one
person are serialised in this process, so two uploads started at once cannot both slip under the cap.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

from ..data.archives import ArchiveLimits
from ..data.folders import FolderReport, import_zip, owner_upload_bytes
from ..identity import Identity
from .bounds import Bounds

_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock_of(owner: str) -> threading.Lock:
    with _locks_guard:
        return _locks[owner]


def import_dataset(zip_path: str | os.PathLike[str], name: str, *, owner: Identity, bounds: Bounds, hflip: bool,
                   datasets_dir: str | os.PathLike[str] | None = None,
                   limits: ArchiveLimits = ArchiveLimits()) -> FolderReport:
    """Import ``zip_path`` as the dataset ``name`` owned by ``owner``, refused with
    :class:`~resnet_lab.classroom.bounds.OutOfBounds` (before extraction) when it would bring the owner's
    uploads above ``bounds.max_upload_mb``. Everything :func:`~resnet_lab.data.folders.import_zip` raises, too."""
    if not isinstance(owner, Identity):
        raise TypeError(f"owner must be an Identity, got {type(owner).__name__}")
    if not isinstance(bounds, Bounds):
        raise TypeError(f"bounds must be Bounds, got {type(bounds).__name__}")
    with _lock_of(owner.owner):
        if not owner.teacher and bounds.max_upload_mb is not None:
            bounds.check_upload(owner_upload_bytes(owner.owner, datasets_dir), os.path.getsize(zip_path))
        return import_zip(zip_path, name, datasets_dir, limits=limits, hflip=hflip, owner=owner)


__all__ = ["import_dataset"]
