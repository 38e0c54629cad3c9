"""Where the lab keeps its files (``$RESNET_LAB_HOME``, default ``~/.resnet_lab``), and the one way it writes a
file atomically (:func:`write_atomic`, :func:`write_files_atomic`, :func:`atomic_path`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping


def lab_home() -> Path:
    """Runs, checkpoints, uploads and data live here; read at call time (tests point it at a temp dir)."""
    return Path(os.environ.get("RESNET_LAB_HOME") or "~/.resnet_lab").expanduser()


def data_root() -> Path:
    """Where dataset files live by default: ``$RESNET_LAB_HOME/data``."""
    return lab_home() / "data"


def run_dir(run_id: int) -> Path:
    """A run's checkpoints and results: ``$RESNET_LAB_HOME/runs/<id>``."""
    return lab_home() / "runs" / str(run_id)


def job_dir(job_id: int) -> Path:
    """A job's worker log: ``$RESNET_LAB_HOME/jobs/<id>``."""
    return lab_home() / "jobs" / str(job_id)


# --- the one atomic write ----------------------------------------------------------------------------------
# Every file the lab writes for others to read (checkpoints, results, exports, dataset meta and caches) goes
# through here: the content is written in full to a temporary file in the same folder, flushed to the disk,
# and only then renamed over the target (``os.replace``, atomic on POSIX and Windows). A reader sees the old
# file or the new one, never half of one; a write that fails removes its temporary file and leaves the old
# content as it was.


def write_synced(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` as the whole content of ``path`` and flush it to the disk (a full disk raises here)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _temp_beside(target: Path) -> Path:
    """A new empty file with a hidden temporary name (``.<name>.<random>.tmp``) in ``target``'s folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames) to the disk. A filesystem that cannot flush a folder (EINVAL, or
    no folder handles at all) still has every file complete, so that is no reason to call the write failed."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_files_atomic(folder: str | os.PathLike[str], files: Mapping[str, bytes | str],
                       write: Callable[[Path, bytes], None] | None = None) -> None:
    """Write ``files`` ({name: content}, str as UTF-8) into ``folder``, all or nothing: each in full to a
    temporary name first (with ``write``, default :func:`write_synced`), then every one renamed into place in
    the mapping's order (put the file that names the others last). A failure before the renames removes the
    temporary files and leaves the folder as it was, then raises."""
    folder = Path(folder)
    write = write or write_synced
    staged: list[tuple[Path, Path]] = []
    try:
        for name, data in files.items():
            final = folder / name
            staged.append((_temp_beside(final), final))
            write(staged[-1][0], data.encode() if isinstance(data, str) else data)
        for tmp, final in staged:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    _sync_folder(folder)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Replace ``path``'s content with ``data`` (str as UTF-8) atomically: readers see the old file or the new
    one, never a half-written one. Returns ``path``."""
    path = Path(path)
    write_files_atomic(path.parent, {path.name: data})
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """For writers that want a file name (``torch.save``, ``image.save``, a streamed copy): yields a temporary
    path in ``path``'s folder; when the block ends without an exception, that file is flushed to the disk and
    renamed over ``path``. An exception removes it and leaves ``path`` as it was."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
