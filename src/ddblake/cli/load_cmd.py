"""The ``ddblake load`` subcommand: arguments to :func:`ddblake.load.run_load`.

``register(subparsers)`` adds the command; ``cli/main.py`` calls it once. Errors propagate to the
CLI's one wrapper (one line on stderr; exit 2 for usage errors, 1 otherwise).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ddblake.cli.args import add_role_args, percent, positive_int, say


def _cmd_load(args: argparse.Namespace) -> int:
    from ddblake.load import LoadConfig, run_load

    config = LoadConfig.build(
        table=args.table,
        lake=args.lake,
        endpoint_url=args.endpoint_url,
        segments=args.segments,
        workers=args.workers,
        read_percent=args.read_percent,
        consistent=args.consistent,
        from_export=args.from_export,
        export_to=args.export_to,
        assume_role=args.assume_role,
        external_id=args.external_id,
        keys=args.keys,
    )
    result = run_load(config)
    say(result.summary())
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``load`` to the ``ddblake`` subcommands; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "load",
        help="full load of a table into the raw change log (parallel Scan, or a DynamoDB export)",
        description="Full load: a parallel segmented Scan (default), an existing export (--from-export), "
        "or a new export (--export-to). Resumable: the same command run again continues an "
        "unfinished load (after a crash or Ctrl-C); after a finished one it starts a new full load, "
        "whose rows all go into the change history again.",
    )
    p.add_argument("--table", default=None, help="DynamoDB table name (or DDBLAKE_TABLE)")
    p.add_argument("--lake", default=None, help="lake directory or s3://bucket/prefix (or DDBLAKE_LAKE)")
    p.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (e.g. DynamoDB Local)")
    p.add_argument(
        "--segments", type=positive_int, default=None, help="Scan segments (default: by table size)"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="Scan threads (default: min(segments, 16)); for --from-export, processes "
        "(default: one per CPU, up to 8, from 100,000 items)",
    )
    p.add_argument(
        "--read-percent",
        type=percent,
        default=None,
        help="share of the table's read capacity to use, percent (default 50)",
    )
    p.add_argument("--consistent", action="store_true", help="strongly consistent Scan reads")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--from-export", default=None, help="an export folder (holding manifest-summary.json)"
    )
    source.add_argument(
        "--export-to", default=None, help="s3://bucket/prefix: export the table there, then load"
    )
    add_role_args(p)
    p.add_argument(
        "--keys",
        default=None,
        help="key attributes hash[,range] of a full export loaded without DescribeTable "
        "(--from-export, --export-to; refused for a Scan, whose keys DescribeTable names)",
    )
    p.set_defaults(func=_cmd_load)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m ddblake.cli.load_cmd ARGS``: the load command alone, same conventions as ``ddblake``.

    Lets scripts and tests run a load in a process of its own before (or without) the main CLI.
    """
    from ddblake.cli.main import main as ddblake_main

    return ddblake_main(["load", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
