"""The scheduled apply: ``ddblake apply --once`` as a Lambda container image on an EventBridge schedule.

One run at a time (reserved concurrency 1, no retries): apply reads the raw log and writes the two
Iceberg tables of the Glue catalog; its apply lag (the oldest raw file waiting for it), quarantined
records and failures raise alarms, and so does the tables' staleness if ``alarms.stale_seconds`` is
set. The image is built by ``cdk deploy`` from the context ``ddblake_infra.assets`` stages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

from aws_cdk import Annotations, Duration, RemovalPolicy, Size
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from ddblake_infra.assets import stage_apply_image
from ddblake_infra.cron import cron_values
from ddblake_infra.lake import LAKE_READ_WRITE, LakeStorage, lake_key_statement
from ddblake_infra.monitoring import (
    APPLY_LAG_METRIC,
    APPLY_SERVICE,
    QUARANTINE_METRIC,
    STALENESS_METRIC,
    TABLE_DIMENSION,
    Operations,
    ddblake_metric,
)
from ddblake_infra.nag import suppress_object_prefixes
from ddblake_infra.security import log_retention
from ddblake_infra.settings import LAMBDA_DESCRIPTION_MAX, DeployConfig, clipped

GLUE_CATALOG_READ: Final = ("glue:GetDatabase", "glue:GetTable")
GLUE_CATALOG_WRITE: Final = ("glue:CreateDatabase", "glue:CreateTable", "glue:UpdateTable")

MAX_ALARM_PERIOD_SECONDS: Final = 7 * 86400
"""CloudWatch: period x evaluation periods of an alarm is at most seven days."""
_RATE_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_interval_seconds(expression: str) -> int:
    """The longest time between two firings of an EventBridge schedule (``apply.schedule``).

    ``rate(N unit)``: N units. ``cron(...)`` firing every day (day-of-month, month, day-of-week and
    year all ``*`` or ``?``): the longest gap between its times of day. Any other cron (some days
    only): :data:`MAX_ALARM_PERIOD_SECONDS`, the longest an alarm can look back.
    """
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if rate:
        return int(rate.group(1)) * _RATE_UNITS[rate.group(2)]
    cron = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression)
    if cron and all(f in ("*", "?") for f in cron.group(3, 4, 5, 6)):
        minutes, hours = cron_values(cron.group(1), 59), cron_values(cron.group(2), 23)
        if minutes and hours:
            times = sorted(h * 60 + m for h in hours for m in minutes)
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)] + [times[0] + 1440 - times[-1]]
            return max(gaps) * 60
    return MAX_ALARM_PERIOD_SECONDS


NOT_RUNNING_SLACK_SECONDS: Final = 300
"""Room in the ApplyNotRunning period beyond one interval plus one timeout: EventBridge's delivery,
a cold start, and Lambda publishing a run's invocation when the run ends."""


def not_running_period_seconds(schedule: str, timeout_seconds: int) -> int | None:
    """The ApplyNotRunning alarm's period, or None when it cannot have one.

    Every period must hold an invocation while the schedule works: one interval plus one timeout,
    plus :data:`NOT_RUNNING_SLACK_SECONDS`. A schedule of some days only (a cron with days,
    :func:`schedule_interval_seconds` can only guess its interval) or an interval that leaves no
    such period within CloudWatch's seven days gets no alarm, rather than one that would sit in
    ALARM between two healthy runs.
    """
    interval = schedule_interval_seconds(schedule)
    exact = re.fullmatch(r"rate\(.*\)", schedule) is not None or interval < MAX_ALARM_PERIOD_SECONDS
    period = _whole_minutes(interval + timeout_seconds + NOT_RUNNING_SLACK_SECONDS)
    return period if exact and period <= MAX_ALARM_PERIOD_SECONDS else None


