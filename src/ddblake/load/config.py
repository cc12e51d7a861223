"""Load settings: one typed, frozen value built from arguments, ``DDBLAKE_*`` environment and defaults.

Precedence is argument, then environment variable, then default — as for capture — so the CLI,
``sync``, a container's environment and tests configure a load the same way. A missing or malformed
value is a :class:`ConfigError` naming the setting and every place that was looked at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ddblake.aws.role_checks import check_external_id, check_role_arn, role_settings
from ddblake.errors import ConfigError
from ddblake.lake.rawlog import DEFAULT_BUFFER_BYTES
from ddblake.settings import MAX_WAIT_SECONDS, env_name, places, required_table
from ddblake.settings import boolean as _bool
from ddblake.settings import optional as _optional
from ddblake.settings import required as _required
from ddblake.settings import sourced as _sourced
from ddblake.settings import value as _value

DEFAULT_READ_PERCENT: Final = 50.0
"""Share of the table's read capacity a Scan load may use (the Glue connector's default, 0.5)."""
ON_DEMAND_ASSUMED_RCU: Final = 12_000.0
"""Read capacity assumed for an on-demand table: what AWS documents a new on-demand table serves at
once (12,000 read request units/s), so a load of a freshly created table does not throttle itself
into a wall; ``--read-percent`` applies to it like to provisioned capacity."""
MAX_SEGMENTS: Final = 1_000_000
"""DynamoDB's limit on Scan ``TotalSegments``."""
DEFAULT_MAX_WORKERS: Final = 16
MAX_WORKERS: Final = 256
LOCAL_PAGE_ITEMS: Final = 1000
"""Scan ``Limit`` against DynamoDB Local: its CPU per item grows with the page (a full 1 MB page
costs it about twice per item what 1,000-item pages do), and it shares the machine with the load."""
LOCAL_WORKERS_PER_CPU: Final = 2
"""Scan threads per CPU against a local endpoint: DynamoDB Local runs on the same cores, and past two
threads a core the load only adds contention (measured: 4 threads beat 16 on 2 cores, bench/load.py)."""
DEFAULT_EXPORT_POLL_SECONDS: Final = 10.0


_SOURCES: Final = {
    "segments": ("--segments", "segments"),
    "workers": ("--workers", "workers"),
    "read_percent": ("--read-percent", "read_percent"),
    "on_demand_rcu": (None, "on_demand_rcu"),
    "buffer_bytes": (None, "load_buffer_bytes"),
    "export_poll_seconds": (None, "export_poll_seconds"),
    "page_items": (None, "page_items"),
}
"""Each numeric setting's flag (None: it has none) and the setting name of its environment variable."""


def _from(field: str) -> str:
    """`` (from --segments or DDBLAKE_SEGMENTS)``: where a setting's value can come from, for messages."""
    flag, setting = _SOURCES[field]
    return f" (from {places(setting, flag)})"


