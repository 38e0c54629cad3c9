"""Verified downloads: a catalogue entry's files fetched, checked against the publisher's checksum, then unpacked.

:func:`fetch` is the only code in the lab that downloads. For one :mod:`catalogue <resnet_lab.data.catalogue>`
entry it:

1. returns at once when the entry is already :func:`present <resnet_lab.data.catalogue.present>`;
2. uses a file already in place (say, an archive a teacher copied there) when its checksum matches;
3. in offline mode (``$RESNET_LAB_OFFLINE`` set to 1/true/yes/on) raises :class:`DownloadError` with
   :func:`describe_missing <resnet_lab.data.catalogue.describe_missing>`'s text — before any socket is opened;
4. checks the free disk space first: the bytes still to download plus the unpacked size (about 1.1 × an
   archive), on the filesystem of the destination's nearest existing folder;
5. downloads each file to ``<folder>/<name>.part`` trying a mirror first (the ``mirror`` argument, else
   ``$RESNET_LAB_MIRROR``: a base URL serving the same file names), then the entry's URLs in order. A ``.part``
   left by an earlier try is resumed with ``Range: bytes=N-`` (206 appends, 200 starts over). Connection errors,
   timeouts and 5xx answers are retried with exponential backoff (``backoff_s``, 2×, 4× …) up to ``retries``
   more times per URL — a try that got further than any before it resets that count — then the next URL is
   tried. Only http(s) is spoken; urllib's ProxyHandler honours ``http_proxy``/``https_proxy``/``no_proxy``;
6. verifies the whole file's checksum BEFORE anything opens it. A mismatch deletes the ``.part`` and tries the
   next URL (a resumed file that fails is first fetched once more from zero, in case the old part was bad);
   only when every URL failed is :class:`DownloadError` raised, saying what was tried and what to do;
7. unpacks: ``tar.gz`` through the safe tar door (:func:`resnet_lab.data.archives.extract_tar`), into a hidden
   folder whose top-level entries are then renamed into place; ``gz`` by streaming gunzip into
   :func:`resnet_lab.paths.atomic_path`; a plain file's ``.part`` is flushed and renamed to its name. The
   verified archives are kept, as torchvision keeps them (and ``torchvision_sets`` accepts them).

``progress(done, total)`` (bytes of the files this call downloads; a resumed ``.part`` counts as done, and
``total`` turns exact as each file completes, since some catalogue sizes are approximate) is called at least every 0.25 s or 1 MiB while bytes
arrive; ``should_stop()`` is asked between chunks (and during backoff waits): when it says yes, the ``.part`` is
kept for a later resume and :class:`DownloadStopped` is raised. Two fetches of one entry at once (two jobs) take
turns through a lock file in the destination folder, so the second finds the files present.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

from ..fmt import format_bytes
from ..paths import atomic_path
from .archives import ArchiveRejected, extract_tar
from .catalogue import CatalogueEntry, RemoteFile, describe_missing, entry, parse_checksum, present

OFFLINE_ENV = "RESNET_LAB_OFFLINE"  # 1/true/yes/on: never download, say what to place where
MIRROR_ENV = "RESNET_LAB_MIRROR"  # a base URL serving the catalogue's file names, tried before the official URLs
CHUNK = 256 * 1024  # bytes asked of the socket at a time (read1 returns what has arrived, up to this)
PROGRESS_EVERY_S = 0.25  # progress is reported at least this often while bytes arrive, seconds
PROGRESS_EVERY_BYTES = 1024 * 1024  # ... or after this many bytes, whichever comes first
UNPACKED_RATIO = 1.1  # unpacked size / archive size assumed by the disk check (tar.gz and gz)
USER_AGENT = "resnet-lab (verified downloads; +https://pytorch.org/vision)"
_TRUE = frozenset({"1", "true", "yes", "on"})


class DownloadError(ValueError):
    """A download that could not be done; the message says what, from where, and what the person can do."""


class DownloadStopped(Exception):
    """``should_stop()`` said stop: the ``.part`` file is kept and the next fetch resumes it."""


class _UrlFailed(Exception):
    """One URL gave up (after its retries); the reason is the message. Never leaves this module."""


def offline() -> bool:
    """Whether the lab may not download (``$RESNET_LAB_OFFLINE`` is 1, true, yes or on); read at call time."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def fetch(name: str, *, data_root: Path | None = None, progress: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None, mirror: str | None = None,
          timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 1.0) -> Path:
    """Download, verify and unpack the catalogue entry ``name``; return its folder (``entry(name).folder()``).

    ``timeout_s`` bounds each connect and each read (seconds); ``retries`` is how many more tries one URL gets
    after a connection error, timeout or 5xx; ``backoff_s`` the first wait between them (doubling). Raises
    :class:`DownloadError` (offline, no disk space, every URL failed, an archive refused) or
    :class:`DownloadStopped`. See the module docstring for the rules.
    """
    e = entry(name)
    folder = e.folder(data_root)
    if present(name, data_root):
        return folder
    if offline() and any(not _unpacked(f, folder) and not _verified_in_place(f, folder) for f in e.files):
        raise DownloadError(describe_missing(name, data_root))  # before any folder, lock or socket is made
    stop = should_stop or (lambda: False)
    with _turn(folder, e.name, stop):
        if present(name, data_root):  # another fetch finished it while we waited
            return folder
        todo = [f for f in e.files if not _unpacked(f, folder)]
        download = [f for f in todo if not _verified_in_place(f, folder)]
        if download and offline():  # went offline while waiting for our turn
            raise DownloadError(describe_missing(name, data_root))
        _check_disk(e, folder, todo, download)
        base = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "").strip()
        if base and urllib.parse.urlsplit(base).scheme not in ("http", "https"):
            raise DownloadError(f"the mirror {base!r} (from the mirror argument or ${MIRROR_ENV}) is not an http(s) "
                                "URL; give a base URL such as https://mirror.example.org/resnet-lab")
        meter = _Meter(progress, sum(f.bytes for f in download))
        opener = _opener()
        for f in todo:
            if f in download:
                urls = ((base.rstrip("/") + "/" + f.name,) if base else ()) + f.urls
                _download(e, f, folder, urls, opener, meter, stop, timeout_s, max(0, retries), backoff_s)
            _unpack(e, f, folder)
        meter.finish()
    if not present(name, data_root):
        missing = [p for p in e.yields if not (folder / p).exists()]
        raise DownloadError(f"{e.title} was downloaded and verified, but {', '.join(missing)} did not appear in "
                            f"{folder}; delete its files there and fetch it again.")
    return folder


