"""``ddblake redrive``: Firehose's processing-failed records, and the records capture quarantined,
back into the raw change log."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ddblake.cli.args import say

log = logging.getLogger(__name__)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``redrive`` to the ``ddblake`` subcommands; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "redrive",
        help="records Firehose or capture set aside under errors/<table>/ back into the raw log",
        description="Run the records Firehose wrote under errors/<table>/processing-failed/ (its "
        "transform Lambda failed, timed out or was throttled) through the transform again, and the "
        "records capture quarantined under errors/<table>/<year>/... through capture's own check "
        "again, and write those accepted into the raw change log for apply; a file whose every record "
        "is back moves to errors/<table>/redriven/. Safe to rerun: nothing is written twice.",
    )
    p.add_argument("--table", default=None, help="DynamoDB table name (or DDBLAKE_TABLE)")
    p.add_argument("--lake", default=None, help="lake directory or s3://bucket/prefix (or DDBLAKE_LAKE)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Redrive, then print one summary line on stderr."""
    from ddblake import settings
    from ddblake.capture.redrive import redrive
    from ddblake.cli.lakes import present_lake
    from ddblake.lake.storage import Storage

    table = settings.required_table(args.table)
    # Redrive writes into a lake that Firehose's errors/ are in: a local path that is not there is
    # a typo, not a new lake (cli.lakes).
    lake = present_lake(settings.required("lake", "--lake", args.lake))
    stats = redrive(Storage.from_uri(lake), table)
    if stats.refused or stats.unreadable:  # what still wants a person: a warning, heard at WARNING
        log.warning("%s", stats.summary(table))
    else:
        say(stats.summary(table))
    return 0
