"""Lambda handler that runs ``ddblake apply --once`` for one table on a schedule (consumer stack).

Configuration comes from the environment the stack sets — ``DDBLAKE_LAKE`` (``s3://...``),
``DDBLAKE_CATALOG=glue``, ``DDBLAKE_NAMESPACE``, ``DDBLAKE_TABLE`` — and an event may name the
table (``{"table": "..."}``) when one function serves several. One run at a time per table is the
stack's job (reserved concurrency 1); a lost commit race is retried inside ``run_apply`` anyway.

Metrics (CloudWatch embedded metric format, namespace ``ddblake``, dimension ``Table``) feed the
stack's alarms: ``ApplyLagSeconds`` (:func:`alarm_lag`: the oldest raw file waiting for apply),
``LagSeconds`` (``status``'s ``lag_seconds``: the tables' staleness, when an event was applied; no
alarm unless ``alarms.stale_seconds`` is set), ``QuarantinedRecords``, ``AppliedFiles``,
``AppliedEvents``, ``PendingFiles`` (raw files left: a backlog longer than one run's time budget
goes on next run). No item data is logged: an error that is not one of ddblake's own (whose
messages never quote values) is logged by type and place and raised again with the values its
message may quote masked (``ddblake.redact``), since the Lambda runtime writes an unhandled
error's message to CloudWatch Logs.
"""

from __future__ import annotations

import functools
import os
import time
import traceback
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ddblake.errors import ConfigError, DdblakeError, TerminalError, UnknownTableError
from ddblake.lake.apply import Applier, ApplyConfig, ApplyResult
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.report import table_status
from ddblake.lake.service import run_apply
from ddblake.redact import first_line

RESERVE_SECONDS = 30  # for the status, metrics and log line after apply
logger = Logger(service="ddblake-apply")
metrics = Metrics(namespace="ddblake", service="ddblake-apply")


def alarm_lag(apply_lag_seconds: float | None, pending_files: int) -> float | None:
    """The ``ApplyLagSeconds`` metric: how far apply trails what has landed in the raw log.

    0 when no raw file is left to apply: a table nobody writes to is not late (``status`` reports
    the same). Otherwise ``status``'s ``apply_lag_seconds``: the age of the oldest raw file waiting
    for apply, which grows while a backlog lasts; None (no metric) only when status has no figure
    at all. Firehose's buffering comes before a file lands and is not in it. Not ``lag_seconds``
    (the newest applied event's age, the ``LagSeconds`` metric), which grows while the source is quiet.
    """
    return 0.0 if pending_files == 0 else apply_lag_seconds


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: object, context: LambdaContext) -> dict[str, Any]:
    """Apply what is new for the table, then report counts and lag.

    ``event``: the table is its ``table`` when it is an object (a dict) naming one; any other event
    (the scheduler's, a test invocation's ``"x"`` or ``[]``) leaves it to ``DDBLAKE_TABLE``.
    """
    named = event.get("table") if isinstance(event, dict) else None
    table = named or os.environ.get("DDBLAKE_TABLE")
    if not table:
        raise ConfigError('no table: set DDBLAKE_TABLE on the function or send {"table": ...}')
    try:
        return _apply(str(table), context)
    except DdblakeError:
        raise  # ddblake's own messages name tables, files and problems, never values
    except Exception as e:
        # A library's message may quote item data (pyarrow: "Could not convert 'alice@example.com'
        # with type str"), and the runtime logs an unhandled error's message: log the type and
        # the frames, raise one line with the values masked.
        frames = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(e.__traceback__)]
        logger.error("apply failed", extra={"table": table, "error": type(e).__name__, "frames": frames})
        raise TerminalError(f"apply of table {table} failed: {type(e).__name__}: {first_line(e)}") from None


@functools.cache
def _applier(config: ApplyConfig) -> Applier:
    """The applier of one configuration, built at a cold start and kept by the warm invocations.

    Its catalog (a Glue client), lake storage (an S3 file system) and their AWS sessions are made
    once per execution environment, as the Firehose Lambda's clients are at module scope; each run
    reloads the tables and the applied-file record anyway (:meth:`Applier.run_once`), so a run
    after another writer's commit starts from that commit, and lists the whole raw log
    (:meth:`Applier.relist`). The configuration (from the event and
    the environment, checked on every run) is the key; a failed build is not kept.
    """
    return Applier(config)


def _apply(table: str, context: LambdaContext) -> dict[str, Any]:
    lake = LakeConfig.build(lake=None)
    # No batch starts that might not finish before the function's timeout: the next run goes on.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS
    config = ApplyConfig.build(table=table, lake=lake, once=True)
    applier = _applier(config)
    applier.relist()  # every run lists the whole raw log, as a cold start does
    try:
        result = run_apply(config, applier=applier, deadline=deadline)
    except UnknownTableError:  # deployed, and no delivery yet (a quiet table): nothing late either
        logger.info("nothing landed yet", extra={"table": table})
        result = ApplyResult()
    # The catalog, storage and raw-file listing apply just used: no second S3 listing per run.
    status = table_status(
        applier.catalog, lake.namespace, applier.storage, table, listing=applier.last_listing, stages=False
    )
    metrics.add_dimension(name="Table", value=table)
    metrics.add_metric(name="AppliedFiles", unit=MetricUnit.Count, value=result.files)
    metrics.add_metric(name="AppliedEvents", unit=MetricUnit.Count, value=result.events)
    metrics.add_metric(name="QuarantinedRecords", unit=MetricUnit.Count, value=result.quarantined)
    metrics.add_metric(name="PendingFiles", unit=MetricUnit.Count, value=status.pending_files)
    # Copy on write: what a run rewrites is what it costs (docs/deploy.md, "What apply rewrites").
    metrics.add_metric(name="FilesRewritten", unit=MetricUnit.Count, value=result.files_rewritten)
    # Maintenance keeps snapshots and small files in check; a run logs its failures at WARNING, and
    # these say so to CloudWatch (a backlog that leaves no time for it shows as skipped).
    metrics.add_metric(name="MaintenanceFailures", unit=MetricUnit.Count, value=result.maintenance_failures)
    metrics.add_metric(name="MaintenanceSkipped", unit=MetricUnit.Count, value=result.maintenance_skipped)
    apply_lag = alarm_lag(status.apply_lag_seconds, status.pending_files)
    if apply_lag is not None:
        metrics.add_metric(name="ApplyLagSeconds", unit=MetricUnit.Seconds, value=apply_lag)
    if status.lag_seconds is not None:  # None: no event applied yet, no staleness to give
        metrics.add_metric(name="LagSeconds", unit=MetricUnit.Seconds, value=status.lag_seconds)
    logger.info(
        "applied",
        extra={
            "table": table,
            "files": result.files,
            "events": result.events,
            "quarantined": result.quarantined,
            "lag_seconds": status.lag_seconds,
            "apply_lag_seconds": status.apply_lag_seconds,
            "pending_files": status.pending_files,
            "files_rewritten": result.files_rewritten,
            "maintenance_failures": result.maintenance_failures,
            "maintenance_skipped": result.maintenance_skipped,
        },
    )
    return {
        "table": table,
        "files": result.files,
        "events": result.events,
        "quarantined": result.quarantined,
        "lag_seconds": status.lag_seconds,
        "apply_lag_seconds": status.apply_lag_seconds,
        "pending_files": status.pending_files,
        "files_rewritten": result.files_rewritten,
        "maintenance_failures": result.maintenance_failures,
        "maintenance_skipped": result.maintenance_skipped,
    }
