"""query and dump read the lake's data files lazily, and give exactly Iceberg's rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from lake_helpers import Lake, event
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import LongType, NestedField, StringType

from ddblake.cli.main import main
from ddblake.lake import query
from ddblake.lake.query import run_sql
from ddblake.lake.reading import Rows, lazy_rows, register, row_source

IMAGE: dict[str, Any] = {
    "s": {"S": "text"},
    "i": {"N": "-42"},
    "d": {"N": "12345678901234567890.123456789012345678"},
    "b": {"B": "AAEC/w=="},
    "t": {"BOOL": True},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2.5"]},
    "m": {"M": {"k": {"N": "1"}, "deep": {"L": [{"S": "a"}]}}},
    "l": {"L": [{"N": "1"}, {"S": "two"}]},
}


def _lazy(table: Table) -> Rows | None:
    """:func:`lazy_rows` of the table's current snapshot."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return lazy_rows(table, snapshot.snapshot_id)


def _sorted(rows: pa.Table, key: str) -> pa.Table:
    return rows.sort_by(key).combine_chunks()


def test_the_lazy_rows_are_iceberg_rows_after_columns_were_added_and_widened(lake: Lake) -> None:
    lake.write([event("INSERT", f"k{i}", 1, image=IMAGE) for i in range(50)])
    lake.apply()
    # A new column (files written before lack it), a nested field added to a map, a widened column.
    lake.write([event("MODIFY", "k1", 2, image={**IMAGE, "new": {"S": "n"}, "m": {"M": {"k2": {"S": "v"}}}})])
    lake.apply()
    lake.write([event("MODIFY", "k2", 3, image={**IMAGE, "i": {"S": "now a string"}})])
    lake.apply()
    lake.write([event("REMOVE", "k3", 4), event("INSERT", "k99", 4, image={"other": {"N": "7"}})])
    lake.apply()
    catalog = lake.catalog()
    for name in ("orders_table", "orders_table_changes"):
        table = catalog.load_table(f"ddb.{name}")
        snapshot = table.current_snapshot()
        assert snapshot is not None
        lazy = lazy_rows(table, snapshot.snapshot_id)
        assert lazy is not None and isinstance(lazy.source, ds.Dataset)  # ddblake's files read lazily
        key = "_ddb_key" if name == "orders_table" else "event_id"
        expected = _sorted(table.scan().to_arrow(), key)
        got = _sorted(lazy.source.to_table(), key)
        assert got.column_names == expected.column_names
        assert got.cast(expected.schema).equals(expected)  # string or large_string: the same values
    sql = "select pk, new, i from orders_table where pk in ('k1', 'k2', 'k3', 'k5') order by pk"
    cols, rows = run_sql(catalog, "ddb", sql)
    assert cols == ["pk", "new", "i"]
    assert rows == [  # the widened column holds every value as DynamoDB JSON text
        ("k1", "n", '{"N":"-42"}'),
        ("k2", None, '{"S":"now a string"}'),
        ("k5", None, '{"N":"-42"}'),
    ]


def test_an_older_snapshot_reads_lazily_with_its_own_schema(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"x": {"N": "1"}})])
    lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    first = table.current_snapshot()
    assert first is not None
    lake.write([event("MODIFY", "a", 2, image={"x": {"N": "2"}, "y": {"S": "later"}})])
    lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    lazy = lazy_rows(table, first.snapshot_id)
    assert lazy is not None
    old = lazy.source.to_table()
    assert "y" not in old.column_names  # the schema of that snapshot, as pyiceberg reads it
    assert old.column("x").to_pylist() == [1]


def test_a_column_dropped_and_added_again_without_a_rewrite_is_read_by_field_id(tmp_path: Path) -> None:
    """Another writer dropped column x (long) and added x (string) without rewriting the old file:
    by name the old file's numbers would come back as x; by field ID they are null. The lazy path
    must step aside for pyiceberg's reader."""
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=(tmp_path / "w").as_uri())
    catalog.create_namespace("ns")
    table = catalog.create_table("ns.t", schema=pa.schema([("k", pa.string()), ("x", pa.int64())]))
    table.append(pa.table({"k": ["old"], "x": pa.array([5], pa.int64())}))
    with table.update_schema() as upd:
        upd.delete_column("x")
    with table.update_schema() as upd:
        upd.add_column("x", StringType())
    table = catalog.load_table("ns.t")
    table.append(pa.table({"k": ["new"], "x": ["text"]}))
    table = catalog.load_table("ns.t")
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert lazy_rows(table, snapshot.snapshot_id) is None
    source = row_source(table, snapshot.snapshot_id).source
    assert isinstance(source, pa.Table)
    assert dict(zip(source.column("k").to_pylist(), source.column("x").to_pylist(), strict=True)) == {
        "old": None,
        "new": "text",
    }