# ---------------------------------------------------------------------------------------------------
# what is there already


def _unpacked(f: RemoteFile, folder: Path) -> bool:
    """Whether a file's result is in place without downloading it: the plain file, or a .gz's gunzipped twin.
    (A tar's result is judged by the entry's ``present``: nothing per file.)"""
    if f.unpack is None:
        return (folder / f.name).is_file()
    if f.unpack == "gz":
        return (folder / f.name[: -len(".gz")]).is_file()
    return False


def _verified_in_place(f: RemoteFile, folder: Path) -> bool:
    """Whether ``<folder>/<name>`` is already there and passes its checksum (then nothing is downloaded)."""
    path = folder / f.name
    return path.is_file() and _checksum_ok(path, f.checksum)


def _checksum_ok(path: Path, checksum: str) -> bool:
    """The whole file hashed in 1 MiB reads and compared with ``checksum`` ('md5:', 'sha256:', 'sha256-prefix:')."""
    algo, want = parse_checksum(checksum)
    h = hashlib.md5(usedforsecurity=False) if algo == "md5" else hashlib.sha256()
    with path.open("rb") as fp:
        while chunk := fp.read(1024 * 1024):
            h.update(chunk)
    got = h.hexdigest()
    return got.startswith(want) if algo == "sha256-prefix" else got == want


