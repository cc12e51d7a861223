"""The current-state table: one row per primary key, deleted items absent.

Rows are partitioned by a stable hash bucket of the key (``_ddb_bucket``, identity partition), so a
batch reads and rewrites only the buckets it touches: Iceberg drops the old files of those
partitions in metadata and adds the new ones — no per-row filter terms, no whole-table rewrite.

Every row carries the item's DynamoDB JSON (``_ddb_item``): typed columns are for querying, while
``dump`` rebuilds items from ``_ddb_item`` exactly. When a column's type must change in a way
Iceberg cannot promote (say int64 to decimal), the typed columns are recomputed from ``_ddb_item``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

from ddblake.changes.resolve import Keyed, bucket_of

META_COLUMNS: dict[str, pa.DataType] = {
    "_ddb_key": pa.string(),
    "_ddb_bucket": pa.int32(),
    "_ddb_version": pa.string(),
    "_ddb_event_time": pa.timestamp("us", tz="UTC"),
    "_ddb_item": pa.string(),
}
DEFAULT_BUCKETS = 16
BUCKETS_PROPERTY = "ddblake.buckets"


def meta_table(upserts: Sequence[Keyed], buckets: int) -> pa.Table:
    """The metadata columns of the rows that ``upserts`` produce."""
    return pa.table(
        {
            "_ddb_key": pa.array([u.key for u in upserts], pa.string()),
            "_ddb_bucket": pa.array([bucket_of(u.key, buckets) for u in upserts], pa.int32()),
            "_ddb_version": pa.array([u.version for u in upserts], pa.string()),
            "_ddb_event_time": pa.array([u.event.event_time_us for u in upserts], META_COLUMNS["_ddb_event_time"]),
            "_ddb_item": pa.array(
                [json.dumps(u.event.new_image, separators=(",", ":"), ensure_ascii=False) for u in upserts],
                pa.string(),
            ),
        }
    )


def attribute_column(attr: str) -> str:
    """Column name of an attribute: its own name, unless it would shadow a metadata column."""
    return f"attr{attr}" if attr.startswith("_ddb_") else attr
