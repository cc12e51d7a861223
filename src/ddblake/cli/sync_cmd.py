"""``ddblake sync``: load if new, then capture and apply in one process (the command's wiring)."""

from __future__ import annotations

import argparse

from ddblake.cli.args import say
from ddblake.cli.lakes import lake_config
from ddblake.errors import UsageError


def run(args: argparse.Namespace) -> int:
    """Sync, or with ``--rebootstrap`` re-bootstrap first; prints one summary line on stderr."""
    from ddblake import settings
    from ddblake.capture.config import CaptureConfig, checked_setting
    from ddblake.lake.apply import ApplyConfig
    from ddblake.sync import (
        SYNC_APPLY_POLL_SECONDS,
        SYNC_BUFFER_SECONDS,
        SYNC_POLL_SECONDS,
        SyncConfig,
        run_sync,
    )

    if args.no_load:
        given = [
            flag
            for flag, value in (
                ("--from-export", args.from_export),
                ("--export-to", args.export_to),
                ("--segments", args.segments),
                ("--read-percent", args.read_percent),
                ("--rebootstrap", args.rebootstrap),
            )
            if value not in (None, False)
        ]
        if given:
            raise UsageError(f"sync --no-load runs no load: drop {', '.join(given)} or --no-load")
    if args.rebootstrap:
        from ddblake.load import LoadConfig
        from ddblake.rebootstrap import rebootstrap

        lake = lake_config(args)
        table = settings.required_table(args.table)
        if args.from_export or args.export_to:
            raise UsageError(
                "sync --rebootstrap reloads the table with a Scan; drop --from-export/--export-to"
            )
        reload = LoadConfig.build(
            scan=True,  # whatever export DDBLAKE_FROM_EXPORT or the settings file name for a first load
            table=table,
            lake=lake.lake,
            endpoint_url=args.endpoint_url,
            segments=args.segments,
            read_percent=args.read_percent,
            assume_role=args.assume_role,
            external_id=args.external_id,
        )
        done = rebootstrap(
            table,
            lake,
            args.endpoint_url,
            load_config=reload,
            apply_config=ApplyConfig.build(table=table, lake=lake, once=True, buckets=args.buckets),
            assume_role=args.assume_role,
            external_id=args.external_id,
        )
        say(done.summary())
        # a switch cannot say no, so an absent --once defers to DDBLAKE_ONCE, as sync's run does
        if settings.value("once", "--once", args.once or None, settings.boolean, False):
            return 0
    # argument, then DDBLAKE_<NAME>, then sync's own default (an explicit 0 stays 0 and is refused)
    poll = checked_setting("poll_seconds", "--poll-seconds", args.poll_seconds, float)
    buffer = checked_setting("buffer_seconds", "--buffer-seconds", args.buffer_seconds, float)
    buffer = SYNC_BUFFER_SECONDS if buffer is None else buffer
    capture = CaptureConfig.build(
        table=args.table,
        lake=args.lake,
        endpoint_url=args.endpoint_url,
        once=args.once,
        buffer_seconds=buffer,
        poll_seconds=SYNC_POLL_SECONDS if poll is None else poll,
        assume_role=args.assume_role,
        external_id=args.external_id,
    )
    apply = ApplyConfig.build(
        table=capture.table,
        lake=lake_config(args),
        once=capture.once,
        poll_seconds=SYNC_APPLY_POLL_SECONDS if poll is None else poll,
        buckets=args.buckets,
    )
    load = None
    if not args.no_load:
        from ddblake.load import LoadConfig

        load = LoadConfig.build(
            table=capture.table,
            lake=args.lake,
            endpoint_url=args.endpoint_url,
            segments=args.segments,
            read_percent=args.read_percent,
            from_export=args.from_export,
            export_to=args.export_to,
            assume_role=capture.assume_role,
            external_id=capture.external_id,
        )
    result = run_sync(SyncConfig(capture=capture, apply=apply, load=load))
    say(f"table {capture.table}: {result.summary()}")
    return 0
