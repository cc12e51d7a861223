"""``ddblake demo``: the reference architecture's walkthrough, on this machine, in seconds.

It replays the reference document's three ``aws dynamodb put-item`` calls (plus one put and delete of
another item) against DynamoDB Local, captures the stream into a lake, and prints the raw change log.
DynamoDB Local runs inside a context manager, so it is stopped on success, on error and on
SIGINT/SIGTERM: the demo never leaves a JVM behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from ddblake.aws.clients import build_dynamodb_clients, translate_error
from ddblake.capture.service import CaptureConfig, run_capture
from ddblake.changes.model import ChangeEvent
from ddblake.cli.signals import sigterm_unwinds
from ddblake.errors import UsageError
from ddblake.lake.rawlog import iter_raw_lines, table_prefix
from ddblake.lake.storage import Storage, deepest_existing
from ddblake.local.dynamodb_local import DynamoDBLocal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from ddblake.lake.catalog import LakeConfig

TABLE: Final = "example-ddb-table"
DESIGNATIONS: Final = ("Architect", "Sr. Architect", "Developer Advocate")
OTHER_ITEM: Final = {"id": {"S": "531337"}, "name": {"S": "Eve"}, "Designation": {"S": "Intern"}}


def create_example_table(client: DynamoDBClient, table: str = TABLE) -> None:
    """The reference's table: ``id`` (S) partition key, ``name`` (S) sort key, NEW_AND_OLD_IMAGES stream."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "name", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "name", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def reference_writes(client: DynamoDBClient, table: str = TABLE) -> None:
    """The reference document's three put-item calls, argument for argument."""
    for designation in DESIGNATIONS:
        client.put_item(
            TableName=table,
            Item={"id": {"S": "864732"}, "name": {"S": "Adam"}, "Designation": {"S": designation}},
            ReturnConsumedCapacity="TOTAL",
        )


def _value(attr: Any) -> str:
    """A DynamoDB JSON value, readable: strings and numbers bare, the rest compact JSON."""
    if isinstance(attr, dict) and len(attr) == 1:
        tag, inner = next(iter(attr.items()))
        if tag in ("S", "N"):
            return str(inner)
        if tag == "BOOL":
            return "true" if inner else "false"
        if tag == "NULL":
            return "null"
    return json.dumps(attr, separators=(",", ":"), ensure_ascii=False)


def _detail(event: ChangeEvent, width: int = 40) -> str:
    if event.op == "REMOVE":
        return "(deleted)"
    image = event.new_image or {}
    if "Designation" in image:
        return _value(image["Designation"])
    text = ", ".join(f"{k}={_value(v)}" for k, v in sorted(image.items()) if k not in event.keys)
    return text if len(text) <= width else text[: width - 1] + "…"


def _sort_key(event: ChangeEvent) -> tuple[int, int, str]:
    seq = int(event.sequence) if event.sequence and event.sequence.isdigit() else -1
    return event.event_time_us, seq, event.event_id


