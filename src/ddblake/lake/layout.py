"""The current-state table's partition spec: created with it in one commit, repaired where missing.

Every current-state file lies in one key bucket (``_ddb_bucket``, identity partition), which
apply's file-by-file rewrite relies on (:func:`ddblake.lake.commits.rewrite_buckets`). Before this
module, apply created the table and added the spec in a second commit, so a crash between the two
left a table without one for good, and every later batch rewrote it through the whole-file
fallback. :func:`create_current` makes table and spec in one commit; :func:`partitioned` gives a
table left without a spec its spec and its rows their bucket files, in one commit too.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from ddblake.lake import current
from ddblake.lake.commits import CachedTransaction, replace_table
from ddblake.lake.compact import _replace_operation

log = logging.getLogger(__name__)

BUCKET_COLUMN = "_ddb_bucket"
# The summary of :func:`partitioned`'s snapshot: no applied-file record, since no data changes.
REPAIR_PROPERTIES = {"ddblake.maintenance": "partition"}


def create_current(catalog: Catalog, identifier: str, schema: pa.Schema, properties: dict[str, str]) -> Table:
    """Create the current-state table, partitioned by bucket from its first metadata file on.

    ``schema``: the Arrow schema of the first rows. One catalog commit creates the table with its
    spec (a create transaction), so no crash leaves it without one. A table created meanwhile (by
    a racing apply, or an older ddblake) is loaded instead, and given its spec if it lacks one.
    """
    tx = catalog.create_table_transaction(
        identifier, schema=current.iceberg_compatible(schema), properties=properties
    )
    with tx.update_spec() as spec:
        spec.add_field(BUCKET_COLUMN, IdentityTransform(), BUCKET_COLUMN)
    try:
        tx.commit_transaction()
    except (TableAlreadyExistsError, CommitFailedException) as e:
        try:
            return partitioned(catalog.load_table(identifier))
        except NoSuchTableError:
            raise e from None  # not a race: run_apply retries the commit from the top
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
        if table.current_snapshot() is not None:
            replace_table(tx, table, table.scan().to_arrow(), REPAIR_PROPERTIES, relabel=_replace_operation)
    return table  # the commit updated its metadata
