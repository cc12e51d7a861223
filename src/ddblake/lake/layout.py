"""The current-state table's partition spec: created with it in one commit, repaired where missing.

Every current-state file lies in one key bucket (``_ddb_bucket``, identity partition), which
apply's file-by-file rewrite relies on (:func:`ddblake.lake.commits.rewrite_buckets`). Before this
module, apply created the table and added the spec in a second commit, so a crash between the two
left a table without one for good, and every later batch rewrote it through the whole-file
fallback. :func:`create_current` makes table and spec in one commit; :func:`partitioned` gives a
table left without a spec its spec and its rows their bucket files, in one commit too.
"""

from __future__ import annotations

import json
import logging
from typing import Final

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from ddblake.errors import TerminalError
from ddblake.lake import current
from ddblake.lake.commits import CachedTransaction, rebucket_table
from ddblake.lake.compact import replace_operation
from ddblake.lake.storage import Storage
from ddblake.names import cut_with_hash

log = logging.getLogger(__name__)

BUCKET_COLUMN = "_ddb_bucket"
# The summary of :func:`partitioned`'s snapshot: no applied-file record, since no data changes.
REPAIR_PROPERTIES = {"ddblake.maintenance": "partition"}


FOLDER_NAME_BYTES: Final = 255
"""A local disk's longest file name: a table folder's name must fit it."""


def folder_name(name: str) -> str:
    """A table's folder name: ``name``, or for a name longer than :data:`FOLDER_NAME_BYTES` its
    first 200 characters and a hash of the whole. Identifiers are ``[a-z0-9_]`` from DynamoDB names
    of up to 255 characters, so only a history table (``…_changes``) of the longest names needs it;
    the hash keeps two such tables sharing a start apart."""
    if len(name.encode()) <= FOLDER_NAME_BYTES:
        return name
    return cut_with_hash(name, 200)


def table_folder(identifier: str, glue: bool) -> str:
    """A table's folder under the lake: Glue's default shape ``warehouse/<ns>.db/<table>``, the
    SQLite catalog's ``warehouse/<ns>/<table>`` (:func:`folder_name` of the table part)."""
    namespace, name = identifier.split(".", 1)
    return f"warehouse/{namespace}{'.db' if glue else ''}/{folder_name(name)}"


def refuse_occupied(storage: Storage, folder: str, identifier: str, catalog: str) -> None:
    """Refuse to create a table where a table of the same name that ``catalog`` lacks has data.

    Two catalogs on one lake and namespace (``DDBLAKE_CATALOG_URI`` changed, or ``catalog.db``
    lost) would put both tables in one folder, and each one's orphan sweep would delete the
    other's files. A metadata file without a snapshot is a create that crashed before its catalog
    commit: that folder is reused. A table dropped from the catalog without its files is refused
    too: its folder must go before a new table can take it.

    Args:
        storage: the lake.
        folder: the table's folder, relative to the lake.
        identifier: the table's catalog identifier, for the message.
        catalog: the catalog in use, for the message.
    """
    folder = folder.rstrip("/") + "/metadata/"
    for rel in reversed(storage.list_files(folder)):
        if not rel.endswith(".metadata.json"):
            continue
        try:
            snapshot = json.loads(storage.read(rel) or b"{}").get("current-snapshot-id")
        except (ValueError, AttributeError):
            snapshot = None
        if snapshot is not None and snapshot != -1:
            raise TerminalError(
                f"table {identifier} is not in the catalog this command uses ({catalog}), yet its "
                f"folder {storage.shown(folder.removesuffix('metadata/'))} holds a table with data "
                f"({rel.rsplit('/', 1)[-1]}): use the catalog that holds it (the lake's catalog.db, or "
                "DDBLAKE_CATALOG_URI) or another --namespace. If it was dropped from the catalog by "
                "hand, registering its newest metadata file again is the cheap way back: "
                f"catalog.register_table('{identifier}', '{storage.uri(rel)}') (docs/lake.md, "
                "Recovering); if it was dropped on purpose, delete that folder too and run again, and "
                "apply rebuilds it from raw/ (creating it there would mix two tables' files)"
            )


def create_current(
    catalog: Catalog,
    identifier: str,
    schema: pa.Schema,
    properties: dict[str, str],
    location: str | None = None,
) -> Table:
    """Create the current-state table, partitioned by bucket from its first metadata file on.

    ``schema``: the Arrow schema of the first rows. One catalog commit creates the table with its
    spec (a create transaction), so no crash leaves it without one. A table created meanwhile (by
    a racing apply, or an older ddblake) is loaded instead, and given its spec if it lacks one;
    one that already holds data raises CommitFailedException: the caller's batch was decided
    against no table (no versions to compare, no rows to keep), so it starts again from the top.
    """
    tx = catalog.create_table_transaction(
        identifier, schema=current.iceberg_compatible(schema), properties=properties, location=location
    )
    with tx.update_spec() as spec:
        spec.add_field(BUCKET_COLUMN, IdentityTransform(), BUCKET_COLUMN)
    try:
        tx.commit_transaction()
    except (TableAlreadyExistsError, CommitFailedException) as e:
        try:
            there = catalog.load_table(identifier)
        except NoSuchTableError:
            raise e from None  # not a race: run_apply retries the commit from the top
        if there.current_snapshot() is not None:
            raise CommitFailedException(
                f"table {identifier} was created, with data, by another writer"
            ) from e
        return partitioned(there)
    return catalog.load_table(identifier)


def partitioned(table: Table) -> Table:
    """``table``, given its bucket partition spec if it has none: one commit adds the spec and
    rewrites every row into files of one bucket each.

    The rows stay the same, so the snapshot is an Iceberg ``replace``: readers, ``query --as-of``
    and incremental consumers see no change in the data, and the applied-file record (a table
    property) is untouched. A crash before the commit leaves the table as it was (its new files are
    orphans the daily sweep deletes) and the next apply repairs it again; a racing apply makes the
    commit fail and run_apply retries from the top.
    """
    if not table.spec().is_unpartitioned():
        return table
    log.warning(
        "table %s has no partition spec (an older apply was stopped while creating it): adding "
        "it and rewriting the table's rows into bucket files",
        ".".join(table.name()),
    )
    with CachedTransaction(table) as tx:
        with tx.update_spec() as spec:
            spec.add_field(BUCKET_COLUMN, IdentityTransform(), BUCKET_COLUMN)
        rebucket_table(tx, table, REPAIR_PROPERTIES, relabel=replace_operation)  # file by file
    return table  # the commit updated its metadata
