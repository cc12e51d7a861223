"""The Glue job's arguments, the connector's run record and key check, and its entry point."""

from __future__ import annotations

import functools
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ddblake.gluejob.errors import (
    MISSING,
    DataFileError,
    LoadRefused,
    caller_arn,
    s3_error_code,
    s3_problem,
    split_s3,
)
from ddblake.gluejob.exportfiles import check_entry, file_rows, missing_data_file, read_export, refusal
from ddblake.gluejob.manifest import ManifestEntry
from ddblake.gluejob.rules import (
    Rules,
    chunks,
    gzip_lines,
    item_from_row,
    key_names_arg,
    raw_file_key,
    row_line,
    version_time_from_us,
)


def keyless_filter(
    columns: Sequence[str], item_fields: Sequence[str] | None, key_names: Sequence[str]
) -> str:
    """The Spark SQL condition that holds for a connector row missing a ``--KEYS`` attribute.

    ``columns`` are the DataFrame's; ``item_fields`` the fields of its ``Item`` struct, if it has
    one (:func:`item_from_row` reads the item from there). The merged schema tells at no cost
    whether any item holds each name; the count of rows matching the condition, whether all do.

    Raises:
        ValueError: no item of the table holds a named attribute (not in the merged schema).
    """
    prefix, fields = (
        ("Item.", item_fields) if "Item" in columns and item_fields is not None else ("", columns)
    )
    absent = [n for n in key_names if n not in fields]
    if absent:
        raise ValueError(
            f"no item holds attribute {absent[0]!r} named in --KEYS {','.join(key_names)}: --KEYS must name "
            "the table's key attributes, hash first"
        )
    return " OR ".join(f"{prefix}`{n.replace('`', '``')}` IS NULL" for n in key_names)


def resolve_args(argv: Sequence[str]) -> dict[str, str]:
    """``--NAME value`` pairs as Glue passes job arguments (a stand-in for getResolvedOptions)."""
    out: dict[str, str] = {}
    it = iter(argv)
    for token in it:
        if token.startswith("--"):
            value = next(it, "")
            out[token[2:]] = value
    return out


_REQUIRED = {"export-files": ("EXPORT_PATH",), "connector": ("TABLE_ARN", "EXPORT_BUCKET")}
_HINTS = {
    "TABLE": "<the DynamoDB table's name>",
    "LAKE": "s3://<lake bucket>[/<prefix>] (the lake)",
    "EXPORT_PATH": "s3://<bucket>/<prefix>/AWSDynamoDB/<export id>/ (the export's own folder, the one "
    "holding manifest-summary.json)",
    "TABLE_ARN": "arn:aws:dynamodb:<region>:<account>:table/<name> (the table to export)",
    "EXPORT_BUCKET": "<bucket> (where the connector exports the table)",
}


