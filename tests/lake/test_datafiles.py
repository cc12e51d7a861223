"""Data files written without pyiceberg's partition split: the same files, the same snapshot."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import _dataframe_to_data_files
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadataCommonFields
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType

from ddblake.lake import datafiles

SCHEMA = Schema(
    NestedField(1, "bucket", IntegerType(), required=False),
    NestedField(2, "at", TimestamptzType(), required=False),
    NestedField(3, "n", LongType(), required=False),
    NestedField(4, "s", StringType(), required=False),
)
ARROW = pa.schema(
    [
        pa.field("bucket", pa.int32()),
        pa.field("at", pa.timestamp("us", tz="UTC")),
        pa.field("n", pa.int64()),
        pa.field("s", pa.string()),
    ]
)


def _table(tmp_path: Path, spec: PartitionSpec, name: str, **properties: str) -> Table:
    catalog = SqlCatalog(
        "t", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}/warehouse"
    )
    catalog.create_namespace_if_not_exists("ns")
    return catalog.create_table(f"ns.{name}", SCHEMA, partition_spec=spec, properties=properties)


def _rows(buckets: list[int], days: list[int]) -> pa.Table:
    n = len(buckets)
    return pa.table(
        {
            "bucket": pa.array(buckets, pa.int32()),
            "at": pa.array([datetime(2026, 12, d, 13, i % 60, tzinfo=UTC) for i, d in enumerate(days)]),
            "n": pa.array(range(n), pa.int64()),
            "s": pa.array([f"row-{i}" if i % 7 else None for i in range(n)]),
        },
        schema=ARROW,
    )


def _summary(files: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            tuple(f.partition),
            f.record_count,
            dict(f.value_counts),
            dict(f.null_value_counts),
            dict(f.lower_bounds),
            dict(f.upper_bounds),
        )
        for f in files
    )


BY_BUCKET = PartitionSpec(PartitionField(1, 1000, IdentityTransform(), "bucket"))
BY_DAY = PartitionSpec(PartitionField(2, 1000, DayTransform(), "at_day"))


@pytest.mark.parametrize(
    ("spec", "buckets", "days", "one_partition"),
    [
        (BY_BUCKET, [5] * 50, [3] * 25 + [4] * 25, True),  # one bucket, two days: one partition
        (BY_DAY, [1, 2] * 25, [3] * 50, True),
        (BY_BUCKET, [5] * 25 + [6] * 25, [3] * 50, False),  # two buckets: pyiceberg's split
        (BY_DAY, [1] * 50, [3] * 30 + [4] * 20, False),
        (PartitionSpec(), [1] * 50, [3] * 50, False),  # unpartitioned: nothing to split
    ],
)
def test_data_files_are_the_ones_pyiceberg_writes(
    tmp_path: Path, spec: PartitionSpec, buckets: list[int], days: list[int], one_partition: bool
) -> None:
    table = _table(tmp_path, spec, "t")
    rows = _rows(buckets, days)
    assert (datafiles.partition_key(table.metadata, rows) is not None) is one_partition
    ours = list(datafiles.data_files(table.metadata, table.io, rows, uuid.uuid4(), itertools.count()))
    theirs = list(
        _dataframe_to_data_files(table_metadata=table.metadata, write_uuid=uuid.uuid4(), df=rows, io=table.io)
    )
    assert _summary(ours) == _summary(theirs)
    assert len({f.file_path for f in ours} & {f.file_path for f in theirs}) == 0


def test_a_null_partition_value_goes_pyiceberg_s_way(tmp_path: Path) -> None:
    table = _table(tmp_path, BY_BUCKET, "t")
    rows = _rows([5] * 10, [3] * 10)
    rows = rows.set_column(0, "bucket", pa.array([None] * 10, pa.int32()))
    assert datafiles.partition_key(table.metadata, rows) is None
    (written,) = datafiles.data_files(table.metadata, table.io, rows, uuid.uuid4(), itertools.count())
    assert tuple(written.partition) == (None,)


@pytest.mark.parametrize("merge", ["true", "false"])
def test_append_commits_the_rows_as_tx_append_does(tmp_path: Path, merge: str) -> None:
    ours = _table(tmp_path, BY_DAY, "ours", **{"commit.manifest-merge.enabled": merge})
    theirs = _table(tmp_path, BY_DAY, "theirs", **{"commit.manifest-merge.enabled": merge})
    for day in (3, 3, 4):
        rows = _rows([1] * 20, [day] * 20)
        with ours.transaction() as tx:
            datafiles.append(tx, ours.io, rows, {"p": str(day)})
        with theirs.transaction() as tx:
            tx.append(rows, snapshot_properties={"p": str(day)})
    ours, theirs = ours.refresh(), theirs.refresh()
    for t in (ours, theirs):
        assert t.current_snapshot() is not None
    a, b = ours.current_snapshot(), theirs.current_snapshot()
    assert a is not None and b is not None
    assert a.summary.operation == b.summary.operation
    assert a.summary["p"] == b.summary["p"] == "4"
    assert len(a.manifests(ours.io)) == len(b.manifests(theirs.io))  # merged, or one per append
    assert ours.scan().to_arrow().sort_by("n").equals(theirs.scan().to_arrow().sort_by("n"))
    assert ours.scan().to_arrow().num_rows == 60


def test_the_task_schema_is_worked_out_once_per_metadata_and_never_lent_to_another(tmp_path: Path) -> None:
    """Files of one schema against one metadata object share one mapping of columns to field IDs
    (on a table of thousands of columns, pyiceberg's mapping cost 0.44 s a file); another
    metadata object, even one whose columns have the same names, gets its own IDs."""
    table = _table(tmp_path, BY_BUCKET, "ids")
    # The same column names with other field IDs (n added last): what a table re-created, or a
    # schema staged by a commit that then failed, would hold.
    catalog = SqlCatalog("o", uri=f"sqlite:///{tmp_path}/other.db", warehouse=f"file://{tmp_path}/other")
    catalog.create_namespace_if_not_exists("ns2")
    twin = catalog.create_table(
        "ns2.ids", Schema(*[f for f in SCHEMA.fields if f.name != "n"]), partition_spec=BY_BUCKET
    )
    with twin.update_schema() as update:
        update.add_column("n", LongType())
    twin = twin.refresh()
    assert twin.schema().find_field("n").field_id == 4 and twin.schema().find_field("s").field_id == 3
    rows = _rows([5] * 20, [3] * 20)
    calls: list[int] = []
    real = datafiles._task_schema

    def counted(metadata: Any, schema: pa.Schema, downcast: bool, convert: Any) -> Any:
        def convert_counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return convert(*args, **kwargs)

        return real(metadata, schema, downcast, convert_counted)

    datafiles._TASK_SCHEMAS.clear()
    try:
        datafiles._task_schema = counted  # type: ignore[assignment]
        for _ in range(3):
            written = list(
                datafiles.data_files(table.metadata, table.io, rows, uuid.uuid4(), itertools.count())
            )
        assert len(calls) == 1  # three writes, one mapping
        twin_files = list(datafiles.data_files(twin.metadata, twin.io, rows, uuid.uuid4(), itertools.count()))
        assert len(calls) == 2  # the same names in another table: worked out again
        # What is kept is the schema, never a whole metadata copy (100 MB for a wide table).
        held = [x for entry in datafiles._TASK_SCHEMAS for x in entry]
        assert not any(isinstance(x, TableMetadataCommonFields) for x in held)
    finally:
        datafiles._task_schema = real  # type: ignore[assignment]
    # Each file's statistics are keyed by its own table's field IDs: n is 3 in one, 4 in the other.
    assert written[0].value_counts[3] == 20 and written[0].null_value_counts[4] == 3
    assert twin_files[0].value_counts[4] == 20 and twin_files[0].null_value_counts[3] == 3
    with twin.transaction() as tx:
        datafiles.append(tx, twin.io, rows, {})
    assert twin.refresh().scan().to_arrow().select(rows.column_names).sort_by("n").equals(rows.sort_by("n"))