def test_an_empty_table_and_a_table_without_snapshots_read_as_no_rows(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"x": {"N": "1"}})])
    lake.apply()
    lake.write([event("REMOVE", "a", 2)])
    lake.apply()
    cols, rows = run_sql(lake.catalog(), "ddb", "select count(*) from orders_table")
    assert rows == [(0,)]
    table = lake.catalog().load_table("ddb.orders_table")
    assert row_source(table, None).source.num_rows == 0


def test_names_writers_store_sanitised_read_lazily_under_their_own_names(lake: Lake) -> None:
    image = {"created-at": {"S": "2026-12-05"}, "2nd": {"N": "2"}, "a.b": {"S": "dot"}}
    lake.write(
        [event("INSERT", "a", 1, image=image), event("INSERT", "b", 1, image={"created-at": {"S": "x"}})]
    )
    lake.apply()
    catalog = lake.catalog()
    table = catalog.load_table("ddb.orders_table")
    lazy = _lazy(table)
    assert lazy is not None and isinstance(lazy.source, ds.Dataset)
    assert lazy.renamed == {"created_x2Dat": "created-at", "_2nd": "2nd", "a_x252Eb": "a%2Eb"}
    sql = 'select pk, "created-at", "2nd", "a%2Eb" from orders_table where "created-at" = \'2026-12-05\''
    assert run_sql(catalog, "ddb", sql) == (
        ["pk", "created-at", "2nd", "a%2Eb"],
        [("a", "2026-12-05", 2, "dot")],
    )


def test_a_sanitised_name_inside_a_map_is_read_lazily_under_its_own_name(lake: Lake) -> None:
    lake.write([event("INSERT", "a", 1, image={"m": {"M": {"in-side": {"S": "v"}}}})])
    lake.apply()
    catalog = lake.catalog()
    table = catalog.load_table("ddb.orders_table")
    lazy = _lazy(table)
    assert lazy is not None and isinstance(lazy.source, ds.Dataset)
    assert run_sql(catalog, "ddb", 'select m."in-side" from orders_table') == (["in-side"], [("v",)])
    assert _both(table, "select m from t") == ([({"in-side": "v"},)], [({"in-side": "v"},)])


NESTED: dict[str, Any] = {
    "top-level": {
        "M": {
            "in-side": {"S": "v"},
            "2nd": {"M": {"a.b": {"N": "1.50"}, "x": {"L": [{"S": "s"}, {"N": "2"}]}}},
            "lm": {
                "L": [{"M": {"k-1": {"S": "first"}}}, {"M": {"k-1": {"S": "second"}, "z": {"BOOL": True}}}]
            },
            "any": {"L": [{"S": "mixed"}, {"N": "7"}]},
        }
    },
    "plain": {"M": {"ok": {"S": "kept"}}},
}


def test_nested_sanitised_names_read_lazily_give_iceberg_rows_and_json_kinds(lake: Lake, capsys: Any) -> None:
    """Renamed map keys at every depth (in a map, a map in a map, maps in a list) and marked text
    beside them: the lazy view gives pyiceberg's rows, and query --format json its JSON values."""
    lake.write(
        [
            event("INSERT", "a", 1, image=NESTED),
            event("INSERT", "b", 1, image={"plain": {"M": {"ok": {"S": "only"}}}}),  # top-level null
            event("INSERT", "c", 1, image={"top-level": {"M": {"lm": {"L": []}}}}),  # inner nulls, []
        ]
    )
    lake.apply()
    catalog = lake.catalog()
    table = catalog.load_table("ddb.orders_table")
    snapshot = table.current_snapshot()
    assert snapshot is not None
    lazy = lazy_rows(table, snapshot.snapshot_id)
    assert lazy is not None and isinstance(lazy.source, ds.Dataset) and lazy.stored is not None
    for sql in (
        'select pk, "top-level", plain from t order by pk',
        'select pk, "top-level"."lm"[1]."k-1", "top-level"."2nd"."a%2Eb" from t order by pk',
        'select count(*) from t where "top-level"."in-side" = \'v\'',
    ):
        got, want = _both(table, sql)
        assert got == want, sql
    sql = 'select pk, "top-level" as t from orders_table order by pk'
    whole = Rows(table.scan(snapshot_id=snapshot.snapshot_id).to_arrow())
    original = query.row_source
    assert main(["query", "--lake", str(lake.root), "--format", "json", sql]) == 0
    lazy_out = capsys.readouterr().out
    query.row_source = lambda *_: whole  # type: ignore[assignment]
    try:
        assert main(["query", "--lake", str(lake.root), "--format", "json", sql]) == 0
    finally:
        query.row_source = original
    assert lazy_out == capsys.readouterr().out
    assert lazy_out.splitlines()[0] == (
        '{"pk":"a","t":{"2nd":{"a%2Eb":1.50,"x":[{"S":"s"},{"N":"2"}]},"any":[{"S":"mixed"},{"N":"7"}],'
        '"in-side":"v","lm":[{"k-1":"first","z":null},{"k-1":"second","z":true}]}}'
    )