def job_settings(args: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """The job's source and ``--KEYS``, every argument its source needs checked before Spark starts.

    Raises:
        ValueError: an unknown ``--SOURCE``, a missing or malformed ``--KEYS`` (see
            :func:`key_names_arg`), a missing argument, or a location that is not ``s3://``; the
            message names the argument and the form it takes.
    """
    source = args.get("SOURCE", "export-files")
    key_names = key_names_arg(args, source)
    for name in ("TABLE", "LAKE", *_REQUIRED[source]):
        if not args.get(name, "").strip():
            raise ValueError(
                f"--{name} is missing: --SOURCE {source} needs --{name} {_HINTS[name]}; nothing read or "
                "written"
            )
    for name in ("LAKE", "EXPORT_PATH"):
        if name in ("LAKE", *_REQUIRED[source]) and not args[name].startswith("s3://"):
            raise ValueError(
                f"--{name} {args[name]!r} is not an s3:// location: pass --{name} {_HINTS[name]}; nothing "
                "read or written"
            )
    return source, key_names


def load_state_key(lake_prefix: str, table: str, name: str) -> str:
    """The S3 key of ``name`` among a table's load states: ``<lake>/state/load/<table>/<name>``."""
    return "/".join(p for p in (lake_prefix.strip("/"), "state", "load", table, name) if p)


def connector_state_key(lake_prefix: str, table: str) -> str:
    """The S3 key of the connector source's run record: ``<lake>/state/load/<table>/glue-connector.json``."""
    return load_state_key(lake_prefix, table, "glue-connector.json")


def export_state_key(lake_prefix: str, table: str, export_id: str) -> str:
    """The S3 key of an export-files load's record: ``<lake>/state/load/<table>/glue-export-<id>.json``
    (``ddblake.load.state.GLUE_EXPORT``), which ``ddblake reconcile`` reads to name the load."""
    name = f"glue-export-{export_id}.json"
    return load_state_key(lake_prefix, table, name)


def minute_versioned_loads(lake_prefix: str, table: str, objects: Iterable[tuple[str, bytes]]) -> list[str]:
    """The export loads of ``ddblake load --from-export`` in the lake whose rows are versioned to the
    minute (an older ddblake's, or one against a non-AWS endpoint), by name, from ``objects``
    (key, body) under ``state/load/<table>/``.

    The job versions export rows to the second; rows of the two rules do not order against each
    other (``ddblake.load.service.export_versions``), so a stale row could win.
    """
    prefix = load_state_key(lake_prefix, table, "export-")
    found = []
    for key, body in objects:
        name = key.rsplit("/", 1)[-1]
        if not key.startswith(prefix) or not name.endswith(".json") or name == "export-request.json":
            continue
        try:
            doc = json.loads(body)
        except ValueError:
            continue  # a damaged state: ddblake load names it; it holds no rule to compare
        options = doc.get("options") if isinstance(doc, dict) else None
        if doc.get("kind") == "export" and (options or {}).get("versions", "minute") != "second":
            found.append(name.removesuffix(".json"))
    return sorted(found)


def _lake_loads(bucket: str, lake_prefix: str, table: str) -> Iterator[tuple[str, bytes]]:
    prefix = load_state_key(lake_prefix, table, "export-")
    for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"], _get_object(bucket, obj["Key"])


def export_record(rules: Rules, started_us: int, finished_us: int) -> dict[str, Any]:
    """What an export-files run records once every data file is in the raw log: the export's ID (in
    its rows' event IDs), their version time, whether it was incremental, and when the job ran."""
    return {
        "load_id": rules.load_id,
        "version_us": rules.version_us,
        "incremental": rules.incremental,
        "started_us": started_us,
        "finished_us": finished_us,
    }


def connector_run(
    previous: Mapping[str, Any] | None, load_id: str | None, run_id: str | None, now_us: int
) -> dict[str, Any]:
    """The load ID and start time of a connector run: those of an unfinished earlier run, if any.

    A job that failed midway left raw files whose rows carry its load ID (in their event IDs) and a
    version from its start. A rerun that took a new ID and start would write every item again
    under new event IDs, and one that kept the ID but took a new start would write the same event
    IDs at new times, which the history's duplicate screen (it looks at the new events' times)
    cannot match: either way the history would hold the load twice. Going on with the earlier
    run's ID and start gives every row the same event ID and event time, so apply drops the repeats.
    A finished record, or an explicit ``--LOAD_ID`` naming another load, starts a new load.

    An explicit ``--LOAD_ID`` equal to the *finished* record's ID is refused: its rows would repeat
    that load's event IDs at a new version, which the duplicate screen does not match either, so
    the history would hold both loads. (Only the last run's record is kept: an ID used before it
    is not caught.)

    Raises:
        ValueError: ``load_id`` is the ID of the finished load ``previous`` records.
    """
    if (
        isinstance(previous, Mapping)
        and previous.get("finished_us")
        and load_id
        and load_id == previous.get("load_id")
    ):
        raise ValueError(
            f"--LOAD_ID {load_id!r} is the ID of the connector load that already finished (its record "
            "says so); loading again under it would put a second copy of every item in the history "
            "under the same event IDs at a new version. Pass a new --LOAD_ID, or none (the job run ID is "
            "used); nothing was read or written"
        )
    if (
        isinstance(previous, Mapping)
        and not previous.get("finished_us")
        and isinstance(previous.get("load_id"), str)
        and isinstance(previous.get("started_us"), int)
        and (not load_id or load_id == previous["load_id"])
    ):
        return {"load_id": previous["load_id"], "started_us": previous["started_us"], "finished_us": None}
    return {"load_id": load_id or run_id or uuid.uuid4().hex, "started_us": now_us, "finished_us": None}


# --- Glue entry point (runs only inside a Glue job) -----------------------------------------------


@functools.cache
def _s3() -> Any:
    """One S3 client per Glue process (the driver, each executor): a client is costly to build
    (credentials, endpoint rules) and safe to share between threads, and a job calls S3 for every
    data file twice (its check, its conversion) and for every raw file."""
    import boto3  # a Glue driver and executor have boto3

    return boto3.client("s3")


def _put_files(lines: Iterable[bytes], lake: str, table: str) -> Iterator[int]:
    s3 = _s3()
    bucket, prefix = split_s3(lake)
    for batch in chunks(lines):
        key = raw_file_key(prefix, table, time.time_ns() // 1000)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=gzip_lines(batch))
        except Exception as e:
            if not s3_error_code(e):
                raise
            problem = s3_problem(
                e,
                action="s3:PutObject",
                bucket=bucket,
                key=key,
                principal=caller_arn(),
                missing="",
                arg="--LAKE",
            )
            raise DataFileError(f"ddblake glue load of {table}: writing the raw log: {problem}") from e
        yield len(batch)


def _get_object(bucket: str, key: str) -> bytes:
    return bytes(_s3().get_object(Bucket=bucket, Key=key)["Body"].read())


def _lake_object(table: str, action: str, call: Callable[[], Any], bucket: str, key: str) -> Any:
    """``call()`` on the lake's run record; an S3 refusal becomes a :class:`LoadRefused` line."""
    try:
        return call()
    except Exception as e:
        if not s3_error_code(e) or s3_error_code(e) in MISSING:
            raise
        problem = s3_problem(
            e, action=action, bucket=bucket, key=key, principal=caller_arn(), missing="", arg="--LAKE"
        )
        raise LoadRefused(f"ddblake glue load of {table}: {problem}; nothing written") from e


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - needs Glue
    """Run the job (Glue calls the script; arguments come from the job's parameters)."""
    args = resolve_args(sys.argv[1:] if argv is None else argv)
    table = args.get("TABLE", "").strip()
    try:
        source, key_names = job_settings(args)
    except ValueError as e:  # before Spark starts: nothing read, nothing written
        raise LoadRefused(f"ddblake glue load of {table or '(no --TABLE)'}: {e}") from e
    lake = args["LAKE"].rstrip("/")
    job_started = time.time_ns() // 1000

    from awsglue.context import GlueContext  # type: ignore[import-not-found]
    from awsglue.job import Job  # type: ignore[import-not-found]
    from pyspark.context import SparkContext  # type: ignore[import-not-found]

    sc = SparkContext.getOrCreate()
    glue = GlueContext(sc)
    job = Job(glue)
    job.init(args.get("JOB_NAME", "ddblake-load"), args)
    state_s3 = _s3()
    lake_bucket, lake_prefix = split_s3(lake)
    state_key = connector_state_key(lake_prefix, table)
    run: dict[str, Any] = {}
    if source == "connector":
        where = f"s3://{lake_bucket}/{state_key}"
        try:
            previous = json.loads(
                _lake_object(
                    table,
                    "s3:GetObject",
                    lambda: state_s3.get_object(Bucket=lake_bucket, Key=state_key)["Body"].read(),
                    lake_bucket,
                    state_key,
                )
            )
        except ValueError:  # damaged: a new load (its rows may repeat a failed run's, never lose any)
            print(f"ddblake glue load of {table}: {where} is damaged; starting a new load")
            previous = None
        except Exception as e:
            if s3_error_code(e) not in MISSING:
                raise
            previous = None
        try:
            run = connector_run(previous, args.get("LOAD_ID"), args.get("JOB_RUN_ID"), time.time_ns() // 1000)
        except ValueError as e:
            raise LoadRefused(f"ddblake glue load of {table}: {e} (run record {where})") from e
        if previous is not None and run["load_id"] == previous.get("load_id"):
            print(f"ddblake glue load of {table}: going on with unfinished load {run['load_id']}")
        body = json.dumps(run).encode()
        _lake_object(
            table,
            "s3:PutObject",
            lambda: state_s3.put_object(Bucket=lake_bucket, Key=state_key, Body=body),
            lake_bucket,
            state_key,
        )
        rules = Rules(
            table=table,
            load_id=run["load_id"],
            key_names=key_names,
            version_us=version_time_from_us(run["started_us"]),
            export=False,
        )
        options = {
            "dynamodb.export": "ddb",
            "dynamodb.tableArn": args["TABLE_ARN"],
            "dynamodb.s3.bucket": args["EXPORT_BUCKET"],
            "dynamodb.s3.prefix": args.get("EXPORT_PREFIX", "ddblake-glue-export/"),
            "dynamodb.unnestDDBJson": False,
        }
        if args.get("ROLE_ARN"):
            options["dynamodb.sts.roleArn"] = args["ROLE_ARN"]
        if args.get("EXPORT_BUCKET_OWNER"):
            options["dynamodb.s3.bucketOwner"] = args["EXPORT_BUCKET_OWNER"]
        frame = glue.create_dynamic_frame.from_options(connection_type="dynamodb", connection_options=options)
        # Read once: the key check below counts over every row and the conversion reads them
        # again; cached (spilling to the workers' disks), the second pass does not read and
        # parse the whole export from S3 a second time.
        from pyspark.storagelevel import StorageLevel  # type: ignore[import-not-found]

        df = frame.toDF().persist(StorageLevel.MEMORY_AND_DISK)
        item_type: Any = df.schema["Item"].dataType if "Item" in df.columns else None
        item_fields = list(item_type.fieldNames()) if hasattr(item_type, "fieldNames") else None
        try:  # before any raw file: rows written with wrong keys would stay in the lake for good
            keyless = df.where(keyless_filter(df.columns, item_fields, key_names)).count()
        except ValueError as e:
            raise LoadRefused(f"ddblake glue load of {table}: {e}; nothing written") from e
        if keyless:
            raise LoadRefused(
                f"ddblake glue load of {table}: {keyless} item(s) lack an attribute of --KEYS "
                f"{','.join(key_names)}, which every item of the table holds: --KEYS must name the table's "
                "key attributes, hash first; nothing written"
            )

        def convert(rows: Iterable[Any]) -> Iterator[int]:
            ingested = time.time_ns() // 1000

            def lines() -> Iterator[bytes]:
                for r in rows:
                    try:
                        yield row_line(item_from_row(r.asDict(recursive=True)), rules, ingested)
                    except ValueError as e:
                        raise DataFileError(f"ddblake glue load of {table}: a connector row: {e}") from e

            return _put_files(lines(), lake, table)

        written = df.rdd.mapPartitions(convert).sum()
        df.unpersist()
    else:
        export_path = args["EXPORT_PATH"]
        if args.get("LOAD_ID"):
            print(f"ddblake glue load of {table}: --LOAD_ID ignored: export rows take the export's ID")
        plan = read_export(_get_object, table, export_path, key_names)
        bucket, rules = plan.bucket, plan.rules
        rdd = sc.parallelize(list(plan.entries), max(1, len(plan.entries)))
        problems = rdd.map(lambda e: check_entry(_get_object, bucket, e, rules)).filter(lambda p: p).collect()
        if problems:  # nothing written yet: refuse the whole export
            raise LoadRefused(refusal(table, export_path, problems))
        minute = _lake_object(
            table,
            "s3:ListBucket and s3:GetObject",
            lambda: minute_versioned_loads(lake_prefix, table, _lake_loads(lake_bucket, lake_prefix, table)),
            lake_bucket,
            f"{lake_prefix}/state/load/{table}/",
        )
        if minute:
            raise LoadRefused(
                f"ddblake glue load of {table}: the lake holds export load(s) {', '.join(minute)} versioned "
                "to the minute, with which this job's rows (versioned to the second) do not order; load "
                "this export with ddblake load --from-export, which follows the lake's rule; nothing written"
            )

        def convert_file(entry: ManifestEntry) -> int:
            where = f"s3://{bucket}/{entry.key}"
            try:
                data = _get_object(bucket, entry.key)
            except Exception as e:
                if not s3_error_code(e):
                    raise
                problem = s3_problem(
                    e,
                    action="s3:GetObject",
                    bucket=bucket,
                    key=entry.key,
                    principal=caller_arn(),
                    missing=missing_data_file(entry),
                    arg="--EXPORT_PATH",
                )
                raise DataFileError(f"ddblake glue load of {table}: {problem}") from e
            return sum(_put_files(file_rows(data, where, rules, time.time_ns() // 1000), lake, table))

        written = rdd.map(convert_file).sum()
        # The load is whole: its record lets ddblake reconcile name it (docs/load.md, Reconcile).
        key = export_state_key(lake_prefix, table, rules.load_id)
        body = json.dumps(export_record(rules, job_started, time.time_ns() // 1000)).encode()
        _lake_object(
            table,
            "s3:PutObject",
            lambda: state_s3.put_object(Bucket=lake_bucket, Key=key, Body=body),
            lake_bucket,
            key,
        )
    if run:  # the connector's load is whole: a later job starts a new one
        run["finished_us"] = time.time_ns() // 1000
        body = json.dumps(run).encode()
        _lake_object(
            table,
            "s3:PutObject",
            lambda: state_s3.put_object(Bucket=lake_bucket, Key=state_key, Body=body),
            lake_bucket,
            state_key,
        )
    print(f"ddblake glue load of {table}: {written} row(s) written to {lake}/raw/{table}/")
    job.commit()
