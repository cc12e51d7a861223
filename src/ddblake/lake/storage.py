"""Lake storage picked by URI: one code path for a local directory and ``s3://``.

Everything goes through :mod:`pyarrow.fs`, the same file layer pyiceberg uses, so a ``file://``
lake in tests and an ``s3://`` lake in AWS run the same code. The one difference that matters is
atomicity: an S3 PUT is atomic on its own, a local file is written beside its target and renamed.

Bytes go in and out unchanged: pyarrow would otherwise guess a compression from the file name and
silently (de)compress ``*.gz`` files, so every stream is opened with ``compression=None``.

A local lake's URI (:func:`local_uri`) is ``file://`` and its path as it is, not percent-encoded:
pyiceberg takes the path of a ``file://`` location without decoding it, so an encoded space put the
Iceberg warehouse in a sibling folder literally named ``my%20lake``.

A local lake's folder is made by the first write into it, not when it is opened: a command that
fails before it writes (an endpoint nothing answers on) must leave no empty folder that ``status``
would take for a lake with no tables. Messages name a local lake's files by path (:meth:`Storage.shown`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

import pyarrow.fs as pafs

from ddblake.errors import ConfigError, DdblakeError, TerminalError, TransientError
from ddblake.settings import aws_region
from ddblake.signals import interrupts_held

log = logging.getLogger(__name__)


#: What no retry fixes: no permission, a full disk or quota, a read-only file system, a file that is
#: gone (a table's data or metadata file: damage, not a hiccup); on S3, access denied, a missing
#: bucket or key, bad credentials, a bucket in another region or a skewed clock. pyarrow names the
#: AWS SDK's error enum in its message ("AWS Error ACCESS_DENIED during ... operation").
_TERMINAL_ERRNOS: Final = frozenset(
    {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENOENT}
)
_TERMINAL_S3_ERRORS: Final = (
    "ACCESS_DENIED",
    "NO_SUCH_BUCKET",
    "NO_SUCH_KEY",
    "INVALID_ACCESS_KEY_ID",
    "INVALID_CLIENT_TOKEN_ID",
    "SIGNATURE_DOES_NOT_MATCH",
    "MISSING_AUTHENTICATION_TOKEN",
    "REQUEST_TIME_TOO_SKEWED",
    "HTTP status 301",
    "HTTP status 403",
)


_TEMP_NAME: Final = re.compile(r"\.tmp-[0-9a-f]{32}")
"""The name :meth:`Storage.write_atomic` gives a local file while writing it (:func:`_temp_name`).
Listings skip exactly these names, not every name starting ``.tmp-``: a DynamoDB table may be named
``.tmp-orders``, and its raw files (``.tmp-orders-<stamp>-<id>.gz``) must still be listed and applied."""


REWRITTEN_READS: Final = 5
"""Reads of a file replaced in place before giving up (:meth:`Storage.read_rewritten`)."""


def _temp_name() -> str:
    """A fresh name for :meth:`Storage.write_atomic`'s temp file; :data:`_TEMP_NAME` matches it."""
    return f".tmp-{uuid.uuid4().hex}"


def storage_error(verb: str, uri: str, e: OSError) -> DdblakeError:
    """A lake I/O failure as a ddblake error: terminal (saying what to fix) when no retry can help,
    transient otherwise, so continuous capture and apply wait and try again only when that can work."""
    text = str(e)
    if e.errno in _TERMINAL_ERRNOS or any(code in text for code in _TERMINAL_S3_ERRORS):
        return TerminalError(
            f"cannot {verb} {uri}: {text}; check that this process may {verb} the lake there (permissions, "
            "bucket policy and region, credentials, clock, free space) and run again"
        )
    return TransientError(f"cannot {verb} {uri}: {text}")


