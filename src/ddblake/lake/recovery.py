"""What to say when a lake table cannot be read, and how to get it back (docs/lake.md, Recovering).

A lake restored from an older backup while its catalog still names newer metadata, or a metadata file
deleted: the commands that meet it name the table, the missing file and the newest one left, and the
catalog calls that make the table readable again. Kept apart from ``report`` so that ``apply``, the
CLI and ``status`` share one wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from ddblake.errors import BadRecordError, DdblakeError, TerminalError, TransientError
from ddblake.lake.rawlog import ERRORS_ROOT, RAW_PREFIX, table_prefix
from ddblake.lake.storage import Storage, local_uri, storage_error
from ddblake.redact import first_line

_T = TypeVar("_T")

RECOVERING = "docs/lake.md, Recovering"
_METADATA_FILE = re.compile(r"[^\s'\"]+\.metadata\.json")
_METADATA_VERSION = re.compile(r"^v?(\d+)[-.]")


def newest_metadata(folder: str) -> str | None:
    """The newest Iceberg metadata file in ``folder`` (a local path or a URI), spelled as pyiceberg
    takes it; None when there is none, or the folder cannot be listed.

    Newest by the version number that starts the name (``00041-<uuid>.metadata.json``), then by
    write time.
    """
    try:
        where = Storage.from_uri(folder)
        listed = where.list_with_times("")
    except (DdblakeError, OSError):
        return None
    found = [
        (int(m.group(1)) if (m := _METADATA_VERSION.match(name)) else -1, mtime, name)
        for name, mtime in listed
        if "/" not in name and name.endswith(".metadata.json")
    ]
    if not found:
        return None
    path = f"{folder.rstrip('/')}/{max(found)[2]}"
    return path if "://" in path else local_uri(path)


def loaded(identifier: str, load: Callable[[], _T]) -> _T:
    """``load()`` of a lake table, a missing metadata file said with the table and what to do."""
    try:
        return load()
    except FileNotFoundError as e:
        said = missing_metadata(e, identifier)
        if said is None:
            raise
        raise TerminalError(said) from e


def missing_metadata(e: BaseException, identifier: str | None = None) -> str | None:
    """What to do about a table whose catalog entry names a metadata file that is not there, as one
    line naming the table (``identifier``, when known), the missing file and the newest one left;
    None for any other error.

    A lake restored from an older backup while its catalog (Glue, or a ``catalog.db`` not restored
    with it) still names newer metadata: the restored tables are whole, with their applied-file
    records (table properties), so the catalog pointed at the newest metadata file there makes apply
    go on from that state, applying again exactly once the raw files it does not hold.
    """
    if not isinstance(e, FileNotFoundError):
        return None
    found = _METADATA_FILE.search(" ".join(str(x) for x in (e, e.filename) if x))
    if found is None:
        return None
    missing = found.group(0)
    folder = missing.rsplit("/", 1)[0]
    if identifier is None:  # <namespace>[.db]/<table>/metadata/: the folder apply made for the table
        parts = folder.split("/")
        if len(parts) >= 3 and parts[-1] == "metadata":
            identifier = f"{parts[-3].removesuffix('.db')}.{parts[-2]}"
    table = f"table {identifier}" if identifier else "a table of the lake"
    said = (
        f"{table} cannot be read: the catalog names its metadata file {missing}, which is not there "
        "(the lake restored from an older backup, or the file deleted)"
    )
    ident = identifier or "<namespace>.<table>"
    newest = newest_metadata(folder)
    if newest is None:
        return (
            f"{said}; no other metadata file of it was found in {folder}: restore one (a backup, S3 "
            "versioning) and register it in the catalog, or, if none is left, drop the table from the "
            f"catalog (catalog.drop_table('{ident}'), which deletes no file) and delete its folder, "
            f"and apply rebuilds it from raw/ ({RECOVERING})"
        )
    return (
        f"{said}; to go on from the newest metadata file there, register it in the catalog in place "
        f"of the missing one: catalog.drop_table('{ident}') (the catalog's entry only: no file is "
        f"deleted), then catalog.register_table('{ident}', '{newest}') ({RECOVERING}); apply then "
        "applies again, once, the raw files that state does not hold. Or restore the missing file "
        "(a backup, S3 versioning)"
    )


def unreadable_table(e: BaseException, identifier: str) -> str:
    """Why a lake table cannot be read, for ``status``: :func:`missing_metadata`, or the error."""
    return missing_metadata(e, identifier) or (
        f"table {identifier} cannot be read: {first_line(e)} ({type(e).__name__}); if its metadata "
        "file is damaged or missing, restore it (a backup, S3 versioning) or register the newest one "
        f"left ({RECOVERING})"
    )


UNREADABLE = "unreadable"
"""Where a raw file apply cannot read may be moved by hand (``errors/<table>/unreadable/``, its path
under ``raw/<table>/`` kept), so that apply goes on without it (docs/lake.md, Recovering)."""


def unreadable_raw(storage: Storage, table: str, paths: list[str], e: BaseException) -> BaseException:
    """The error to raise for ``e``, met reading the raw files ``paths``: when no retry can read one
    of them, a terminal error naming that file, with the way on if it alone is unreadable (moving
    it out of ``raw/``) and what that loses; ``e`` itself otherwise (another error, a transient one).

    Apply never skips such a file by itself: its changes would be missing from the tables with
    nothing to say so, and the applied-file record would not tell it from an applied file.
    """
    causes = [e, e.__cause__]
    said = " ".join(str(x) for c in causes if c is not None for x in (c, getattr(c, "filename", None)) if x)
    culprit = next((p for p in paths if p in said), None)
    if culprit is None or isinstance(e, BadRecordError):
        return e
    cause = e if isinstance(e, OSError) else e.__cause__
    if isinstance(cause, OSError):
        if isinstance(storage_error("read", storage.shown(culprit), cause), TransientError):
            return e  # a retry may read it
        reason = str(cause)
    else:
        reason = str(e)
    raw = table_prefix(table, RAW_PREFIX) + "/"
    aside = f"{table_prefix(table, ERRORS_ROOT)}/{UNREADABLE}/{culprit.removeprefix(raw)}"
    return TerminalError(
        f"table {table}: cannot read raw file {storage.shown(culprit)} ({reason}); apply applies no "
        "raw file while it cannot read this one. Check that this process may read it (permissions, "
        "bucket and KMS key policy, the object's owner). If only this file is unreadable, moving it "
        f"out of raw/ (to {storage.shown(aside)}) lets apply go on without it: its changes are then "
        "missing from both tables (the history lacks its events; the current state keeps the items it "
        "changed as they were before it, unless a later change of the item came in another file) "
        "until it is moved back to its path under raw/, where apply applies it as a late file "
        "(docs/lake.md, Recovering)"
    )
