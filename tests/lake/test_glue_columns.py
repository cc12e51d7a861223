"""The Glue Data Catalog's copy of a table's columns holds only what Glue accepts.

pyiceberg sends every column of every schema a table has had with each CreateTable and
UpdateTable, and the Glue API refuses a column name over 255 characters or one holding a control
character, and a type over 131,072 characters or holding one (a map key in a struct's type). Any
of those, once in a table, made every later commit of the table fail: apply stopped for good on
Glue, where the same items applied to a local lake. moto's Glue does not check these, so the test's
Glue client checks them as the API documents (docs.aws.amazon.com/glue/latest/webapi/API_Column.html)
and refuses as Glue does.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from lake_helpers import TABLE, event

from ddblake.lake import gluecolumns
from ddblake.lake.apply import Applier, ApplyConfig
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.query import run_sql
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import dump_items

_GLUE_TEXT = re.compile(r"[\t\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def _units(text: str) -> int:
    """Glue's documentation counts lengths in characters in places and in bytes in others: both."""
    return max(
        len(text.encode("utf-16-le", "surrogatepass")) // 2, len(text.encode("utf-8", "surrogatepass"))
    )


def _glue_checks(params: dict[str, Any], **_: Any) -> None:
    """What the Glue API checks of a table input's columns and parameters (moto checks none of it)."""
    columns = params["TableInput"].get("StorageDescriptor", {}).get("Columns", [])
    for column in columns:
        problems = []
        if not 1 <= _units(column["Name"]) <= 255 or not _GLUE_TEXT.fullmatch(column["Name"]):
            problems.append("Name")
        if _units(column.get("Type", "")) > 131_072 or not _GLUE_TEXT.fullmatch(column.get("Type", "")):
            problems.append("Type")
        if _units(column.get("Comment", "")) > 255 or not _GLUE_TEXT.fullmatch(column.get("Comment", "")):
            problems.append("Comment")
        if problems:
            error = {"Code": "ValidationException", "Message": f"1 validation error: {problems}"}
            raise ClientError({"Error": error}, "UpdateTable")
    for key, value in params["TableInput"].get("Parameters", {}).items():
        if not 1 <= _units(key) <= 255 or _units(value) > 512_000 or not _GLUE_TEXT.fullmatch(key):
            error = {"Code": "ValidationException", "Message": f"1 validation error: Parameters {key[:40]!r}"}
            raise ClientError({"Error": error}, "UpdateTable")


LONG = "views_" + "x" * 300
IMAGE = {
    LONG: {"N": "1"},
    "line\nbreak": {"S": "two lines"},
    "notes": {"M": {"k\u0001ey": {"S": "v"}, "ok": {"S": "w"}}},
    "🎉" * 130: {"S": "260 UTF-16 units, 520 UTF-8 bytes"},
    "日本語" * 30: {"S": "90 characters, 270 UTF-8 bytes"},
    "plain": {"S": "p"},
}


@pytest.fixture
def glue_lake(moto_s3, monkeypatch: pytest.MonkeyPatch) -> tuple[LakeConfig, Any]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    # moto's Glue is shared by the session's tests: a database of this test's own
    monkeypatch.setenv("DDBLAKE_NAMESPACE", f"glue_columns_{uuid.uuid4().hex[:8]}")
    config = LakeConfig.build(lake=f"s3://{moto_s3.bucket}/glue-columns", catalog="glue")
    client = boto3.client("glue", endpoint_url=moto_s3.endpoint)
    for operation in ("CreateTable", "UpdateTable"):
        client.meta.events.register(f"provide-client-params.glue.{operation}", _glue_checks)
    return config, client