def _check_disk(e: CatalogueEntry, folder: Path, todo: list[RemoteFile], download: list[RemoteFile]) -> None:
    """DownloadError unless the destination's filesystem has room for what is left to download plus the unpacked
    files (``UNPACKED_RATIO`` × each archive)."""
    fetch_bytes = sum(max(0, f.bytes - _size(folder / (f.name + ".part"))) for f in download)
    unpack_bytes = sum(int(UNPACKED_RATIO * f.bytes) for f in todo if f.unpack)
    need = fetch_bytes + unpack_bytes
    where = folder
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        raise DownloadError(
            f"{e.title} needs {format_bytes(need)} free in {folder} ({format_bytes(fetch_bytes)} to download, "
            f"{format_bytes(unpack_bytes)} to unpack) but only {format_bytes(free)} is free there. Free some "
            "space, or point $RESNET_LAB_HOME (or the data root) at a larger disk, and try again.")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def _turn(folder: Path, name: str, stop: Callable[[], bool]) -> Iterator[None]:
    """One fetch of an entry at a time on this machine: an exclusive lock on ``<folder>/.<name>.fetch-lock``
    (POSIX ``flock``; elsewhere no lock). Waiting polls ``stop`` every 0.2 s."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; two simultaneous fetches then rely on the checksum alone
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.fetch-lock", "a+b") as fp:
        while True:
            try:
                fcntl.flock(fp.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop():
                    raise DownloadStopped(f"stopped while another fetch of {name} was running") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fp.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------
# downloading


class _Meter:
    """Bytes of the whole entry for the progress callback, reported at most every PROGRESS_EVERY_S seconds
    unless PROGRESS_EVERY_BYTES arrived since the last report."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback, self.total = callback, total
        self.finished = 0  # bytes of the files done
        self.expected = 0  # the catalogue size of the file in flight
        self.last_t, self.last_done = 0.0, -1

    def start(self, f: RemoteFile) -> None:
        self.expected = f.bytes

    def update(self, current: int, force: bool = False) -> None:
        """``current`` bytes of the file in flight are on disk."""
        if self.callback is None:
            return
        done = self.finished + current
        now = time.monotonic()
        if force or now - self.last_t >= PROGRESS_EVERY_S or done - self.last_done >= PROGRESS_EVERY_BYTES:
            self.last_t, self.last_done = now, done
            self.callback(done, max(self.total, done))

    def done(self, size: int) -> None:
        """The file in flight is complete at ``size`` bytes (its catalogue size may have been approximate)."""
        self.total += size - self.expected
        self.finished += size
        self.expected = 0
        self.update(0, force=True)

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self.finished, max(self.total, self.finished))


def _download(e: CatalogueEntry, f: RemoteFile, folder: Path, urls: tuple[str, ...], opener, meter: _Meter,
              stop: Callable[[], bool], timeout_s: float, retries: int, backoff_s: float) -> None:
    """Fetch ``f`` into ``<folder>/<name>`` from the first URL that gives the verified file."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (f.name + ".part")
    meter.start(f)
    tried: list[str] = []
    for url in urls:
        for _ in range(2):  # a resumed file that fails its checksum gets one more try from zero
            resumed = part.exists() and part.stat().st_size > 0
            try:
                _get(url, part, opener, meter, stop, timeout_s, retries, backoff_s)
            except _UrlFailed as why:
                tried.append(f"{url}: {why}")
                break
            if _checksum_ok(part, f.checksum):
                size = part.stat().st_size
                with part.open("rb") as fp:
                    os.fsync(fp.fileno())  # the bytes are on the disk before the name says the file is complete
                os.replace(part, folder / f.name)
                meter.done(size)
                return
            part.unlink()
            meter.update(0, force=True)
            if not resumed:
                tried.append(f"{url}: the file's {f.algorithm} does not match the publisher's checksum "
                             "(a wrong or damaged file; deleted)")
                break
    raise DownloadError(
        f"Could not download {f.name} ({e.title}, {format_bytes(f.bytes)}):\n  " + "\n  ".join(tried)
        + f"\nCheck the network (and http_proxy/https_proxy if this machine needs a proxy), try again later, or set "
          f"{MIRROR_ENV} to a mirror that serves {f.name}. Or place the file by hand: download it from "
          f"{f.urls[0]} and put it in {folder}{os.sep} (it is verified before use).")


def _opener() -> urllib.request.OpenerDirector:
    """urllib's opener for http and https only (no file:, ftp: or data: URLs, even through a redirect); its
    ProxyHandler reads ``http_proxy``/``https_proxy`` and honours ``no_proxy`` from the environment."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _get(url: str, part: Path, opener, meter: _Meter, stop: Callable[[], bool], timeout_s: float,
         retries: int, backoff_s: float) -> None:
    """Bring ``part`` to the end of ``url``'s file, resuming what is there; _UrlFailed when this URL gives up."""
    failures = 0
    furthest = _size(part)
    while True:
        have = _size(part)
        try:
            _one_request(url, part, have, opener, meter, stop, timeout_s)
            return
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:  # the part is already whole (or longer than the file): let the checksum say
                return
            if err.code < 500 and err.code != 429:
                raise _UrlFailed(f"HTTP {err.code} {err.reason}") from None
            why = f"HTTP {err.code} {err.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:  # timeouts are OSError too
            reason = getattr(err, "reason", None) or err
            why = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
        now = _size(part)
        if now > furthest:  # this try got further than any before: the connection is flaky, not dead
            furthest, failures = now, 0
        failures += 1
        if failures > retries:
            raise _UrlFailed(f"{why} (after {failures} tries)")
        _sleep(backoff_s * 2 ** (failures - 1), stop)


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stop():
            raise DownloadStopped("stopped while waiting to retry; the partial file is kept")
        time.sleep(min(left, 0.1))