def test_nested_names_a_view_cannot_give_back_are_read_through_pyiceberg(lake: Lake) -> None:
    """Map keys differing only in case beside a renamed one: DuckDB would not tell them apart."""
    lake.write([event("INSERT", "a", 1, image={"m": {"M": {"K-1": {"S": "upper"}, "k-1": {"S": "lower"}}}})])
    lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert lazy_rows(table, snapshot.snapshot_id) is None
    assert isinstance(row_source(table, snapshot.snapshot_id).source, pa.Table)


def test_files_without_field_ids_are_read_through_pyiceberg(tmp_path: Path) -> None:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=(tmp_path / "w").as_uri())
    catalog.create_namespace("ns")
    table = catalog.create_table("ns.t", schema=pa.schema([("k", pa.string()), ("x", pa.int64())]))
    imported = tmp_path / "imported.parquet"
    pq.write_table(pa.table({"k": ["a"], "x": pa.array([1], pa.int64())}), imported)  # no field IDs
    table.add_files([imported.as_uri()])  # read through the table's name mapping
    table = catalog.load_table("ns.t")
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert lazy_rows(table, snapshot.snapshot_id) is None
    assert row_source(table, snapshot.snapshot_id).source.to_pylist() == [{"k": "a", "x": 1}]


def test_query_output_streams_in_chunks_and_equals_the_whole_result(
    lake: Lake, capsys: Any, monkeypatch: Any
) -> None:
    lake.write(
        [
            event("INSERT", f"k{i:02d}", 1, image={"v": {"N": str(i)}, "t": {"S": f'a,"{i}"\nb'}})
            for i in range(25)
        ]
    )
    lake.apply()
    monkeypatch.setattr(query, "FETCH_ROWS", 4)  # 25 rows in 7 chunks
    sql = "select pk, v, t from orders_table order by pk"
    columns, rows = run_sql(lake.catalog(), "ddb", sql)
    assert len(rows) == 25
    for fmt in ("csv", "json", "table"):
        assert main(["query", "--lake", str(lake.root), "--format", fmt, sql]) == 0
        assert capsys.readouterr().out == query.format_rows(columns, rows, fmt)
    assert (
        main(
            ["query", "--lake", str(lake.root), "--format", "csv", "select pk from orders_table where v > 99"]
        )
        == 0
    )
    assert capsys.readouterr().out == "pk\n"  # the header, with no rows


def test_an_error_met_while_rows_stream_is_one_line(lake: Lake, capsys: Any, monkeypatch: Any) -> None:
    lake.write([event("INSERT", f"k{i:02d}", 1, image={"v": {"N": str(i)}}) for i in range(25)])
    lake.apply()
    monkeypatch.setattr(query, "FETCH_ROWS", 4)
    sql = "select pk, case when v = 20 then error('value 20 is bad') else v end from orders_table order by pk"
    assert main(["query", "--lake", str(lake.root), "--format", "json", sql]) == 1
    err = capsys.readouterr().err
    assert "query failed" in err and "value 20 is bad" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def _catalog(tmp_path: Path) -> SqlCatalog:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=(tmp_path / "w").as_uri())
    catalog.create_namespace("ns")
    return catalog


def _both(table: Table, sql: str) -> tuple[Any, Any]:
    """``sql`` over the rows ddblake hands DuckDB, and over pyiceberg's whole read."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    results = []
    for rows in (
        row_source(table, snapshot.snapshot_id),
        Rows(table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()),
    ):
        con = duckdb.connect()
        register(con, "t", rows)
        results.append(con.execute(sql).fetchall())
        con.close()
    return results[0], results[1]


def _add_foreign_file(
    table: Table, path: Path, rows: pa.Table, ids: dict[str, int], partition: Record
) -> None:
    """A Parquet file written as another engine would (field IDs, names as given), appended."""
    schema = pa.schema(
        [pa.field(f.name, f.type, metadata={"PARQUET:field_id": str(ids[f.name])}) for f in rows.schema]
    )
    pq.write_table(rows.cast(schema), path)
    data = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path.as_uri(),
        file_format=FileFormat.PARQUET,
        partition=partition,
        record_count=rows.num_rows,
        file_size_in_bytes=path.stat().st_size,
    )
    data.spec_id = 0
    with table.transaction() as tx, tx.update_snapshot().fast_append() as append:
        append.append_data_file(data)


def test_names_that_differ_in_case_keep_their_own_values(lake: Lake) -> None:
    """DynamoDB names are case-sensitive and DuckDB's are not: the view renames by position."""
    lake.write([event("INSERT", "k1", 1, image={"Created-At": {"S": "upper"}, "created-at": {"S": "lower"}})])
    lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    lazy, whole = _both(table, "select * from t")
    assert lazy == whole
    assert {"upper", "lower"} <= set(lazy[0])