def _key_names(raw: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    if not 1 <= len(names) <= 2:
        raise ValueError("expected <hash key>[,<range key>]")
    return names


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """A converter of an environment value to an int within ``low..high`` (ValueError if not), so
    that an out-of-range ``DDBLAKE_*`` value is reported under the variable's name."""

    def convert(raw: str) -> int:
        number = int(raw)
        if number < low or (high is not None and number > high):
            raise ValueError(f"must be {low}..{high}" if high is not None else f"must be at least {low}")
        return number

    return convert


def _positive(raw: str) -> float:
    number = float(raw)
    if not (number > 0 and math.isfinite(number)):  # inf passes `> 0` and breaks a wait
        raise ValueError("must be a positive number of finite size")
    return number


def _wait(raw: str) -> float:
    """A wait in seconds: positive, finite and at most :data:`~ddblake.settings.MAX_WAIT_SECONDS`."""
    number = _positive(raw)
    if number > MAX_WAIT_SECONDS:
        raise ValueError(f"must be at most {MAX_WAIT_SECONDS:g} seconds (a day)")
    return number


def _percent(raw: str) -> float:
    number = float(raw)
    if not 0 < number <= 150:
        raise ValueError("must be in (0, 150]")
    return number


def _keys_argument(keys: str | tuple[str, ...] | None) -> tuple[str, ...] | None:
    if not keys:
        return None
    if isinstance(keys, tuple):
        return keys
    try:
        return _key_names(keys)
    except ValueError as e:
        raise ConfigError(f"keys: --keys {keys!r} is not valid ({e})") from e


def _source(from_export: str | None, export_to: str | None) -> tuple[dict[str, str | None], str | None]:
    """``from_export`` and ``export_to``: the arguments if either is given, else the environment;
    and where the one set came from (the flag, the variable, the file's key), None for a Scan.

    Raises:
        ConfigError: an argument given empty (an unset shell variable, say), which would otherwise
            fall through to a Scan of the whole table.
    """
    for flag, value in (("--from-export", from_export), ("--export-to", export_to)):
        if value is not None and not value.strip():
            raise ConfigError(
                f"{flag} was given an empty value: pass the export's folder or S3 URI, or leave it out"
            )
    if from_export or export_to:
        given = "--export-to" if export_to else "--from-export"
        return {"from_export": from_export or None, "export_to": export_to or None}, given
    found_from, where_from = _sourced("from_export", "--from-export", None, str)
    found_to, where_to = _sourced("export_to", "--export-to", None, str)
    if found_from and found_to:
        # Name the places actually set (a variable left in the environment, a settings-file key):
        # "--from-export and --export-to" would send the user hunting for flags they never passed.
        raise ConfigError(
            f"{where_from} and {where_to} are both set and exclude each other: load an existing export "
            f"(from_export) or start one (export_to); unset one of them, or pass --from-export or "
            "--export-to, which overrides both"
        )
    where = where_to if found_to else where_from if found_from else None
    return {"from_export": found_from, "export_to": found_to}, where


def _refuse_scan_settings(table: str, export: str, found: list[tuple[str, str, object, str | None]]) -> None:
    """Refuse the Scan settings an export load (``export`` names where it came from) was given by
    argument or environment variable: ``(name, flag, value, where)`` each, as resolved.

    Those of the settings file are not refused, and the caller drops them: a file's
    ``[tables."<name>"]`` section may set ``segments`` for the table's Scan loads while
    ``--from-export`` loads it from an export now and then; a flag or variable set for this run is a
    mistake worth saying. An export reads no table capacity.

    Raises:
        ConfigError: names each flag or variable that set one, and what to do.
    """
    given = [
        (where, f"drop {where}" if where == flag else f"unset {where}")
        for name, flag, value, where in found
        if where in (flag, env_name(name))
        and value not in (None, False)
        and not (name == "read_percent" and value == DEFAULT_READ_PERCENT)  # as __post_init__ takes it
    ]
    if given:
        raise ConfigError(
            f"{', '.join(w for w, _ in given)} set the Scan of table {table!r}, but {export} loads it "
            f"from an export, which reads no table capacity: {' and '.join(fix for _, fix in given)}"
        )


def _refuse_scan_keys(table: str, where: str | None) -> None:
    """Refuse ``--keys`` given to a Scan load, which takes its keys from DescribeTable: the flag was
    set for this run, and ignoring it would hide the mistake. ``DDBLAKE_KEYS`` and the settings
    file's ``keys`` serve the table's export loads (a shell or container set up for them, a ``sync``
    whose load never runs) and are dropped by the caller, as an export load drops the file's Scan
    settings.

    Raises:
        ConfigError: names the flag, and what to do.
    """
    if where != "--keys":
        return
    raise ConfigError(
        f"--keys named the key attributes of table {table!r}, but this is a Scan load, which takes "
        "them from DescribeTable (--keys is for a full export loaded without it: --from-export or "
        "--export-to): drop --keys"
    )


@dataclass(frozen=True)
class LoadConfig:
    """Everything ``ddblake load`` (and ``sync``'s first load) needs.

    Attributes:
        table: the DynamoDB table name (also the raw-log folder).
        lake: the lake, a directory or ``s3://bucket/prefix``.
        endpoint_url: DynamoDB endpoint override (DynamoDB Local); None follows boto3's chain.
        segments: Scan ``TotalSegments``; None picks from the table's size (see ``plan_segments``).
        workers: threads scanning at once; None means ``min(segments, 16)``, and against a local
            endpoint ``min(segments, 2 × CPUs)``. For an export, processes turning its data files
            into raw files (see :func:`ddblake.load.export_parts.plan_workers`).
        read_percent: share of the table's read capacity (percent) the Scan may use.
        consistent: strongly consistent Scan reads (twice the capacity per page).
        from_export: an export folder (the one with ``manifest-summary.json``), local or ``s3://``.
        export_to: ``s3://bucket/prefix`` to start ExportTableToPointInTime into, then load from it.
        assume_role: an IAM role ARN to read the table (and start exports) in another account.
        external_id: the ExternalId the role's trust policy requires, if any.
        on_demand_rcu: read capacity assumed for an on-demand table (see ON_DEMAND_ASSUMED_RCU).
        buffer_bytes: cut a raw file at this many uncompressed bytes (also the checkpoint interval).
        export_poll_seconds: wait between DescribeExport calls while an export runs.
        keys: the table's key attribute names (hash first), for loading a full export without
            DescribeTable; None asks DescribeTable. A Scan load takes none (refused: DescribeTable
            names the keys it reads).
        export_bucket_owner: the account owning the ``--export-to`` bucket, when it is not the
            table's account (ExportTableToPointInTime ``S3BucketOwner``).
        page_items: Scan ``Limit``; None means none on AWS (1 MB pages) and
            :data:`LOCAL_PAGE_ITEMS` against a local endpoint (DynamoDB Local).
    """

    table: str
    lake: str
    endpoint_url: str | None = None
    segments: int | None = None
    workers: int | None = None
    read_percent: float = DEFAULT_READ_PERCENT
    consistent: bool = False
    from_export: str | None = None
    export_to: str | None = None
    assume_role: str | None = None
    external_id: str | None = None
    on_demand_rcu: float = ON_DEMAND_ASSUMED_RCU
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    export_poll_seconds: float = DEFAULT_EXPORT_POLL_SECONDS
    keys: tuple[str, ...] | None = None
    export_bucket_owner: str | None = None
    page_items: int | None = None

    def __post_init__(self) -> None:
        # build() has checked every environment value already, under its variable's name: a value
        # out of range here is an argument (the flag) or a LoadConfig made in code; both are named.
        if self.segments is not None and not 1 <= self.segments <= MAX_SEGMENTS:
            raise ConfigError(f"segments must be 1..{MAX_SEGMENTS}, got {self.segments}{_from('segments')}")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"workers must be 1..{MAX_WORKERS}, got {self.workers}{_from('workers')}")
        if not 0 < self.read_percent <= 150:
            raise ConfigError(
                f"read_percent must be in (0, 150], got {self.read_percent}{_from('read_percent')}"
            )
        for name, value in (
            ("on_demand_rcu", self.on_demand_rcu),
            ("buffer_bytes", self.buffer_bytes),
            ("export_poll_seconds", self.export_poll_seconds),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}{_from(name)}")
        if self.export_poll_seconds > MAX_WAIT_SECONDS:  # past threading's limit, a wait fails
            raise ConfigError(
                f"export_poll_seconds must be at most {MAX_WAIT_SECONDS:g} seconds (a day), got "
                f"{self.export_poll_seconds:g}{_from('export_poll_seconds')}"
            )
        if self.from_export and self.export_to:
            raise ConfigError(
                "--from-export and --export-to exclude each other: load an existing export, or start one"
            )
        if self.kind != "scan":
            scan_only = [
                flag
                for flag, given in (
                    ("--segments", self.segments is not None),
                    ("--read-percent", self.read_percent != DEFAULT_READ_PERCENT),
                    ("--consistent", self.consistent),
                )
                if given
            ]
            if scan_only:
                source = "--from-export" if self.from_export else "--export-to"
                raise ConfigError(
                    f"{', '.join(scan_only)} set the Scan of table {self.table!r}, but {source} loads it "
                    f"from an export, which reads no table capacity: drop {' and '.join(scan_only)} "
                    "(or the DDBLAKE_ variable that sets it)"
                )
        if self.export_to and not self.export_to.startswith("s3://"):
            raise ConfigError(
                f"--export-to {self.export_to!r}: DynamoDB exports go to S3; use s3://bucket/prefix"
            )
        if self.page_items is not None and self.page_items < 1:
            raise ConfigError(f"page_items must be positive, got {self.page_items}{_from('page_items')}")
        if self.keys is not None and not 1 <= len(self.keys) <= 2:
            raise ConfigError(f"keys must name the hash key and maybe the range key, got {self.keys}")
        if self.keys is not None and self.kind == "scan":
            raise ConfigError(
                f"keys {','.join(self.keys)} given for a Scan load of table {self.table!r}, which takes "
                "the key attributes from DescribeTable: keys are for a full export (from_export or export_to)"
            )
        check_role_arn(self.assume_role)
        check_external_id(self.assume_role, self.external_id)

    @property
    def kind(self) -> str:
        """``scan``, ``export`` (from an existing export) or ``export-to`` (start one first)."""
        if self.export_to:
            return "export-to"
        return "export" if self.from_export else "scan"

    @classmethod
    def build(
        cls,
        *,
        table: str | None = None,
        lake: str | None = None,
        endpoint_url: str | None = None,
        segments: int | None = None,
        workers: int | None = None,
        read_percent: float | None = None,
        consistent: bool | None = None,
        from_export: str | None = None,
        export_to: str | None = None,
        assume_role: str | None = None,
        external_id: str | None = None,
        on_demand_rcu: float | None = None,
        buffer_bytes: int | None = None,
        export_poll_seconds: float | None = None,
        keys: str | tuple[str, ...] | None = None,
        export_bucket_owner: str | None = None,
        page_items: int | None = None,
        scan: bool = False,
    ) -> LoadConfig:
        """Resolve each setting: argument, then ``DDBLAKE_<NAME>``, then the settings file, then the
        default.

        ``scan=True``: a Scan load whatever export the environment or settings file names (a
        re-bootstrap reloads the table as it is now; an export is the table as it was).

        ``consistent=False`` counts as "not given" (a switch cannot say no), so
        ``DDBLAKE_CONSISTENT=1`` can still turn it on. The source (``from_export`` / ``export_to``)
        is one setting: an argument for either ignores both environment variables, so
        ``--export-to`` wins over a ``DDBLAKE_FROM_EXPORT`` left in the environment.

        Raises:
            ConfigError: a required setting is missing or a value is malformed.
        """
        table = required_table(table)
        lake = _required("lake", "--lake", lake)
        no_export: dict[str, str | None] = {"from_export": None, "export_to": None}
        source, export = (no_export, None) if scan else _source(from_export, export_to)
        seg, seg_from = _sourced("segments", "--segments", segments, _int_in(1, MAX_SEGMENTS))
        pct, pct_from = _sourced("read_percent", "--read-percent", read_percent, _percent)
        switch: bool | None = consistent or None  # a switch cannot say no: False is "not given"
        con, con_from = _sourced("consistent", "--consistent", switch, _bool)
        work, work_from = _sourced("workers", "--workers", workers, _int_in(1, MAX_WORKERS))
        if export is not None:
            _refuse_scan_settings(
                table,
                export,
                [
                    ("segments", "--segments", seg, seg_from),
                    ("read_percent", "--read-percent", pct, pct_from),
                    ("consistent", "--consistent", con, con_from),
                ],
            )
            seg, pct, con = None, None, None  # what is left is the settings file's: not for an export
            if work_from not in ("--workers", env_name("workers")):  # the file's: Scan threads, while
                work = None  # an export's workers are processes (~80 MB each), capped at 8 by default
        names, names_from = _sourced("keys", "--keys", _keys_argument(keys), _key_names)
        if export is None:  # a Scan: DescribeTable names the keys; the file's are for its exports
            _refuse_scan_keys(table, names_from)
            names = None
        return cls(
            table=table,
            lake=lake,
            endpoint_url=_optional("endpoint_url", "--endpoint-url", endpoint_url or None, str),
            segments=seg,
            workers=work,
            read_percent=DEFAULT_READ_PERCENT if pct is None else pct,
            consistent=bool(con),
            **source,
            # both at once, each checked under the name of where it came from
            assume_role=(role := role_settings(assume_role, external_id))[0],
            external_id=role[1],
            on_demand_rcu=_value("on_demand_rcu", None, on_demand_rcu, _positive, ON_DEMAND_ASSUMED_RCU),
            buffer_bytes=_value("load_buffer_bytes", None, buffer_bytes, _int_in(1), DEFAULT_BUFFER_BYTES),
            export_poll_seconds=_value(
                "export_poll_seconds", None, export_poll_seconds, _wait, DEFAULT_EXPORT_POLL_SECONDS
            ),
            keys=names,
            export_bucket_owner=_optional("export_bucket_owner", None, export_bucket_owner or None, str),
            page_items=_optional("page_items", None, page_items, _int_in(1)),
        )
