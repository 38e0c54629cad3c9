"""The one safe door for user archives: a zip in, a fresh folder of plain files out (or a clear refusal).

:func:`extract_zip` is the only code that unpacks an archive a person uploads. The whole archive is
refused with :class:`ArchiveRejected` (a ``ValueError`` naming the offending entry) when:

* it is not a zip at all (the message says what it looks like instead), or an entry is encrypted or
  uses a compression method other than stored/deflate/bzip2/lzma;
* an entry name could escape the destination: an absolute path, a ``..`` component, a drive letter,
  a backslash, a control character, an over-long name or too deep a path; or two entries share a name;
* an entry is a symbolic link (or a device, FIFO or socket), judged from its Unix mode bits in
  ``external_attr``; nothing but folders and regular files is ever created;
* a cap in :class:`ArchiveLimits` is exceeded: archive size, number of central-directory records,
  number of files, bytes per file, total bytes, expansion ratio per entry (zip bomb), or entries whose
  data overlap (the "overlapping files" zip bomb). The central directory is checked first; while
  streaming, the real decompressed bytes are counted (header sizes are never trusted alone) and
  zipfile's CRC check catches data that does not match its header.

Junk is skipped, not refused: ``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``, ``desktop.ini`` and every
hidden file or folder (a name starting with ``.``). See :func:`is_junk`.

Extraction writes into a fresh hidden temp folder next to ``dest`` and renames it to ``dest`` only
when every entry was written, so a refused or failed archive leaves nothing behind.

:func:`extract_tar` is the same door for tar archives (the downloaded datasets' ``.tar.gz``); its code lives
in :mod:`resnet_lab.data.tar_door`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..fmt import format_bytes

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini"})  # lower-cased file names
JUNK_DIRS = frozenset({"__macosx"})  # lower-cased folder names (macOS resource forks)
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
CHUNK = 1 * MIB  # bytes read from an entry at a time while streaming
_LOCAL_HEADER_MIN = 30  # fixed part of a zip local file header, bytes
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    max_archive_bytes: int = 1 * GIB  # size of the .zip file itself
    max_entries: int = 50_000  # central-directory records, folders and junk included (parsing cost)
    max_files: int = 10_000  # regular files actually extracted (junk and folders not counted)
    max_file_bytes: int = 64 * MIB  # uncompressed size of one file
    max_total_bytes: int = 2 * GIB  # uncompressed size of all extracted files together
    max_ratio: float = 200.0  # uncompressed / compressed size of one entry (deflate tops out near 1032)
    ratio_floor_bytes: int = 1 * MIB  # entries smaller than this (uncompressed) skip the ratio check
    max_depth: int = 16  # folder levels in one entry path
    max_name_bytes: int = 255  # one path component, UTF-8 bytes (common filesystem limit)

    def __post_init__(self) -> None:
        for name in (
            "max_archive_bytes", "max_entries", "max_files", "max_file_bytes", "max_total_bytes",
            "ratio_floor_bytes", "max_depth", "max_name_bytes",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "ratio_floor_bytes" else 1):
                raise ValueError(f"ArchiveLimits.{name} must be a positive integer, got {v!r}")
        if isinstance(self.max_ratio, bool) or not isinstance(self.max_ratio, (int, float)) or self.max_ratio < 1:
            raise ValueError(f"ArchiveLimits.max_ratio must be a number >= 1, got {self.max_ratio!r}")


@dataclass(frozen=True)
class ExtractResult:
    dest: Path  # the folder the archive was extracted into (did not exist before)
    files: tuple[str, ...]  # relative POSIX paths of the regular files written, in archive order
    dirs: tuple[str, ...]  # relative POSIX paths of folders listed in the archive (possibly empty ones)
    skipped: tuple[str, ...]  # junk entries ignored (__MACOSX, .DS_Store, Thumbs.db, hidden), as named in the zip
    total_bytes: int  # uncompressed bytes actually written


class ArchiveRejected(ValueError):
    """A zip the safe door refused as a whole. ``entry`` names the offending entry (None when the
    problem is the archive itself); the message is a sentence meant for the person who uploaded it."""

    def __init__(self, message: str, entry: str | None = None) -> None:
        super().__init__(message)
        self.entry = entry

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # survive pickling (e.g. from a worker process)
        return (type(self), (str(self), self.entry))


def is_junk(parts: tuple[str, ...] | list[str]) -> bool:
    """Whether a relative path (its components) is OS debris to ignore: anything under ``__MACOSX``,
    ``.DS_Store``/``Thumbs.db``/``desktop.ini``, or any hidden component (starting with ``.``)."""
    for p in parts:
        low = p.lower()
        if p.startswith(".") or low in JUNK_DIRS or low in JUNK_NAMES:
            return True
    return False


def check_paths(archive_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str],
                limits: ArchiveLimits) -> tuple[Path, Path, int]:
    """What every door checks before it opens an archive: ``dest_dir`` names a new folder (``ValueError``,
    ``FileExistsError``), the archive is a readable regular file within ``limits.max_archive_bytes``
    (:class:`ArchiveRejected`). Returns (archive, destination, the archive's size in bytes)."""
    src = Path(archive_path)
    dest = Path(dest_dir)
    if not dest.name or dest.name in (".", ".."):
        raise ValueError(f"dest_dir={str(dest_dir)!r} must name a new folder")
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest} already exists; extract into a new folder")
    try:
        size = src.stat().st_size
    except OSError as e:
        raise ArchiveRejected(f"the archive {src.name} could not be read ({e.strerror or e})") from e
    if not src.is_file():
        raise ArchiveRejected(f"{src.name} is not a regular file")
    if size > limits.max_archive_bytes:
        raise ArchiveRejected(
            f"the archive is {format_bytes(size)}; at most {format_bytes(limits.max_archive_bytes)} is accepted"
        )
    return src, dest, size