def s3_endpoint_from_env() -> str | None:
    """The S3 endpoint override from the standard AWS variables, if any (moto, LocalStack, MinIO)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def local_uri(path: str) -> str:
    """The URI of a local absolute path, as pyiceberg reads it: ``file://`` and the path unencoded.

    A path that such a URI would not carry back (``#``, ``?``, tabs and newlines: the URI
    parser splits or drops them) is given as the plain path, which pyiceberg takes as local too.
    """
    uri = "file://" + path
    for child in ("", "/x"):  # the root (a --lake argument) and what pyiceberg parses: its children
        parsed = urlparse(uri + child)
        if parsed.path != path + child or parsed.params or parsed.query or parsed.fragment:
            return path
    return uri


@functools.cache
def warn_encoded(table: str, location: str) -> None:
    """Warn once per process that a table of a local lake lies where an older ddblake put it."""
    log.warning(
        "table %s: its Iceberg files are in %s, a folder beside the lake's: an older ddblake "
        "percent-encoded the lake's path. The lake works as it is; docs/lake.md (Catalogs) says "
        "how to move them",
        table,
        location.removeprefix("file://"),
    )


def local_lake_path(uri: str) -> Path | None:
    """The directory a local lake URI (``/path``, ``~/path``, ``file:///path``) names, not resolved;
    None for a remote one. A ``file://`` path is taken as it is, not percent-decoded (ddblake's own
    ``local_uri`` keeps such characters as they are).

    Raises:
        ConfigError: a ``file://`` URI with a host other than ``localhost`` (``file://mylake``).
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
        # file://mylake or file://./mylake: the URI's host would be dropped, and the lake land in
        # the current folder or at the filesystem root
        raise ConfigError(
            f"lake {uri!r}: {parsed.netloc!r} stands where a file:// URI's host goes, which a local "
            "lake cannot have; write file:///absolute/path (three slashes) or a plain path"
        )
    path = Path(parsed.path if parsed.scheme == "file" else uri)
    try:
        return path.expanduser()
    except RuntimeError as e:  # ~someone who is not a user here, or no home directory to expand ~ to
        raise ConfigError(
            f"lake {uri!r}: cannot expand {path.parts[0]!r} ({e}); give the directory's full path"
        ) from e


def deepest_existing(path: str) -> str:
    """The deepest ancestor-or-self of a local path that exists now."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p.as_posix()


def _blocked(lake: str, blocker: str) -> str:
    """What to say when ``blocker``, a file, is where the lake's folder (or a parent) should be."""
    return f"lake {lake!r}: {blocker} is a file, not a directory; pass a directory"


def _fsync_dirs(path: str, upto: str) -> None:
    """fsync ``path`` and its ancestors up to ``upto`` (the folders whose entries changed)."""
    p, stop = Path(path), Path(upto)
    while True:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            return  # platforms where directories cannot be opened (Windows): nothing to do
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        if p == stop or p == p.parent or stop not in p.parents:
            return
        p = p.parent


