"""The export-files source: the manifests read, the check pass, each data file converted."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ddblake.gluejob.errors import DataFileError, LoadRefused, caller_arn, s3_error_code, s3_problem
from ddblake.gluejob.manifest import (
    COPY_AGAIN,
    FILES,
    SUMMARY,
    ManifestEntry,
    check_data_file,
    check_export_summary,
    data_lines,
    export_folder,
    in_folder,
    locate_data_files,
    parse_manifest_files,
)
from ddblake.gluejob.rules import Rules, export_line, export_version_from_us, parse_time_us


def missing_data_file(entry: ManifestEntry) -> str:
    listed = f" (listed as {entry.listed})" if entry.listed and entry.listed != entry.key else ""
    return (
        f"manifest-files.json lists it{listed}, found relative to --EXPORT_PATH as `ddblake load "
        "--from-export` finds it: copy the whole export folder (an incremental export's data files are in "
        "the AWSDynamoDB/data/ folder beside it), or export the table again"
    )


GetObject = Callable[[str, str], bytes]
"""``(bucket, key) -> bytes``: an S3 read that raises the client's error (the tests pass fakes)."""


@dataclass(frozen=True)
class ExportPlan:
    """An export folder read and checked as far as its manifests go.

    Attributes:
        bucket: the export's bucket.
        folder: the export folder's key (``--EXPORT_PATH``'s).
        rules: how its lines become rows.
        entries: its data files, ``key`` resolved relative to ``folder``.
    """

    bucket: str
    folder: str
    rules: Rules
    entries: tuple[ManifestEntry, ...]


def read_export(
    get: GetObject,
    table: str,
    export_path: str,
    key_names: tuple[str, ...],
    principal: Callable[[], str] = caller_arn,
) -> ExportPlan:
    """Read and check an export's manifests, before Spark reads any data file.

    Raises:
        LoadRefused: ``manifest-summary.json`` is not in the folder (a parent or ``data/`` folder
            was given), a manifest is missing, damaged or denied, the export is of another table or
            not DYNAMODB_JSON, its counts do not add up, or a full export comes without ``--KEYS``.
    """
    bucket, folder = export_folder(export_path)
    head = f"ddblake glue load of {table}: export {export_path} refused, nothing loaded"

    def read(name: str, missing: str) -> bytes:
        key = in_folder(folder, name)
        try:
            return bytes(get(bucket, key))
        except Exception as e:
            if not s3_error_code(e):
                raise
            problem = s3_problem(
                e,
                action="s3:GetObject",
                bucket=bucket,
                key=key,
                principal=principal(),
                missing=missing,
                arg="--EXPORT_PATH",
            )
            raise LoadRefused(f"{head}: {problem}") from e

    data = read(
        SUMMARY,
        "--EXPORT_PATH must be the export's own folder, s3://<bucket>/<prefix>/AWSDynamoDB/<export id>/ "
        f"(the one holding {SUMMARY}), not its parent or its data/ folder",
    )
    try:
        summary = json.loads(data)
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        raise LoadRefused(f"{head}: {SUMMARY} is not valid JSON ({e}){COPY_AGAIN}") from e
    check_export_summary(summary, table, export_path)
    incomplete = f"the export is incomplete{COPY_AGAIN}"
    try:
        entries = parse_manifest_files(read(FILES, incomplete).decode("utf-8"))
        listed = sum(e.item_count for e in entries)
        total = int(summary["itemCount"])
        incremental = summary.get("exportType") == "INCREMENTAL_EXPORT" or "exportFromTime" in summary
        export_us = None if incremental else parse_time_us(str(summary["exportTime"]))
    except (ValueError, KeyError, TypeError) as e:
        problem = f"{type(e).__name__}: {e}"
        raise LoadRefused(
            f"{head}: its manifests are not what DynamoDB writes ({problem}){COPY_AGAIN}"
        ) from e
    if listed != total:
        raise LoadRefused(
            f"{head}: {SUMMARY} says {total} item(s) but {FILES} lists {listed} in its data files{COPY_AGAIN}"
        )
    if not incremental and not key_names:
        raise LoadRefused(
            f"{head}: it is a full export, whose items carry no key schema: pass --KEYS hash[,range] (the "
            f"table's key attributes, hash first)"
        )
    export_arn = str(summary.get("exportArn") or folder)
    rules = Rules(
        table=table,
        load_id=export_arn.rsplit("/", 1)[-1],
        key_names=key_names,
        version_us=0 if export_us is None else export_version_from_us(export_us),
        incremental=incremental,
        view=summary.get("outputView"),
        seq=None if export_us is None else str(export_us),
    )
    manifest_key = str(summary.get("manifestFilesS3Key") or FILES)
    return ExportPlan(bucket, folder, rules, tuple(locate_data_files(entries, folder, manifest_key)))


def check_entry(
    get: GetObject, bucket: str, entry: ManifestEntry, rules: Rules, principal: Callable[[], str] = caller_arn
) -> str | None:
    """What is wrong with one data file (read, checked, every line converted but not written);
    None when nothing is. Runs in a Spark task: it returns the problem instead of raising, so the
    driver refuses the export with one line."""
    try:
        data = bytes(get(bucket, entry.key))
    except Exception as e:
        if not s3_error_code(e):
            raise
        return s3_problem(
            e,
            action="s3:GetObject",
            bucket=bucket,
            key=entry.key,
            principal=principal(),
            missing=missing_data_file(entry),
            arg="--EXPORT_PATH",
        )
    return check_data_file(data, entry, rules)


def refusal(table: str, export_path: str, problems: Sequence[str]) -> str:
    """The check pass's one line: the first problem, and how many more there are."""
    more = f" (and {len(problems) - 1} more problem(s) in other data files)" if len(problems) > 1 else ""
    return f"ddblake glue load of {table}: export {export_path} refused, nothing loaded: {problems[0]}{more}"


def file_rows(data: bytes, where: str, rules: Rules, ingested_us: int) -> Iterator[bytes]:
    """The raw-log lines of one (checked) data file; a line that fails names the table, file and line.

    Raises:
        DataFileError: a line cannot be converted (the check pass makes this one a file changed
            since it was checked).
    """
    for number, line in data_lines(gzip.decompress(data)):
        try:
            yield export_line(line, rules, ingested_us)
        except ValueError as e:
            raise DataFileError(f"ddblake glue load of {rules.table}: {where} line {number}: {e}") from e


# --- connector: the key check before any row is written ---------------------------------------------