def _one_request(url: str, part: Path, have: int, opener, meter: _Meter, stop: Callable[[], bool],
                 timeout_s: float) -> None:
    """One GET (with ``Range`` when ``have`` > 0) streamed onto ``part``; raises on any short or failed answer."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    with opener.open(req, timeout=timeout_s) as resp:
        status = getattr(resp, "status", None) or resp.getcode()
        if status == 206 and have and _range_start(resp.headers.get("Content-Range")) == have:
            mode, start = "ab", have
        elif status == 200:
            mode, start = "wb", 0  # the server sent the whole file: start over
        else:
            raise http.client.HTTPException(f"unexpected answer {status} "
                                            f"(Content-Range {resp.headers.get('Content-Range')!r})")
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        got = 0
        with part.open(mode) as out:
            meter.update(start, force=True)
            while True:
                if stop():
                    out.flush()
                    raise DownloadStopped(f"stopped at {format_bytes(start + got)}; the partial file "
                                          f"{part.name} is kept and the next fetch resumes it")
                chunk = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                got += len(chunk)
                meter.update(start + got)
        if expected is not None and got < expected:
            raise http.client.IncompleteRead(b"", expected - got)


def _range_start(content_range: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes N-M/T`` (None when absent or malformed)."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    first = content_range[len("bytes "):].split("-", 1)[0]
    return int(first) if first.isdigit() else None


# ---------------------------------------------------------------------------------------------------
# unpacking (only verified files reach here)


def _unpack(e: CatalogueEntry, f: RemoteFile, folder: Path) -> None:
    """Turn the verified ``<folder>/<name>`` into what torchvision reads (see the module docstring)."""
    src = folder / f.name
    if f.unpack == "gz":
        with atomic_path(folder / f.name[: -len(".gz")]) as tmp, gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1024 * 1024)
    elif f.unpack == "tar.gz":
        stage = folder / f".{f.name}.unpacked"
        shutil.rmtree(stage, ignore_errors=True)  # a leftover of an interrupted earlier unpack (our hidden name)
        try:
            extract_tar(src, stage)
        except ArchiveRejected as err:
            raise DownloadError(f"{f.name} ({e.title}) passed its checksum but the safe tar door refused it: "
                                f"{err}. Nothing was extracted; report this to the lab's maintainers.") from err
        try:
            for child in sorted(stage.iterdir()):
                _move_into_place(child, folder / child.name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _move_into_place(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; an incomplete ``dst`` from before (the entry was not present) is replaced by the
    verified one: moved aside first, then removed, so ``dst`` is never half old, half new."""
    if not (dst.exists() or dst.is_symlink()):
        os.rename(src, dst)
        return
    aside = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    os.rename(dst, aside)
    os.rename(src, dst)
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    else:
        aside.unlink()
