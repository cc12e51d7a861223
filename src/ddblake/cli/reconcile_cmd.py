"""``ddblake reconcile``: after a full load is applied, remove the items it did not see (the command's
wiring; the work is :func:`ddblake.reconcile.reconcile`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ddblake.cli.args import say

DESCRIPTION = (
    "After a stream gap a new full load brings back every item that exists, but writes no deletes: "
    "items deleted during the gap stay in the lake. Once that load is applied, reconcile writes a "
    "REMOVE into the raw log for every current item the load did not see and did not change since, "
    "then applies them. Right only if the stream reached the raw log without a gap from before the "
    "load started until now (docs/load.md, Reconcile). Refuses an unfinished or incremental load and "
    "one whose raw files are not all applied yet. Safe to rerun: nothing is written twice."
)


def register(
    subparsers: Any, table_lake: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Add ``reconcile`` to the ``ddblake`` subcommands, its table and lake options as ``apply``'s
    (``table_lake``: main's helper); returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "reconcile",
        help="after a full load is applied: remove the items it did not see (deleted during a stream gap)",
        description=DESCRIPTION,
    )
    table_lake(p)
    p.add_argument(
        "--load",
        default=None,
        metavar="ID",
        help="the full load to reconcile against (default: the newest finished one in the lake)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print how many items would be removed (with -v: their keys) and write nothing",
    )
    p.add_argument(
        "--no-apply",
        action="store_true",
        help="write the REMOVE lines but do not apply them (the scheduled apply will)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Reconcile; one summary line on stderr (a dry run's on stdout, with -v followed by the keys)."""
    from ddblake import settings
    from ddblake.cli.lakes import check_present, lake_config
    from ddblake.errors import UsageError
    from ddblake.lake.apply import ApplyConfig
    from ddblake.reconcile import reconcile

    if args.dry_run and args.no_apply:
        raise UsageError(
            "reconcile --dry-run writes nothing, so --no-apply has nothing to hold back: drop one"
        )
    lake = check_present(lake_config(args))  # a local path that is not there is a typo, as for apply
    table = settings.required_table(args.table)
    load = args.load.strip() if args.load is not None else None
    if load == "":
        raise UsageError("--load is empty: give a load ID (see 'ddblake status') or leave it out")
    apply = None if args.dry_run or args.no_apply else ApplyConfig.build(table=table, lake=lake, once=True)
    result = reconcile(
        table, lake, load_id=load, apply_config=apply, dry_run=args.dry_run, apply=not args.no_apply
    )
    if args.dry_run:
        out = sys.stdout
        out.write(result.summary() + "\n")
        if args.verbose:  # keys are item data: only when asked for
            for key in sorted(result.keys):
                out.write(key + "\n")
        return 0
    say(result.summary())
    return 0