def format_change_log(events: list[ChangeEvent]) -> str:
    """The change log as a text table, in event order (time, then stream sequence number)."""
    rows = [("TIME (UTC)", "OP", "KEY", "DESIGNATION / NEW IMAGE", "SOURCE")]
    for event in sorted(events, key=_sort_key):
        when = dt.datetime.fromtimestamp(event.event_time_us / 1_000_000, tz=dt.UTC)
        key = ", ".join(f"{k}={_value(v)}" for k, v in sorted(event.keys.items()))
        rows.append((when.strftime("%Y-%m-%d %H:%M:%S"), event.op, key, _detail(event), event.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def read_change_log(lake: str, table: str = TABLE) -> list[ChangeEvent]:
    """Every event of the table's raw change log."""
    storage = Storage.from_uri(lake)
    return [ChangeEvent.from_line(line) for _, line in iter_raw_lines(storage, table)]


def run_demo(lake: str | None) -> int:
    """Run the walkthrough; returns the exit code.

    Args:
        lake: the lake to write (kept afterwards); a new temporary directory when None.
    """
    if lake is not None:
        _check_fresh_lake(lake)
    lake = lake or tempfile.mkdtemp(prefix="ddblake-demo-")
    try:
        return _run(lake)
    except (ClientError, BotoCoreError) as e:
        raise translate_error(e, action="the demo's DynamoDB calls", table=TABLE) from e


def _check_fresh_lake(lake: str) -> None:
    """The demo's DynamoDB Local is new and in memory each run, so its stream cannot continue a lake
    an earlier run wrote (capture would report a stream gap). Refuse such a lake up front, and a
    lake that is not a local directory: the demo's catalog is the lake's own SQLite file
    (:func:`demo_lake_config`), which an S3 lake cannot hold.

    Raises:
        UsageError: ``lake`` is not a local directory, is a file, is a directory that is not empty,
            or cannot be written (checked before DynamoDB Local starts).
    """
    if "://" in lake and not lake.startswith("file://"):
        raise UsageError(
            f"demo lake {lake} is not a local directory: the demo keeps its whole lake, catalog "
            "included, on this machine; pass a new or empty directory as --lake, or omit --lake"
        )
    path = Path(lake.removeprefix("file://")).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "is not a directory" if not path.is_dir() else "is not empty (an earlier demo?)"
        raise UsageError(
            f"demo lake {lake} {what}: the demo starts a new table each run; pass a new or empty "
            "directory as --lake, or omit --lake for a temporary one"
        )
    nearest = Path(deepest_existing(str(path.absolute())))  # the lake, or the folder it would go in
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        problem = "is not a directory" if not nearest.is_dir() else "is not writable by this user"
        subject = "" if nearest == path.absolute() else f" cannot be created: {nearest}"
        raise UsageError(
            f"demo lake {lake}{subject} {problem}; pass a writable directory as --lake, or omit --lake "
            "for a temporary one"
        )


def _run(lake: str) -> int:
    out = sys.stdout
    with sigterm_unwinds(), DynamoDBLocal(in_memory=True) as ddb:
        print(f"DynamoDB Local: {ddb.endpoint} (in memory, pid {ddb.pid})", file=out, flush=True)
        clients = build_dynamodb_clients(ddb.endpoint)
        create_example_table(clients.dynamodb)
        print(f"created table {TABLE} (id S, name S; stream NEW_AND_OLD_IMAGES)", file=out)
        reference_writes(clients.dynamodb)
        print("put id=864732/name=Adam three times: " + ", ".join(DESIGNATIONS), file=out)
        clients.dynamodb.put_item(TableName=TABLE, Item=OTHER_ITEM)
        clients.dynamodb.delete_item(
            TableName=TABLE, Key={"id": OTHER_ITEM["id"], "name": OTHER_ITEM["name"]}
        )
        print("put and deleted id=531337/name=Eve", file=out, flush=True)
        config = CaptureConfig.build(table=TABLE, lake=lake, endpoint_url=ddb.endpoint, once=True)
        stats = run_capture(config, clients=clients)
        print(f"captured {stats.records} changes into {stats.files} raw file(s)\n", file=out)
        print(format_change_log(read_change_log(lake)), file=out)
    print("DynamoDB Local stopped\n", file=out)
    _show_tables(lake, out)
    storage = Storage.from_uri(lake)
    print(f"\nlake: {storage.uri()}", file=out)
    print(f"  raw change log: {storage.uri(table_prefix(TABLE))}/", file=out)
    namespace = demo_lake_config(lake).namespace
    print(f"  Iceberg catalog: {storage.uri('catalog.db')} (namespace {namespace})", file=out)
    # The catalog options spelled out: the line must read the demo's catalog whatever DDBLAKE_CATALOG,
    # DDBLAKE_CATALOG_URI or DDBLAKE_NAMESPACE the shell it is pasted into holds; the lake by its
    # absolute path (storage.root: the demo's lake is local), so that it works from any folder.
    kept = [name for name in ("DDBLAKE_CATALOG_URI", "DDBLAKE_CONFIG") if name in os.environ]
    unset = f"env {' '.join(f'-u {name}' for name in kept)} " if kept else ""  # a settings file: catalog_uri
    print(
        f"  try: {unset}{shlex.quote(ddblake_command())} query --lake {shlex.quote(storage.root)} "
        f"--catalog sql --namespace {namespace} {shlex.quote(TRY_SQL)}",
        file=out,
    )
    return 0


def ddblake_command() -> str:
    """The ``ddblake`` of this interpreter's environment, by absolute path, so that the ``try:``
    line works from any folder; plain ``ddblake`` when it has none (run as ``python -m``)."""
    script = Path(sys.executable).parent / "ddblake"
    return str(script.absolute()) if script.is_file() else "ddblake"


def demo_lake_config(lake: str) -> LakeConfig:
    """The demo's own catalog: SQLite at ``<lake>/catalog.db``, namespace ``ddb``, whatever
    ``DDBLAKE_CATALOG``, ``DDBLAKE_CATALOG_URI`` or ``DDBLAKE_NAMESPACE`` say.

    The demo prints that catalog, and a shell set up for a deployed lake (``DDBLAKE_CATALOG=glue``)
    must not have it create tables in the real Glue Data Catalog.
    """
    from ddblake.lake.catalog import LakeConfig
    from ddblake.lake.storage import s3_endpoint_from_env
    from ddblake.names import DEFAULT_NAMESPACE

    return LakeConfig(
        lake=lake,
        catalog="sql",
        namespace=DEFAULT_NAMESPACE,
        catalog_uri=None,
        s3_endpoint_url=s3_endpoint_from_env(),
    )


def _show_tables(lake: str, out: TextIO) -> None:
    """Apply the change log to the Iceberg tables and show both through ``query``."""
    from ddblake.lake.apply import ApplyConfig
    from ddblake.lake.catalog import open_catalog
    from ddblake.lake.query import format_rows, run_sql
    from ddblake.lake.service import run_apply

    config = demo_lake_config(lake)
    result = run_apply(ApplyConfig.build(table=TABLE, lake=config, once=True))
    print(result.summary() + "\n", file=out)
    catalog = open_catalog(config, config.storage())
    for title, sql in (
        ("current state (example_ddb_table)", CURRENT_SQL),
        ("change history (example_ddb_table_changes)", HISTORY_SQL),
    ):
        print(f"ddblake query: {title}\n  {sql}", file=out)
        columns, rows = run_sql(catalog, config.namespace, sql)
        print(format_rows(columns, rows, "table"), file=out)


TRY_SQL = "SELECT * FROM example_ddb_table"
CURRENT_SQL = "SELECT id, name, Designation FROM example_ddb_table ORDER BY id, name"
HISTORY_SQL = (
    "SELECT event_time, op, id, name, new_image->>'$.Designation.S' AS designation "
    "FROM example_ddb_table_changes ORDER BY event_time, seq"
)