def extract_zip(
    zip_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str], limits: ArchiveLimits = ArchiveLimits()
) -> ExtractResult:
    """Extract the zip at ``zip_path`` into the new folder ``dest_dir``, refusing anything unsafe.

    ``dest_dir`` must not exist (``FileExistsError`` otherwise); its parent is created if needed.
    Every entry is validated from the central directory before a byte is written (names, types,
    encryption, compression method, sizes, ratios, counts, overlaps); then regular files are streamed
    into a hidden temp folder inside ``dest_dir``'s parent while their real sizes are counted, and the
    temp folder is renamed to ``dest_dir`` at the end. On any refusal or error the temp folder is
    removed, so nothing is left behind. Folders and regular files only; file modes and timestamps
    from the archive are not applied.

    Returns an :class:`ExtractResult`; raises :class:`ArchiveRejected` for an unsafe or broken archive.
    """
    src, dest, size = check_paths(zip_path, dest_dir, limits)
    with src.open("rb") as fp:
        _check_is_zip(fp, src.name, limits)
        try:
            zf = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
            raise ArchiveRejected(f"{src.name} is not a readable zip archive ({e})") from e
        with zf:
            plan = _plan(zf, limits)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
            try:
                total = _write(zf, plan, tmp, limits)
                try:
                    os.rename(tmp, dest)  # atomic on one filesystem; fails if dest appeared meanwhile
                except OSError as e:
                    raise FileExistsError(f"{dest} appeared while extracting; nothing was written") from e
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    files = tuple("/".join(parts) for info, parts in plan.files)
    return ExtractResult(dest=dest, files=files, dirs=plan.dirs, skipped=plan.skipped, total_bytes=total)


# ---------------------------------------------------------------------------------------------------
# validation from the central directory


@dataclass(frozen=True)
class _Plan:
    files: tuple[tuple[zipfile.ZipInfo, tuple[str, ...]], ...]  # (entry, safe path components) to write
    dirs: tuple[str, ...]  # folders to create, relative POSIX paths
    skipped: tuple[str, ...]  # junk entry names