def lag_alarm_period_seconds(schedule: str, timeout_seconds: int) -> int:
    """The period of the apply lag alarm: long enough that every period holds an ``ApplyLagSeconds``.

    Each run emits ``ApplyLagSeconds`` (and ``LagSeconds``) once, when it ends. A run ends at most
    ``timeout_seconds`` after it starts, and the next starts at the next schedule tick (ticks during
    a run are dropped: reserved concurrency 1), so two datapoints are at most one schedule interval
    plus one timeout apart. A period at least that long (rounded up to whole minutes, as CloudWatch
    takes them) holds one whenever apply runs, so one period (one datapoint) decides; 5-minute
    periods would be empty two times in three during a backlog, and three breaching ones in a row
    would never come.
    """
    gap = schedule_interval_seconds(schedule) + timeout_seconds
    return min(_whole_minutes(gap), MAX_ALARM_PERIOD_SECONDS)


def _whole_minutes(seconds: int) -> int:
    """``seconds`` rounded up to whole minutes, as CloudWatch takes alarm periods."""
    return math.ceil(seconds / 60) * 60


def apply_function(
    scope: Construct,
    *,
    cfg: DeployConfig,
    lake: LakeStorage,
    ops: Operations,
    catalog_resources: Sequence[str],
) -> lambda_.DockerImageFunction:
    """The apply function, its role, log group, schedule and alarms, in ``scope``.

    Args:
        catalog_resources: the Glue catalog, database and table ARNs apply reads and writes.
    """
    a = cfg.apply
    t = cfg.table.name
    ns = cfg.lake.namespace
    region = cfg.region
    name = cfg.name("apply_function")
    log_group = logs.LogGroup(
        scope,
        "ApplyLogs",
        log_group_name=f"/aws/lambda/{name}",
        retention=log_retention(a.log_retention_days),
        encryption_key=ops.key,
        removal_policy=RemovalPolicy.RETAIN if cfg.retain_data else RemovalPolicy.DESTROY,
    )
    warehouse = [f"warehouse/{ns}.db/{ident}/*" for ident in (cfg.table_identifier, cfg.changes_identifier)]
    role = iam.Role(
        scope,
        "ApplyRole",
        role_name=cfg.name("apply_role"),
        description=f"ddblake {t}: scheduled apply (raw log -> Iceberg tables in Glue database {ns})",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        inline_policies={
            "apply": iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="WriteOwnLog",
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[log_group.log_group_arn],
                    ),
                    iam.PolicyStatement(
                        sid="LakeBucket",
                        actions=["s3:GetBucketLocation", "s3:ListBucket"],
                        resources=[lake.bucket.bucket_arn],
                    ),
                    iam.PolicyStatement(
                        sid="ReadRawLog",
                        actions=["s3:GetObject"],
                        resources=[
                            lake.bucket.arn_for_objects(f"raw/{t}/*"),
                            lake.bucket.arn_for_objects(f"state/load/{t}/*"),
                            # capture's checkpoint: whether the table is known before a raw file lands
                            lake.bucket.arn_for_objects(f"state/capture/{t}/checkpoint.json"),
                        ],
                    ),
                    iam.PolicyStatement(
                        # apply only writes its quarantine (ddblake.lake.batch.quarantine); status
                        # lists errors/<table>/ (the bucket statement) without reading it
                        sid="Quarantine",
                        actions=["s3:PutObject"],
                        resources=[lake.bucket.arn_for_objects(f"errors/{t}/apply/*")],
                    ),
                    iam.PolicyStatement(
                        sid="AppliedFilesAndTables",
                        actions=list(LAKE_READ_WRITE),
                        resources=[
                            lake.bucket.arn_for_objects(f"state/apply/{t}/*"),
                            *(lake.bucket.arn_for_objects(p) for p in warehouse),
                        ],
                    ),
                    lake_key_statement(lake.key, region),
                    iam.PolicyStatement(
                        sid="CatalogRead",
                        actions=list(GLUE_CATALOG_READ),
                        resources=list(catalog_resources),
                    ),
                    iam.PolicyStatement(
                        sid="CatalogWrite",
                        actions=list(GLUE_CATALOG_WRITE),
                        resources=list(catalog_resources),
                    ),
                ]
            )
        },
    )
    suppress_object_prefixes(
        role,
        [
            f"raw/{t}/",
            f"state/load/{t}/",
            f"errors/{t}/apply/",
            f"state/apply/{t}/",
            *(w.removesuffix("*") for w in warehouse),
        ],
        "apply reads the raw log and the load's hand-off state, quarantines bad records, keeps its "
        "applied-file logs, and writes the data and metadata files of this table's two Iceberg tables",
    )
    fn = lambda_.DockerImageFunction(
        scope,
        "Apply",
        function_name=name,
        description=clipped(
            f"ddblake apply --once for {t}: raw change log -> Iceberg tables (one run at a time)",
            LAMBDA_DESCRIPTION_MAX,
        ),
        code=lambda_.DockerImageCode.from_image_asset(
            str(stage_apply_image()),
            platform=(
                ecr_assets.Platform.LINUX_ARM64
                if a.architecture == "arm64"
                else ecr_assets.Platform.LINUX_AMD64
            ),
            build_args={"PYTHON_VERSION": a.python_version},
        ),
        architecture=lambda_.Architecture.ARM_64
        if a.architecture == "arm64"
        else lambda_.Architecture.X86_64,
        memory_size=a.memory_mb,
        ephemeral_storage_size=Size.mebibytes(a.ephemeral_storage_mb),
        timeout=Duration.seconds(a.timeout_seconds),
        role=role,
        log_group=log_group,
        reserved_concurrent_executions=1,
        retry_attempts=0,
        max_event_age=Duration.seconds(60),
        environment={
            "DDBLAKE_TABLE": t,
            "DDBLAKE_LAKE": f"s3://{lake.bucket_name}",
            "DDBLAKE_CATALOG": "glue",
            "DDBLAKE_NAMESPACE": ns,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
    )
    events.Rule(
        scope,
        "ApplySchedule",
        description=f"ddblake {t}: run apply --once on a schedule",
        schedule=events.Schedule.expression(a.schedule),
        targets=[targets.LambdaFunction(fn, retry_attempts=0, max_event_age=Duration.seconds(60))],
    )
    dims = {"service": APPLY_SERVICE, TABLE_DIMENSION: t}
    lag_period = lag_alarm_period_seconds(a.schedule, a.timeout_seconds)
    ops.alarm(
        "ApplyLag",
        metric=ddblake_metric(APPLY_LAG_METRIC, dims, "Maximum", Duration.seconds(lag_period)),
        threshold=cfg.alarms.apply_lag_seconds,
        periods=1,
        description=f"ddblake {t}: the oldest raw file waiting for apply in the lake is more than "
        f"{cfg.alarms.apply_lag_seconds} s old (the largest ApplyLagSeconds of an apply run in "
        f"{lag_period} s: one schedule interval plus the apply timeout, so every period holds a run's "
        "figure; Firehose's buffering before a file lands is not included)",
    )
    if cfg.alarms.stale_seconds is not None:
        ops.alarm(
            "TablesStale",
            metric=ddblake_metric(STALENESS_METRIC, dims, "Maximum", Duration.seconds(lag_period)),
            threshold=cfg.alarms.stale_seconds,
            periods=1,
            description=f"ddblake {t}: the newest change applied to the lake tables is more than "
            f"{cfg.alarms.stale_seconds} s old (the largest LagSeconds of an apply run in {lag_period} s; "
            "it also grows while nobody writes to the table)",
        )
    not_running = not_running_period_seconds(a.schedule, a.timeout_seconds)
    if cfg.alarms.apply_not_running and not_running is not None:
        not_running_alarm(ops, fn, table=t, function_name=name, period_seconds=not_running)
    elif cfg.alarms.apply_not_running:
        Annotations.of(scope).add_warning_v2(
            "ddblake:no-apply-not-running-alarm",
            f"{cfg.path}: apply.schedule {a.schedule} runs apply less often than CloudWatch can watch "
            "for a missing run (one interval, the timeout and 5 minutes within 7 days), or on some "
            "days only: no ApplyNotRunning alarm; set alarms.apply_not_running to false to say so",
        )
    ops.alarm(
        "ApplyQuarantined",
        metric=ddblake_metric(QUARANTINE_METRIC, dims, "Sum"),
        threshold=0,
        periods=1,
        description=f"ddblake {t}: apply quarantined records under s3://{lake.bucket_name}/errors/{t}/apply/",
    )
    ops.alarm(
        "ApplyFailures",
        metric=fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
        threshold=0,
        periods=1,
        description=f"ddblake {t}: apply --once failed; its log group /aws/lambda/{name} has the reason",
    )
    return fn


NEW_DEPLOYMENT_NOTE: Final = (
    "On a new deployment it fires once, minutes after it is created and before apply's first "
    "scheduled run, and returns to OK once that run is counted; no OK within one period of the "
    "deployment means the schedule has never invoked apply"
)
"""What the ApplyNotRunning alarm's description says about a new deployment: the notification
itself says that its first ALARM is expected (:func:`not_running_alarm`)."""


def not_running_alarm(
    ops: Operations, fn: lambda_.IFunction, *, table: str, function_name: str, period_seconds: int
) -> cw.Alarm:
    """ApplyNotRunning: fewer than one invocation of apply in a period, missing data breaching.

    The lag and staleness alarms take missing data as fine (a period without a run's figure is normal
    during a backlog), so a schedule that stops firing would raise nothing there. Every period holds
    an invocation while the schedule works (:func:`not_running_period_seconds`), so one without any
    means apply is not running.

    Why a new deployment notifies once (ALARM, then OK after the first run) and no setting avoids it:
    a function created minutes ago and a schedule that stopped firing look the same to CloudWatch:
    the function's ``Invocations`` has no data point at all, and so has every EventBridge metric of
    the rule (``AWS/Events`` ``TriggeredRules``/``Invocations`` by ``RuleName`` are only emitted when
    it fires). An alarm has no notion of its own age, and PutMetricAlarm sets a new alarm to
    INSUFFICIENT_DATA and evaluates it at once. So every choice either alarms on the new deployment
    or misses a schedule that never fires after it: ``notBreaching`` turns a schedule that stops
    into OK; ``ignore`` (or ``missing``) leaves a new alarm in INSUFFICIENT_DATA, with no
    notification, until the first invocation, so a deployment whose schedule never fires (a rule
    disabled or unable to invoke the function from the start) would never alarm; ``FILL(m, 0)``
    fills the gaps of a series that has data in the range read, so a new function still has none
    to fill (or, if it yielded zeros, they breach just the same), and any datapoints-to-alarm /
    evaluation-periods choice breaches when every point of the range is missing or filled. The
    notification is therefore kept, and the alarm's description says it is expected
    (:data:`NEW_DEPLOYMENT_NOTE`). A stack update keeps the alarm's state (PutMetricAlarm leaves an
    existing alarm's state unchanged): it does not notify again.

    CloudWatch reads a few periods back (its evaluation range) and, while any of them holds a data
    point, judges its one evaluation period by the newest one it has: a schedule that stops is
    reported once its last invocation has left that range, one period after it at the earliest.
    ``FILL(m, 0)`` would report it after one period, but Lambda documents only that it sends a run's
    metrics when the run finishes, not the minute they are stamped with: stamped with its start, a
    period whose only run is still going (apply runs up to its timeout) would read 0 and alarm
    between two healthy runs, where the plain metric falls back on the run before.
    """
    return ops.alarm(
        "ApplyNotRunning",
        metric=fn.metric_invocations(period=Duration.seconds(period_seconds), statistic="Sum"),
        threshold=1,
        periods=1,
        comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        missing=cw.TreatMissingData.BREACHING,
        description=f"ddblake {table}: apply was not invoked in {period_seconds} s (one schedule "
        "interval, the apply timeout and 5 minutes): its EventBridge schedule is disabled or cannot "
        f"invoke the function {function_name}; nothing is being applied and the lag alarm cannot see "
        f"it. {NEW_DEPLOYMENT_NOTE}",
    )
