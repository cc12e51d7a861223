"""The lake a command works on, from its arguments: one rule for every command.

``capture``, ``load`` and ``sync`` create a local lake; ``apply``, ``redrive`` and the reading
commands take one that is there, since a path that is not is a typo (``./lak``), and a new empty
``catalog.db`` in it would hide that from the next command too.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ddblake.errors import DdblakeError, UsageError

if TYPE_CHECKING:
    from ddblake.lake.catalog import LakeConfig
    from ddblake.lake.storage import Storage


def lake_config(args: argparse.Namespace) -> LakeConfig:
    """The lake of ``--lake``, ``--catalog`` and ``--namespace`` (or their variables)."""
    from ddblake.lake.catalog import LakeConfig

    return LakeConfig.build(lake=args.lake, catalog=args.catalog, namespace=args.namespace)


def check_present(config: LakeConfig) -> LakeConfig:
    """``config``, if its lake is in S3 or a local folder that is there (:func:`present_lake`).

    Raises:
        UsageError: names the path (and a file in its way) and which commands create a lake.
    """
    present_lake(config.lake)
    return config


def present_lake(lake: str) -> str:
    """``lake``, if it is in S3 or a local folder that is there; else a usage error: for a command
    that creates no lake, a local path that does not exist is a typo, not a new lake.

    Raises:
        UsageError: names the path (and a file in its way) and which commands create a lake.
    """
    from ddblake import settings
    from ddblake.lake.storage import local_lake_path

    path = local_lake_path(lake)  # as Storage.from_uri reads it
    check = f"check --lake (or {settings.elsewhere('lake')})"
    if path is not None and not path.exists():
        blocker = next((p for p in path.parents if p.exists()), None)
        why = (
            f": {blocker} is a file, not a directory" if blocker is not None and not blocker.is_dir() else ""
        )
        raise UsageError(f"no lake at {path}{why}: {check}; capture, load and sync create one")
    if path is None and _no_bucket(lake):
        bucket = urlparse(lake).netloc
        raise UsageError(
            f"no lake at {lake}: S3 has no bucket {bucket!r} (in this account and endpoint); {check}"
        )
    return lake


def _no_bucket(lake: str) -> bool:
    """Whether S3 says an ``s3://`` lake's bucket does not exist: a typo that would otherwise read
    as a lake with no tables yet. Anything else (allowed, refused, unreachable) is left to the
    command, whose own calls say what is wrong with more to go on."""
    import pyarrow.fs as pafs

    from ddblake.lake.storage import Storage

    try:
        storage = Storage.from_uri(lake)
        info = storage.fs.get_file_info(storage.root.split("/", 1)[0])
    except (OSError, DdblakeError):
        return False
    return bool(info.type == pafs.FileType.NotFound)


def existing_lake(args: argparse.Namespace, *, catalog_missing_ok: bool = False) -> LakeConfig:
    """:func:`check_present` for the commands that only read a lake, which leave nothing behind.

    Args:
        catalog_missing_ok: a SQLite catalog that ``DDBLAKE_CATALOG_URI`` names and apply has not
            created yet is read as empty (``status``: the backlog still shows), not refused.
    """
    from ddblake.lake.catalog import CATALOG_FILE, missing_sqlite_file
    from ddblake.lake.storage import local_lake_path

    config = check_present(lake_config(args))
    path = local_lake_path(config.lake)
    if path is not None and config.own_catalog and not (path / CATALOG_FILE).exists():
        # No table applied yet (or a wrong --lake): an empty catalog in memory answers the same,
        # where opening the lake's would leave an empty catalog.db in the directory.
        config = dataclasses.replace(config, catalog_uri="sqlite:///:memory:")
    elif catalog_missing_ok and config.catalog_uri and missing_sqlite_file(config.catalog_uri):
        config = dataclasses.replace(config, catalog_uri="sqlite:///:memory:")
    return config


@contextmanager
def catalog_errors(config: LakeConfig, storage: Storage) -> Iterator[None]:
    """A catalog library's error (Glue's botocore, SQLAlchemy) raised inside, as pyiceberg lets it
    through a table's load, explained as apply explains it: naming the lake, the catalog and its
    database, with Glue's advice for a Glue lake (not DynamoDB's), and retryable when it is.

    Raises:
        DdblakeError: the error explained (:func:`ddblake.lake.catalog.catalog_error`).
    """
    from ddblake.lake.catalog import catalog_error

    try:
        yield
    except Exception as e:
        explained = catalog_error(e, config, storage)
        if explained is None:
            raise
        raise explained from e
