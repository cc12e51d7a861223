"""Data files for rows that all lie in one partition, without pyiceberg's partition split.

pyiceberg's ``_dataframe_to_data_files`` splits a table by partition value: it filters the whole
table once per partition value found and copies each result (``combine_chunks``). apply's writes
are one partition already - a rewritten current-state file holds one bucket, and a history batch
is mostly one event day - so that split was one more full copy of every row written: about 0.05 s
per 62,500-row current-state file (a third of its Parquet encoding), and for a 200,000-row load
batch's history 250 MB more at the batch's peak. Rows here are checked to share one partition
value (one distinct value per partition field, no null) and written as one partition; anything
else goes pyiceberg's way.

Uses pyiceberg 0.12 internals (``write_file``, ``WriteTask``, ``bin_pack_arrow_table``,
``pyarrow_to_schema``) and falls back to ``_dataframe_to_data_files`` where those moved.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.io import FileIO
from pyiceberg.table import TableProperties
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.utils.properties import property_as_bool, property_as_int


def partition_key(metadata: TableMetadata, rows: pa.Table) -> Any | None:
    """The one partition every row of ``rows`` lies in, as pyiceberg's ``PartitionKey``.

    None when the table is unpartitioned, the rows span several partitions or a null one, a
    partition source is not a top-level column, or pyiceberg has moved what this needs.
    """
    try:
        from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
    except ImportError:  # pragma: no cover - a pyiceberg that moved its internals
        return None
    spec, schema = metadata.spec(), metadata.schema()
    if spec.is_unpartitioned() or rows.num_rows == 0:
        return None
    values = []
    for field in spec.fields:
        name = schema.find_column_name(field.source_id)
        if name is None or name not in rows.column_names:
            return None
        source = schema.find_field(field.source_id)
        column = field.transform.pyarrow_transform(source.field_type)(rows.column(name))
        if column.null_count or pc.count_distinct(column).as_py() != 1:
            return None
        # The value as pyiceberg's own split reads it (``to_pylist`` of the transformed column).
        values.append(PartitionFieldValue(field=field, value=column[0].as_py()))
    return PartitionKey(field_values=values, partition_spec=spec, schema=schema)


def data_files(
    metadata: TableMetadata,
    io: FileIO,
    rows: pa.Table,
    write_uuid: uuid.UUID,
    counter: itertools.count[int],
) -> Iterator[Any]:
    """Write ``rows`` as data files of the table ``metadata`` describes; yields their ``DataFile``.

    The same files as ``_dataframe_to_data_files`` writes (target file size, schema, partition
    values and statistics), without its copy when the rows share one partition.
    """
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    key = partition_key(metadata, rows)
    try:
        from pyiceberg.io.pyarrow import bin_pack_arrow_table, pyarrow_to_schema, write_file
        from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE, WriteTask
        from pyiceberg.utils.config import Config
    except ImportError:  # pragma: no cover - a pyiceberg that moved its internals
        key = None
    if key is None:
        yield from _dataframe_to_data_files(
            table_metadata=metadata, write_uuid=write_uuid, df=rows, io=io, counter=counter
        )
        return
    default = TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT
    target = property_as_int(metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, default)
    downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
    task_schema = _task_schema(metadata, rows.schema, downcast, pyarrow_to_schema)
    yield from write_file(
        io=io,
        table_metadata=metadata,
        tasks=(
            WriteTask(
                write_uuid=write_uuid,
                task_id=next(counter),
                record_batches=batches,
                partition_key=key,
                schema=task_schema,
            )
            for batches in bin_pack_arrow_table(
                rows, target or TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT
            )
        ),
    )


_TASK_SCHEMAS: list[tuple[Any, int, bool, bytes, Any]] = []
"""The last few :func:`_task_schema` answers, each with the Iceberg schema object it was for."""


def _task_schema(metadata: TableMetadata, rows: pa.Schema, downcast: bool, convert: Any) -> Any:
    """``pyarrow_to_schema`` of ``rows`` by ``metadata``'s name mapping, once per schema.

    A batch writes many files of one schema against one metadata object (a rewrite, bucket by
    bucket), and pyiceberg matches each column to the mapping by a search over every column: on a
    table of 3,000 columns, 0.44 s a file. The mapping is a function of the table's current schema
    alone, so the answer is kept for the same Iceberg schema *object* (held here, so that its
    identity cannot pass to another; a schema, not the whole metadata, which for a wide table with
    many schemas is 100 MB a copy), the format version, and an equal Arrow schema, field metadata
    included.
    """
    schema = metadata.schema()
    version = metadata.format_version
    serialized = rows.serialize().to_pybytes()
    for held, held_version, held_downcast, held_rows, answer in _TASK_SCHEMAS:
        if (
            held is schema
            and held_version == version
            and held_downcast == downcast
            and held_rows == serialized
        ):
            return answer
    answer = convert(
        rows,
        name_mapping=schema.name_mapping,
        downcast_ns_timestamp_to_us=downcast,
        format_version=version,
    )
    _TASK_SCHEMAS.insert(0, (schema, version, downcast, serialized, answer))
    del _TASK_SCHEMAS[4:]
    return answer


def append(tx: Any, io: FileIO, rows: pa.Table, snapshot_properties: dict[str, str]) -> None:
    """``tx.append(rows)``: the same snapshot (fast or merging append, as the table's properties
    say), its files written by :func:`data_files`.

    Args:
        tx: The table's open transaction; its staged schema is the one the rows are checked against.
        io: The table's file IO.
        rows: Rows to append (at least one).
        snapshot_properties: Properties of the new snapshot.
    """
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible

    metadata = tx.table_metadata
    _check_pyarrow_schema_compatible(
        metadata.schema(), provided_schema=rows.schema, format_version=metadata.format_version
    )
    merge = property_as_bool(
        metadata.properties,
        TableProperties.MANIFEST_MERGE_ENABLED,
        TableProperties.MANIFEST_MERGE_ENABLED_DEFAULT,
    )
    update = tx.update_snapshot(snapshot_properties=snapshot_properties)
    with update.merge_append() if merge else update.fast_append() as producer:
        for data_file in data_files(metadata, io, rows, producer.commit_uuid, itertools.count(0)):
            producer.append_data_file(data_file)


def record_only(tx: Any, snapshot_properties: dict[str, str]) -> None:
    """An empty append: a snapshot that changes no data, only so that the commit is checked.

    A batch whose events were all known (or all stale) changes no rows, only the applied-file
    record, a table property. A commit of properties alone carries no requirement and lands on
    whatever metadata is newest, so a second apply's record, built from an older read, could
    replace the record of a commit made in between — whose files would then be applied again.
    A snapshot makes pyiceberg assert that ``main`` is still the snapshot the batch read, so the
    stale commit fails and the batch is retried from a fresh read (``ddblake.lake.service``).

    Args:
        tx: The table's open transaction.
        snapshot_properties: Properties of the new snapshot (the record it points at).
    """
    with tx.update_snapshot(snapshot_properties=snapshot_properties).fast_append():
        pass
