"""The safe tar door: a tar (plain, .tar.gz, .tgz, .tar.bz2, .tar.xz) in, a fresh folder of plain files out.

The same rules as :func:`resnet_lab.data.archives.extract_zip` (and its :class:`ArchiveLimits`,
:class:`ArchiveRejected` naming the offending member, junk skipped): nothing but regular files and folders is
created; a symbolic or hard link, a device, a FIFO or any other member type refuses the whole archive, as does a
name that is absolute, holds ``..``, a backslash, a drive letter or a control character, a duplicate name, too
deep a path, or a cap exceeded (members, files, bytes per file, total bytes, total expansion over the archive's
size). Member modes, owners and timestamps are never applied.

The archive is read once, as a stream (``tarfile``'s ``r|*`` mode): each member is checked from its header, then
its data streamed into a fresh hidden temp folder beside ``dest`` while the real bytes are counted; only when the
last member is written is the folder renamed to ``dest``. A refusal or a truncated stream removes the temp folder,
so nothing is left behind. (A tar's members cannot overlap, and gzip has no per-member ratio, so the expansion cap
is the total bytes over the archive file's size.)

Use :func:`resnet_lab.data.archives.extract_tar`; :data:`DOWNLOAD_LIMITS` are generous enough for the real
datasets the lab downloads (CIFAR ~180 MB in 8 files, Imagenette 160 px ~13,400 images).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..fmt import format_bytes
from .archives import (GIB, MIB, ArchiveLimits, ArchiveRejected, ExtractResult, _inside, _safe_parts, _short, check_paths,
                       is_junk)

CHUNK = 1 * MIB  # bytes copied from a member at a time

DOWNLOAD_LIMITS = ArchiveLimits(
    max_archive_bytes=4 * GIB,  # the .tgz itself (CIFAR ~170 MB, Imagenette 160 px ~95 MB, full Imagenette 1.5 GB)
    max_entries=100_000,  # tar headers read, folders and junk included
    max_files=50_000,  # Imagenette 160 px: ~13,400 images
    max_file_bytes=1 * GIB,  # one member (a CIFAR batch is ~31 MB)
    max_total_bytes=8 * GIB,  # all members together
    max_ratio=50.0,  # total bytes / archive bytes (CIFAR's pickles gzip ~1.1x; images barely compress)
)


def extract_tar(tar_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str],
                limits: ArchiveLimits = DOWNLOAD_LIMITS) -> ExtractResult:
    """Extract the tar at ``tar_path`` into the new folder ``dest_dir``, refusing anything unsafe.

    ``dest_dir`` must not exist (``FileExistsError`` otherwise); its parent is created if needed. Returns an
    :class:`ExtractResult`; raises :class:`ArchiveRejected` (naming the member) for an unsafe or broken archive.
    """
    src, dest, size = check_paths(tar_path, dest_dir, limits)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        with src.open("rb") as fp:
            try:
                tar = tarfile.open(fileobj=fp, mode="r|*")
            except (tarfile.TarError, OSError, EOFError) as e:
                raise ArchiveRejected(f"{src.name} is not a readable tar archive ({_short(e)})") from e
            with tar:
                files, dirs, skipped, total = _stream(tar, tmp, size, limits)
        try:
            os.rename(tmp, dest)  # atomic on one filesystem; fails if dest appeared meanwhile
        except OSError as e:
            raise FileExistsError(f"{dest} appeared while extracting; nothing was written") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExtractResult(dest=dest, files=files, dirs=dirs, skipped=skipped, total_bytes=total)


def _member_type(m: tarfile.TarInfo) -> str:
    """'file', 'dir', or the name of a forbidden type."""
    if m.isreg():
        return "file"
    if m.isdir():
        return "dir"
    if m.issym():
        return "symbolic link"
    if m.islnk():
        return "hard link"
    if m.ischr() or m.isblk():
        return "device file"
    if m.isfifo():
        return "FIFO"
    return f"member of tar type {m.type!r}"


def _stream(tar: tarfile.TarFile, root: Path, archive_bytes: int, limits: ArchiveLimits,
            ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], int]:
    """Check and write each member in stream order; return (files, dirs, skipped, total bytes)."""
    root_resolved = root.resolve()
    files: list[str] = []
    dirs: list[str] = []
    skipped: list[str] = []
    seen: dict[tuple[str, ...], str] = {}
    total = 0
    budget = min(limits.max_total_bytes, int(limits.max_ratio * max(archive_bytes, limits.ratio_floor_bytes)))
    count = 0
    while True:
        try:
            m = tar.next()
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            raise ArchiveRejected(f"the archive is corrupt or truncated after {count:,} members ({_short(e)})") from e
        if m is None:
            break
        count += 1
        name = m.name
        if count > limits.max_entries:
            raise ArchiveRejected(f"the archive holds more than {limits.max_entries:,} members", name)
        parts = _safe_parts(name, limits)
        kind = _member_type(m)
        if kind not in ("file", "dir"):
            raise ArchiveRejected(f"member {name!r} is a {kind}; only folders and regular files are accepted", name)
        if parts in seen and not (kind == "dir" and seen[parts] == "dir"):
            raise ArchiveRejected(f"member {name!r} appears twice in the archive", name)
        seen[parts] = kind
        if is_junk(parts):
            skipped.append(name)
            continue
        target = _inside(root, root_resolved, parts, name)
        if kind == "dir":
            dirs.append("/".join(parts))
            try:
                target.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ArchiveRejected(f"folder {name!r} could not be created ({e.strerror or e})", name) from e
            continue
        if len(files) >= limits.max_files:
            raise ArchiveRejected(f"the archive holds more than {limits.max_files:,} files", name)
        if m.size > limits.max_file_bytes:
            raise ArchiveRejected(f"member {name!r} is {format_bytes(m.size)}; at most "
                                  f"{format_bytes(limits.max_file_bytes)} per file", name)
        if total + m.size > budget:
            raise ArchiveRejected(f"the archive expands to more than {format_bytes(budget)} "
                                  f"(limit reached at member {name!r})", name)
        total += _write_member(tar, m, target, name)
        files.append("/".join(parts))
    return tuple(files), tuple(dirs), tuple(skipped), total


def _write_member(tar: tarfile.TarFile, m: tarfile.TarInfo, target: Path, name: str) -> int:
    """Stream one regular member to ``target`` (a new file); return the bytes written, checked against its header."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = target.open("xb")  # exclusive: never follows or replaces an existing path
    except OSError as e:
        raise ArchiveRejected(f"member {name!r} could not be written ({e.strerror or e})", name) from e
    written = 0
    try:
        src = tar.extractfile(m)
        if src is None:
            raise ArchiveRejected(f"member {name!r} has no data", name)
        with out, src:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                out.write(chunk)
    except ArchiveRejected:
        raise
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:  # truncated stream, bad gzip/bz2/xz data
        raise ArchiveRejected(f"member {name!r} is corrupt or truncated ({_short(e)})", name) from e
    if written != m.size:
        raise ArchiveRejected(f"member {name!r} holds {written:,} bytes, its header says {m.size:,}", name)
    return written