def _check_is_zip(fp: Any, name: str, limits: ArchiveLimits) -> None:
    """Refuse a non-zip with a message naming what it looks like; count records before parsing them."""
    head = fp.read(512)
    fp.seek(0)
    try:
        endrec = zipfile._EndRecData(fp)  # type: ignore[attr-defined]  # stdlib helper, stable since 2.x
    except (OSError, AttributeError, ValueError):
        endrec = None
    fp.seek(0)
    if not endrec:
        raise ArchiveRejected(f"{name} is not a zip archive{_looks_like(head)}; upload a .zip file")
    entries = endrec[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
    if isinstance(entries, int) and entries > limits.max_entries:
        raise ArchiveRejected(
            f"the archive lists {entries:,} entries; at most {limits.max_entries:,} are accepted"
        )


def _looks_like(head: bytes) -> str:
    table = (
        (b"Rar!", "a RAR archive"),
        (b"7z\xbc\xaf", "a 7z archive"),
        (b"\x1f\x8b", "a gzip/tar.gz archive"),
        (b"BZh", "a bzip2 archive"),
        (b"\xfd7zXZ", "an xz archive"),
        (b"%PDF", "a PDF document"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"\x89PNG", "a PNG image"),
        (b"GIF8", "a GIF image"),
    )
    for magic, what in table:
        if head.startswith(magic):
            return f" (it looks like {what})"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return " (it looks like a tar archive)"
    if not head:
        return " (the file is empty)"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return " (it looks like a text file)"
        except UnicodeDecodeError:
            pass
    return ""


def _safe_parts(name: str, limits: ArchiveLimits) -> tuple[str, ...]:
    """The path components of an entry name, or ArchiveRejected if the name could escape or is unusable."""
    if not name:
        raise ArchiveRejected("the archive has an entry with an empty name", name)
    if "\x00" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ArchiveRejected(f"entry {name!r} has a control character in its name", name)
    if "\\" in name:
        raise ArchiveRejected(f"entry {name!r} has a backslash in its name (a Windows path trick)", name)
    if name.startswith("/"):
        raise ArchiveRejected(f"entry {name!r} has an absolute path", name)
    if _DRIVE.match(name):
        raise ArchiveRejected(f"entry {name!r} starts with a drive letter", name)
    raw = name.split("/")
    if ".." in raw:
        raise ArchiveRejected(f"entry {name!r} points outside the archive folder ('..')", name)
    parts = tuple(p for p in raw if p not in ("", "."))
    if not parts:
        raise ArchiveRejected(f"entry {name!r} has no usable name", name)
    if len(parts) > limits.max_depth:
        raise ArchiveRejected(
            f"entry {name!r} is nested {len(parts)} folders deep; the limit is {limits.max_depth}", name
        )
    for p in parts:
        if len(p.encode("utf-8", "surrogatepass")) > limits.max_name_bytes:
            raise ArchiveRejected(f"entry {name!r} has a name part longer than {limits.max_name_bytes} bytes", name)
    return parts


def _entry_type(info: zipfile.ZipInfo) -> str:
    """'dir', 'file', or the name of a forbidden type, from the Unix mode bits in external_attr."""
    fmt = stat.S_IFMT(info.external_attr >> 16)
    if fmt == stat.S_IFLNK:
        return "symbolic link"
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        return "device file"
    if fmt == stat.S_IFIFO:
        return "FIFO"
    if fmt == stat.S_IFSOCK:
        return "socket"
    if fmt == stat.S_IFDIR or info.filename.endswith("/"):
        return "dir"
    return "file"  # S_IFREG, or no Unix mode (archives made on Windows)


def _plan(zf: zipfile.ZipFile, limits: ArchiveLimits) -> _Plan:
    """Validate every central-directory record; return what to write. Never trusts only one size field."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ArchiveRejected(f"the archive lists {len(infos):,} entries; at most {limits.max_entries:,} are accepted")
    files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    dirs: list[str] = []
    skipped: list[str] = []
    seen: dict[tuple[str, ...], str] = {}
    total = 0
    for info in infos:
        name = info.filename
        parts = _safe_parts(name, limits)
        kind = _entry_type(info)
        if kind not in ("dir", "file"):
            raise ArchiveRejected(f"entry {name!r} is a {kind}; only folders and regular files are accepted", name)
        if info.flag_bits & 0x1:
            raise ArchiveRejected(f"entry {name!r} is encrypted (password-protected); upload an unencrypted zip", name)
        if parts in seen and not (kind == "dir" and seen[parts] == "dir"):
            raise ArchiveRejected(f"entry {name!r} appears twice in the archive", name)
        seen[parts] = kind
        if is_junk(parts):
            skipped.append(name)
            continue
        if kind == "dir":
            dirs.append("/".join(parts))
            continue
        if info.compress_type not in SUPPORTED_COMPRESSION:
            allowed = ", ".join(SUPPORTED_COMPRESSION.values())
            raise ArchiveRejected(
                f"entry {name!r} uses compression method {info.compress_type}; supported: {allowed}", name
            )
        usize, csize = info.file_size, info.compress_size
        if usize > limits.ratio_floor_bytes and usize > limits.max_ratio * max(1, csize):
            raise ArchiveRejected(
                f"entry {name!r} expands {usize / max(1, csize):,.0f}x ({format_bytes(csize)} to "
                f"{format_bytes(usize)}); the limit is {limits.max_ratio:,.0f}x, so this looks like a zip bomb",
                name,
            )
        if usize > limits.max_file_bytes:
            raise ArchiveRejected(
                f"entry {name!r} is {format_bytes(usize)} uncompressed; "
                f"at most {format_bytes(limits.max_file_bytes)} per file",
                name,
            )
        total += usize
        if total > limits.max_total_bytes:
            raise ArchiveRejected(
                f"the archive expands to more than {format_bytes(limits.max_total_bytes)} "
                f"(limit reached at entry {name!r})",
                name,
            )
        files.append((info, parts))
    if len(files) > limits.max_files:
        raise ArchiveRejected(
            f"the archive holds {len(files):,} files; at most {limits.max_files:,} are accepted "
            "(split it into smaller archives or use fewer images)"
        )
    _check_overlaps(zf, infos)
    return _Plan(files=tuple(files), dirs=tuple(dirs), skipped=tuple(skipped))


def _check_overlaps(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse entries whose local header + data run into the next entry (overlapping-files zip bomb)."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    end_of_data = getattr(zf, "start_dir", None)
    for a, b in zip(ordered, ordered[1:] + [None]):
        limit = b.header_offset if b is not None else end_of_data
        if limit is None:
            continue
        if a.header_offset + _LOCAL_HEADER_MIN + a.compress_size > limit:
            raise ArchiveRejected(
                f"entry {a.filename!r} overlaps the data of another entry (a zip-bomb construction)", a.filename
            )


# ---------------------------------------------------------------------------------------------------
# streaming


def _write(zf: zipfile.ZipFile, plan: _Plan, root: Path, limits: ArchiveLimits) -> int:
    """Create the planned folders and stream the planned files under ``root``; return bytes written."""
    root_resolved = root.resolve()
    for d in plan.dirs:
        target = _inside(root, root_resolved, tuple(d.split("/")), d)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ArchiveRejected(f"folder entry {d!r} could not be created ({e.strerror or e})", d) from e
    total = 0
    for info, parts in plan.files:
        name = info.filename
        target = _inside(root, root_resolved, parts, name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = target.open("xb")  # exclusive: never follows or replaces an existing path
        except OSError as e:
            raise ArchiveRejected(f"entry {name!r} could not be written ({e.strerror or e})", name) from e
        written = 0
        try:
            with out, zf.open(info) as src:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    written += len(chunk)
                    total += len(chunk)
                    if written > info.file_size:
                        raise ArchiveRejected(f"entry {name!r} holds more data than its header says", name)
                    if written > limits.max_file_bytes:
                        raise ArchiveRejected(
                            f"entry {name!r} is larger than {format_bytes(limits.max_file_bytes)} uncompressed", name
                        )
                    if total > limits.max_total_bytes:
                        raise ArchiveRejected(
                            f"the archive expands to more than {format_bytes(limits.max_total_bytes)}", name
                        )
                    out.write(chunk)
        except ArchiveRejected:
            raise
        except (zipfile.BadZipFile, EOFError, ValueError, RuntimeError, NotImplementedError, OSError) as e:
            # zlib/bz2/lzma errors, CRC mismatch, a local header that contradicts the central directory
            raise ArchiveRejected(f"entry {name!r} is corrupt ({_short(e)})", name) from e
        except Exception as e:  # lzma.LZMAError and other decompressor errors  # noqa: BLE001
            raise ArchiveRejected(f"entry {name!r} could not be decompressed ({_short(e)})", name) from e
        if written != info.file_size:
            raise ArchiveRejected(f"entry {name!r} holds less data than its header says", name)
    return total


def _inside(root: Path, root_resolved: Path, parts: tuple[str, ...], name: str) -> Path:
    """``root / parts``, double-checked to resolve inside ``root`` (names were validated already)."""
    target = root.joinpath(*parts)
    try:
        target.resolve().relative_to(root_resolved)
    except ValueError:
        raise ArchiveRejected(f"entry {name!r} would be written outside the archive folder", name) from None
    if PurePosixPath(*parts).is_absolute():
        raise ArchiveRejected(f"entry {name!r} has an absolute path", name)
    return target


def _short(e: BaseException) -> str:
    s = str(e) or type(e).__name__
    return s if len(s) <= 160 else s[:157] + "..."


# ---------------------------------------------------------------------------------------------------
# the tar door (same rules; the code lives in tar_door.py, which reads this module's helpers)


def extract_tar(
    tar_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str], limits: ArchiveLimits | None = None
) -> ExtractResult:
    """Extract a tar (plain or gzip/bzip2/xz-compressed) into the new folder ``dest_dir`` by the rules of
    :func:`extract_zip`: folders and regular files only, no links or devices, no absolute/``..``/odd names, caps on
    members and bytes, a hidden temp folder renamed into place when complete; :class:`ArchiveRejected` names the
    offending member. ``limits`` defaults to :data:`resnet_lab.data.tar_door.DOWNLOAD_LIMITS` (sized for the
    datasets the lab downloads). See :mod:`resnet_lab.data.tar_door`."""
    from . import tar_door

    return tar_door.extract_tar(tar_path, dest_dir, tar_door.DOWNLOAD_LIMITS if limits is None else limits)