def test_a_column_added_with_a_default_is_read_through_pyiceberg(tmp_path: Path) -> None:
    table = _catalog(tmp_path).create_table("ns.t", schema=pa.schema([("k", pa.string())]))
    table.append(pa.table({"k": ["old"]}))
    with table.update_schema() as upd:
        upd.add_column("c", LongType(), default_value=42)  # files written before read 42, not null
    table.append(pa.Table.from_pylist([{"k": "new", "c": 1}], schema=table.schema().as_arrow()))
    assert _lazy(table) is None
    assert _both(table, "select k, c from t order by k") == ([("new", 1), ("old", 42)],) * 2


def test_a_partition_column_a_file_does_not_store_is_read_through_pyiceberg(tmp_path: Path) -> None:
    schema = Schema(NestedField(1, "k", StringType()), NestedField(2, "region", StringType()))
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region")
    )
    table = _catalog(tmp_path).create_table("ns.t", schema=schema, partition_spec=spec)
    table.append(pa.table({"k": ["a"], "region": ["eu"]}))
    # another engine's file: its partition value only in the manifest
    rows = pa.table({"k": ["b", "c"]})
    _add_foreign_file(table, tmp_path / "w" / "other.parquet", rows, {"k": 1}, Record("us"))
    assert _lazy(table) is None
    assert (
        _both(table, "select k, region from t order by k") == ([("a", "eu"), ("b", "us"), ("c", "us")],) * 2
    )


def test_names_that_sanitise_alike_are_read_through_pyiceberg(tmp_path: Path) -> None:
    schema = Schema(NestedField(1, "a-b", StringType()), NestedField(2, "a_x2Db", StringType()))
    table = _catalog(tmp_path).create_table("ns.t", schema=schema)
    rows = pa.table({"a-b": ["dash"], "a_x2Db": ["literal"]})  # another engine's file, its own names
    _add_foreign_file(table, tmp_path / "w" / "f.parquet", rows, {"a-b": 1, "a_x2Db": 2}, Record())
    snapshot = table.current_snapshot()
    assert snapshot is not None
    assert lazy_rows(table, snapshot.snapshot_id) is None  # no error: the other reader
    assert _both(table, "select * from t") == ([("dash", "literal")],) * 2


def test_a_renamed_key_whose_stored_name_is_another_keys_in_other_case_is_read_through_pyiceberg(
    lake: Lake,
) -> None:
    """``a-b`` is stored ``a_x2Db`` beside a key ``A_X2DB``: DuckDB reads one value for both
    (its struct field names fold ASCII case), so the view would answer 'upper' twice."""
    lake.write(
        [event("INSERT", "a", 1, image={"m": {"M": {"a-b": {"S": "dash"}, "A_X2DB": {"S": "upper"}}}})]
    )
    lake.apply()
    catalog = lake.catalog()
    table = catalog.load_table("ddb.orders_table")
    assert _lazy(table) is None
    assert run_sql(catalog, "ddb", 'select m."a-b", m."A_X2DB" from orders_table')[1] == [("dash", "upper")]


def test_names_other_than_ascii_that_differ_in_case_are_two_names(lake: Lake) -> None:
    """DuckDB folds only ASCII letters: ``Имя`` and ``имя`` keep their own names."""
    lake.write(
        [
            event(
                "INSERT",
                "a",
                1,
                image={"Имя": {"S": "upper"}, "имя": {"S": "lower"}, "É": {"N": "1"}, "é": {"N": "2"}},
            )
        ]
    )
    lake.apply()
    sql = 'select "имя", "Имя", "é", "É" from orders_table'
    assert run_sql(lake.catalog(), "ddb", sql)[1] == [("lower", "upper", 2, 1)]


def test_two_columns_cut_alike_at_a_nul_each_with_renamed_keys(lake: Lake) -> None:
    """``a\\0b`` and ``a\\0c`` are ``a`` and ``a_1`` to DuckDB; each rebuilds its own struct."""
    image = {"a\0b": {"M": {"in-side": {"S": "x"}}}, "a\0c": {"M": {"x-y": {"S": "y"}}}}
    lake.write([event("INSERT", "a", 1, image=image)])
    lake.apply()
    table = lake.catalog().load_table("ddb.orders_table")
    got, want = _both(table, "select pk, a, a_1 from t")
    assert got == want == [("a", {"in-side": "x"}, {"x-y": "y"})]