def _apply(config: LakeConfig, client: Any, *events: Any) -> None:
    storage = config.storage()
    writer = RawLogWriter(storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
    for ev in events:
        writer.add(ev.to_line())
    writer.flush()
    catalog = open_catalog(config, storage, glue_client=client)
    apply_config = ApplyConfig.build(table=TABLE, lake=config, once=True)
    Applier(apply_config, storage=storage, catalog=catalog).run_once()


def test_names_and_types_glue_refuses_are_shown_to_it_in_a_form_it_takes(
    glue_lake: tuple[LakeConfig, Any],
) -> None:
    config, client = glue_lake
    ns = config.namespace
    _apply(config, client, event("INSERT", "a", 1, image=IMAGE))
    _apply(config, client, event("MODIFY", "a", 2, image={**IMAGE, "plain": {"S": "q"}}))  # an UpdateTable
    catalog = open_catalog(config, config.storage(), glue_client=client)
    # The lake keeps every name exactly: in the Iceberg schema, in dump, in query.
    names = catalog.load_table(f"{ns}.orders_table").schema().column_names
    assert LONG in names and "line\nbreak" in names
    (line,) = dump_items(catalog, ns, TABLE)
    assert json.loads(line)["Item"] == {"pk": {"S": "a"}, **IMAGE, "plain": {"S": "q"}}
    assert run_sql(catalog, ns, "select plain from orders_table")[1] == [("q",)]
    # Glue's copy: every column, each in a form Glue takes, the others as they are.
    table = client.get_table(DatabaseName=ns, Name="orders_table")["Table"]
    columns = {c["Parameters"]["iceberg.field.id"]: c for c in table["StorageDescriptor"]["Columns"]}
    schema = catalog.load_table(f"{ns}.orders_table").schema()
    assert len(columns) == len(schema.fields)
    shown = {f.name: columns[str(f.field_id)] for f in schema.fields}
    assert shown["plain"]["Name"] == "plain" and shown["plain"]["Type"] == "string"
    assert shown["line\nbreak"]["Name"] == "line%0Abreak"
    assert shown["notes"]["Type"] == "struct<k%01ey:string,ok:string>"
    long = shown[LONG]["Name"]
    assert _units(long) == 255 and long.startswith("views_xxx") and re.search(r"~[0-9a-f]{16}$", long)
    party = shown["🎉" * 130]["Name"]
    assert _units(party) <= 255 and party.startswith("🎉")
    japanese = shown["日本語" * 30]["Name"]
    assert _units(japanese) <= 255 and japanese.startswith("日本語") and japanese != "日本語" * 30
    assert len({c["Name"] for c in columns.values()}) == len(columns)  # no two alike


def test_what_glue_is_shown_is_unique_and_within_its_limits() -> None:
    taken: set[str] = set()
    names = ["a\nb", "a%0Ab", "x" * 300, "x" * 300 + "y", "ok"]
    shown = [gluecolumns.glue_name(n, taken) for n in names]
    assert shown[0] == "a%0Ab" and shown[1] != "a%0Ab"  # the second one alike gets a hash
    assert shown[2] != shown[3] and all(_units(s) <= 255 for s in shown)
    assert shown[4] == "ok"
    assert all(_GLUE_TEXT.fullmatch(s) for s in shown)
    assert gluecolumns.glue_type("struct<a:" + "x" * 131_072 + ">") == "string"
    # An attribute named like the hashed name another one gets: both still distinct.
    first = gluecolumns.glue_name("a\nb", {"a%0Ab"})
    assert first.startswith("a%0Ab~")
    crafted = [c["Name"] for c in gluecolumns.glue_columns([{"Name": n} for n in ("a\nb", "a%0Ab", first)])]
    assert len(set(crafted)) == 3 and "a%0Ab" in crafted and first in crafted
    assert gluecolumns.glue_name("\ud800\ufffe", set()) == "%D800%FFFE"
    assert gluecolumns.glue_comment("d" * 300) == "d" * 252 + "…"  # 255 UTF-8 bytes
    assert _units(gluecolumns.glue_comment("é" * 300)) <= 255


def test_table_parameters_glue_refuses_are_left_out_of_its_copy() -> None:
    given = {
        "table_type": "ICEBERG",
        "metadata_location": "s3://b/l/metadata/00001.metadata.json",
        "ddblake.untyped-columns": "{" + "x" * 512_001 + "}",
        "k" * 256: "v",
        "bad\x00key": "v",
        "ddblake.buckets": "16",
        "multi-line": "a\nb",  # values have no pattern in the API: kept
    }
    assert gluecolumns.glue_parameters(given) == {
        "table_type": "ICEBERG",
        "metadata_location": "s3://b/l/metadata/00001.metadata.json",
        "ddblake.buckets": "16",
        "multi-line": "a\nb",
    }


def test_expiry_on_glue_removes_unused_schemas_and_commits(glue_lake: tuple[LakeConfig, Any]) -> None:
    from ddblake.lake import maintain

    config, client = glue_lake
    ns = config.namespace
    for i in range(4):  # a schema per batch
        _apply(config, client, event("INSERT", f"k{i}", i, image={f"attr_{i}": {"S": str(i)}}))
    catalog = open_catalog(config, config.storage(), glue_client=client)
    before = len(catalog.load_table(f"{ns}.orders_table").metadata.schemas)
    apply_config = ApplyConfig.build(
        table=TABLE, lake=config, once=True, keep_snapshots=1, keep_min_snapshots=0, keep_replaced_minutes=0
    )
    maintain.maintain(Applier(apply_config, storage=config.storage(), catalog=catalog), batch=1)
    after = catalog.load_table(f"{ns}.orders_table")
    assert len(after.metadata.schemas) == 1 < before
    table = client.get_table(DatabaseName=ns, Name="orders_table")["Table"]
    assert table["Parameters"]["metadata_location"] == after.metadata_location
    assert sorted(json.loads(x)["Item"]["pk"]["S"] for x in dump_items(catalog, ns, TABLE)) == [
        "k0",
        "k1",
        "k2",
        "k3",
    ]
