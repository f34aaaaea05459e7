"""Find, download and verify data files: the generic part that every loader in gn.datasets reuses.

A loader looks for its files, in order:

1. a path the caller passes (`load_data(path=...)`);
2. the directory named by the `GRAPHNET_DATA` environment variable;
3. the cache directory, `cache_dir()`: `$GRAPHNET_CACHE` if set, else
   `$XDG_CACHE_HOME/graphnet` if that is set, else `~/.cache/graphnet`;

and otherwise downloads them into the cache. A download tries each mirror in
turn, streams into a temporary file in the cache directory while hashing it,
checks the SHA-256, and only then renames the file into place (`os.replace`),
so an interrupted or tampered download never leaves a file a later load would
trust. Only the standard library (urllib) touches the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from graphnet.data.dataset import DataError
from graphnet.errors import GraphnetError

TIMEOUT = 30.0   # seconds without data before a mirror counts as failed
CHUNK = 1 << 16  # bytes read, hashed and written at a time


class DownloadError(GraphnetError, OSError):
    """No mirror delivered the file: offline, refused, HTTP errors, cut-off transfers."""


class ChecksumError(DownloadError):
    """A download whose bytes do not have the expected SHA-256; it was discarded."""


class DataNotFoundError(GraphnetError, FileNotFoundError):
    """The files are in none of the places searched and could not be downloaded."""


class CorruptFileError(DataError):
    """A data file that is truncated or malformed (bad archive, wrong keys, shapes, dtypes)."""


def cache_dir() -> Path:
    """Where downloads go: $GRAPHNET_CACHE, else $XDG_CACHE_HOME/graphnet,
    else ~/.cache/graphnet."""
    if os.environ.get("GRAPHNET_CACHE"):
        return Path(os.environ["GRAPHNET_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "graphnet"


def search_dirs() -> list[tuple[Path | None, str]]:
    """The directories a loader searches after an explicit path, with where each comes from.

    `None` stands for GRAPHNET_DATA when it is not set, so error messages can
    still say that it was a place to look.
    """
    data = os.environ.get("GRAPHNET_DATA")
    return [(Path(data).expanduser() if data else None, "GRAPHNET_DATA"),
            (cache_dir(), "cache")]


def sha256_file(path) -> str:
    """The SHA-256 of a file as lowercase hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(urls: Sequence[str], dest, sha256: str | None = None, *,
             timeout: float = TIMEOUT, progress: bool = True) -> Path:
    """Download the first mirror in `urls` that works to `dest`, verified and written atomically.

    Mirrors are tried in order; one that fails (connection, HTTP status,
    cut-off transfer or wrong SHA-256) is reported and the next is tried.
    Raises ChecksumError if any mirror served wrong bytes and none served
    right ones, DownloadError if none could be reached. Nothing is left at
    `dest`, nor any temporary file, unless the download succeeded.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the directory {dest.parent} for {dest.name} ({err}); "
                            "set GRAPHNET_CACHE to a writable directory") from err
    failures = []
    for url in urls:
        try:
            _fetch(url, dest, sha256, timeout, progress)
            return dest
        except DownloadError as err:  # our own, already naming the url
            failures.append(err)
        except (OSError, http.client.HTTPException, ValueError) as err:
            failures.append(DownloadError(f"{url}: {_reason(err)}"))
    if not failures:
        raise DownloadError(f"no mirror to download {dest.name} from")
    kind = ChecksumError if any(isinstance(f, ChecksumError) for f in failures) else DownloadError
    lines = "\n".join(f"  {f}" for f in failures)
    raise kind(f"could not download {dest.name} from any mirror; nothing was written to "
               f"{dest.parent}:\n{lines}")


def download_to_cache(urls: Sequence[str], filename: str, sha256: str | None,
                      not_found) -> Path:
    """Download `filename` into the cache (see `download`) when no folder had it.

    A ChecksumError (a mirror served wrong bytes) passes through; any other
    failure becomes DataNotFoundError(not_found(err)), whose message should
    say where the loader looked and how to work offline.
    """
    try:
        return download(urls, cache_dir() / filename, sha256)
    except ChecksumError:
        raise
    except DownloadError as err:
        raise DataNotFoundError(not_found(err)) from err


def _fetch(url: str, dest: Path, sha256: str | None, timeout: float, progress: bool):
    """One mirror: stream into a temporary file beside `dest`, check it, rename it into place."""
    request = urllib.request.Request(url, headers={"User-Agent": "graphnet (Python urllib)"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        # The temporary file lives in the destination directory, so os.replace
        # is a rename on one file system: readers see the old state or the whole file.
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            digest, size = hashlib.sha256(), 0
            host = urllib.parse.urlsplit(url).netloc
            with os.fdopen(fd, "wb") as out, tqdm(
                    total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=f"{dest.name} from {host}", disable=not progress) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if total is not None and size != total:
                raise DownloadError(f"{url}: the transfer stopped after {size} of {total} bytes")
            found = digest.hexdigest()
            if sha256 is not None and found != sha256.lower():
                raise ChecksumError(f"{url}: SHA-256 mismatch, expected {sha256.lower()}, "
                                    f"found {found} ({size} bytes); the download was discarded")
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _reason(err: BaseException) -> str:
    """A short human reason for a failed request."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"{err.reason}"
    return str(err) or type(err).__name__