@dataclass(frozen=True)
class Storage:
    """A lake root: ``fs`` plus the root path inside it (no trailing slash).

    Paths given to the methods are relative to the root and use ``/``.
    """

    fs: pafs.FileSystem
    root: str
    uri_root: str
    is_local: bool

    @classmethod
    def from_uri(cls, uri: str, *, s3_endpoint_url: str | None = None) -> Storage:
        """Open a lake from ``/path``, ``file:///path`` or ``s3://bucket/prefix``; creates nothing.

        Raises:
            ConfigError: the scheme is not supported, or a file is where a local lake's folder
                (or one of its parents) should be.
        """
        parsed = urlparse(uri)
        local = local_lake_path(uri)
        if local is not None:
            # Nothing is created here: the root appears with the first write (:meth:`ensure_root`),
            # so a command that fails before it writes leaves no empty folder that a later
            # ``status`` would take for a lake. A file in the way is refused now, though.
            path = local.resolve()
            blocker = deepest_existing(path.as_posix())
            if not Path(blocker).is_dir():
                raise ConfigError(_blocked(uri, blocker))
            return cls(pafs.LocalFileSystem(), path.as_posix(), local_uri(path.as_posix()), True)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise ConfigError(f"lake URI {uri!r} names no bucket; use s3://bucket/prefix")
            endpoint = s3_endpoint_url or s3_endpoint_from_env()
            kwargs: dict[str, object] = {"region": aws_region() or "us-east-1"}
            if endpoint:
                ep = urlparse(endpoint)
                kwargs["endpoint_override"] = ep.netloc or endpoint
                kwargs["scheme"] = ep.scheme or "https"
            fs = pafs.S3FileSystem(**kwargs)
            root = (parsed.netloc + "/" + parsed.path.strip("/")).rstrip("/")
            return cls(fs, root, "s3://" + root, False)
        raise ConfigError(f"lake URI {uri!r}: scheme {parsed.scheme!r} is not supported; use a path or s3://")

    def _full(self, rel: str) -> str:
        return f"{self.root}/{rel.lstrip('/')}" if rel else self.root

    def uri(self, rel: str = "") -> str:
        """The URI of a path under the root (what pyiceberg and DuckDB are given)."""
        return f"{self.uri_root}/{rel.lstrip('/')}" if rel else self.uri_root

    def shown(self, rel: str = "") -> str:
        """A path under the root as people read it: a plain path for a local lake, the ``s3://`` URI
        otherwise. What a message tells the user to delete, or to pass as ``--lake``, must work
        as typed in a shell; a ``file://`` URI is neither a path ``rm`` takes nor one people know.
        Quote it (:func:`shlex.quote`) where it goes into a suggested command."""
        return self._full(rel) if self.is_local else self.uri(rel)

    def ensure_root(self) -> None:
        """Create a local lake's root folder and its parents, if not there; nothing for S3 (where a
        prefix needs no creating). Writers that do not go through :meth:`write_atomic` (the SQLite
        catalog, which cannot create its own folder) call it before their first write.

        Raises:
            ConfigError: a file is where the root or one of its parents should be.
            TerminalError: a failure no retry fixes (no permission, a read-only file system).
            TransientError: any other failure.
        """
        if not self.is_local:
            return
        try:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise ConfigError(_blocked(self.shown(), deepest_existing(self.root))) from e
        except OSError as e:
            raise storage_error("create", self.shown(), e) from e

    def names(self, uri: str) -> bool:
        """Whether ``uri`` names this lake's root: :meth:`uri`, or for a local lake the
        percent-encoded ``file://`` URI ddblake used before (:func:`local_uri`)."""
        return uri == self.uri_root or (self.is_local and uri == Path(self.root).as_uri())

    def holds(self, uri: str) -> bool:
        """Whether ``uri`` (a table's metadata file, say) lies under this lake's root, in any of the
        spellings :meth:`names` takes (a local lake's plain path too)."""
        roots = [self.uri_root, *([self.root, Path(self.root).as_uri()] if self.is_local else [])]
        return any(uri.startswith(root.rstrip("/") + "/") for root in roots)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Write a whole file so that readers see the old content or the new one, never a part."""
        full = self._full(rel)
        try:
            if self.is_local:
                parent = full.rsplit("/", 1)[0]
                existing = deepest_existing(parent)
                self.fs.create_dir(parent, recursive=True)
                tmp = f"{parent}/{_temp_name()}"
                try:
                    with self.fs.open_output_stream(tmp, compression=None) as out:
                        out.write(data)
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    self.fs.move(tmp, full)
                except BaseException:
                    # A full disk or an I/O error: the part written would stay (listings skip
                    # temp files, so nothing else would ever remove it) and keep the disk full.
                    with contextlib.suppress(OSError):
                        self.fs.delete_file(tmp)
                    raise
                # The rename (and any folder just created) is durable only once its directory is
                # synced; without this a power cut could keep a later write (a checkpoint) and lose
                # this one.
                _fsync_dirs(parent, existing)
            else:
                # An S3 object is replaced in place, and pyarrow's stream completes the upload when
                # it is closed, an exception or not: a KeyboardInterrupt (a second Ctrl-C) between
                # the open and the write would leave an empty object where a checkpoint was.
                # Signals wait for the write instead (the main thread's only: others get none).
                with interrupts_held(), self.fs.open_output_stream(full, compression=None) as out:
                    out.write(data)
        except OSError as e:
            raise storage_error("write", self.shown(rel), e) from e

    def read(self, rel: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        full = self._full(rel)
        try:
            with self.fs.open_input_stream(full, compression=None) as f:
                data: bytes = f.read()
                return data
        except FileNotFoundError:
            return None
        except OSError as e:
            if "not found" in str(e).lower() or "no such file" in str(e).lower():
                return None
            raise storage_error("read", self.shown(rel), e) from e

    def read_rewritten(self, rel: str) -> bytes | None:
        """:meth:`read` of a file that :meth:`write_atomic` replaces in place (a checkpoint, a load's
        state), never a part of one version.

        A local file is replaced by a rename, so one read sees one version. pyarrow reads an S3
        object with two requests (its size, then that many bytes), and a replacement landing in
        between gave the new version cut at the old size, which the reader called damaged (and
        told the user to delete). The object's size and time are read again after the bytes, and
        the read is repeated while they changed.

        Raises:
            TransientError: the file kept being replaced during every read.
        """
        if self.is_local:
            return self.read(rel)
        for _ in range(REWRITTEN_READS):
            before = self._info(rel)
            data = self.read(rel)
            after = self._info(rel)
            if data is None and after is None:
                return None
            if (
                data is not None
                and before is not None
                and after is not None
                and before.size == after.size == len(data)
                and before.mtime == after.mtime
            ):
                return data
        raise TransientError(
            f"cannot read {self.shown(rel)}: it was replaced during each of {REWRITTEN_READS} reads"
        )

    def _info(self, rel: str) -> pafs.FileInfo | None:
        try:
            info = self.fs.get_file_info(self._full(rel))
        except OSError as e:
            raise storage_error("read", self.shown(rel), e) from e
        return info if info.type == pafs.FileType.File else None

    def list_files(self, prefix: str) -> list[str]:
        """Every file under ``prefix`` (recursive), relative to the root, sorted; temp files skipped."""
        return [path for path, _ in self.list_with_times(prefix)]

    def list_with_times(self, prefix: str) -> list[tuple[str, float]]:
        """:meth:`list_files` with each file's modification time (seconds since the epoch)."""
        selector = pafs.FileSelector(self._full(prefix), recursive=True, allow_not_found=True)
        try:
            try:
                infos = self.fs.get_file_info(selector)
            except FileNotFoundError:
                # A local folder created (by a writer) while pyarrow lists it: its "not found" check
                # and its listing disagree. The folder is there now; listing again settles it.
                infos = self.fs.get_file_info(selector)
        except OSError as e:
            raise storage_error("list", self.shown(prefix), e) from e
        start = len(self.root) + 1
        return sorted(
            (i.path[start:], (i.mtime_ns or 0) / 1e9)
            for i in infos
            if i.type == pafs.FileType.File and not _TEMP_NAME.fullmatch(i.base_name)
        )

    def stale_temp_files(self, prefix: str, older_than_s: float) -> list[str]:
        """:meth:`write_atomic`'s temp files under ``prefix`` last written over ``older_than_s`` ago.

        A process killed between writing one and renaming it leaves it (SIGKILL, a power cut):
        listings skip it, so nothing else would ever remove it. Only a local lake has them.
        """
        if not self.is_local:
            return []
        root, found = Path(self._full(prefix)), []
        limit = time.time() - older_than_s
        for folder, _, names in os.walk(root):
            for name in names:
                if _TEMP_NAME.fullmatch(name):
                    path = Path(folder, name)
                    with contextlib.suppress(OSError):  # gone meanwhile: renamed or deleted
                        if path.stat().st_mtime < limit:
                            found.append(path.relative_to(self.root).as_posix())
        return sorted(found)

    def list_dirs(self, prefix: str) -> list[str]:
        """The names of the folders directly under ``prefix``, sorted (none when it is not there)."""
        selector = pafs.FileSelector(self._full(prefix), recursive=False, allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as e:
            raise storage_error("list", self.shown(prefix), e) from e
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def delete(self, rel: str) -> None:
        """Delete a file; a missing file is not an error."""
        try:
            self.fs.delete_file(self._full(rel))
        except FileNotFoundError:
            return
        except OSError as e:
            raise storage_error("delete", self.shown(rel), e) from e
