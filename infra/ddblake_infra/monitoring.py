"""Operations: a KMS key for logs and notifications, an encrypted alarm topic, alarm helpers.

Metrics ddblake publishes (namespace ``ddblake``; documented in docs/deploy.md):

* transform Lambda (Powertools EMF, dimensions ``service=ddblake-firehose-transform`` and
  ``Table=<DynamoDB table name>``, the function's ``DDBLAKE_TABLE``): ``RecordsReceived``,
  ``RecordsOk``, ``RecordsFailed``;
* apply (``ddblake.aws.apply_handler``; dimensions ``service=ddblake-apply`` and
  ``Table=<DynamoDB table name>``): ``ApplyLagSeconds`` (age of the oldest raw file waiting for
  apply in the lake, 0 when none; Maximum; Firehose's buffering before a file lands is not in it),
  ``LagSeconds`` (the tables' staleness: now minus the newest applied event's time, status's
  ``lag_seconds``; alarmed only when ``alarms.stale_seconds`` is set), ``QuarantinedRecords`` (Sum),
  ``AppliedFiles``, ``AppliedEvents``, ``PendingFiles``.

Both emit CloudWatch embedded metric format log lines, so no role needs ``cloudwatch:PutMetricData``
(an action that only takes ``Resource: *``).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from ddblake_infra.security import logs_service_statement, make_key, notification_services_statements
from ddblake_infra.settings import SNS_DISPLAY_NAME_MAX, DeployConfig, clipped

NAMESPACE: Final = "ddblake"
TRANSFORM_SERVICE: Final = "ddblake-firehose-transform"
APPLY_SERVICE: Final = "ddblake-apply"
TABLE_DIMENSION: Final = "Table"
APPLY_LAG_METRIC: Final = "ApplyLagSeconds"
STALENESS_METRIC: Final = "LagSeconds"
QUARANTINE_METRIC: Final = "QuarantinedRecords"
TRANSFORM_FAILED_METRIC: Final = "RecordsFailed"


class Operations(Construct):
    """The stack's ops key (CloudWatch Logs, SNS, Glue bookmarks) and its alarm topic."""

    def __init__(
        self, scope: Construct, construct_id: str, *, cfg: DeployConfig, account: str, topic_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.cfg = cfg
        self.key: kms.Key = make_key(
            self,
            "Key",
            account=account,
            alias=cfg.name("ops_key_alias"),
            description=f"ddblake {cfg.table.name}: logs, alarm notifications and Glue bookmarks",
            statements=[
                logs_service_statement(cfg.partition, cfg.region, account),
                *notification_services_statements(cfg.partition, cfg.region, account),
            ],
            retain=cfg.retain_data,
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=topic_name,
            display_name=clipped(f"ddblake alarms for {cfg.table.name}", SNS_DISPLAY_NAME_MAX),
            master_key=self.key,
            enforce_ssl=True,
        )
        # enforce_ssl writes an explicit topic policy, which replaces SNS's default one: without this
        # statement CloudWatch may not publish, and no alarm would ever notify anyone.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{cfg.partition}:cloudwatch:{cfg.region}:{account}:alarm:*"
                    },
                },
            )
        )
        if cfg.alarms.email:
            self.topic.add_subscription(subs.EmailSubscription(cfg.alarms.email))
        self._action = cw_actions.SnsAction(self.topic)

    def notify_on_event(
        self, construct_id: str, *, description: str, pattern: dict[str, object]
    ) -> events.CfnRule:
        """An EventBridge rule that publishes matching events to the alarm topic.

        Written as an L1 rule with its own topic-policy statement (limited to this rule by
        ``aws:SourceArn``): the L2 SNS target would also add a ``kms:GenerateDataKey*`` statement to
        the key policy, which the key's explicit policy already covers without a wildcard.
        """
        rule = events.CfnRule(
            self,
            construct_id,
            description=description,
            event_pattern=pattern,
            state="ENABLED",
            targets=[events.CfnRule.TargetProperty(arn=self.topic.topic_arn, id="alarm-topic")],
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{construct_id}Publishes",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.attr_arn}},
            )
        )
        return rule

    def alarm(
        self,
        construct_id: str,
        *,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        periods: int | None = None,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> cw.Alarm:
        """An alarm that notifies the topic on ALARM and OK."""
        n = periods or self.cfg.alarms.evaluation_periods
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=n,
            datapoints_to_alarm=n,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm


def ddblake_metric(
    name: str, dimensions: dict[str, str], statistic: str, period: Duration | None = None
) -> cw.Metric:
    """A metric of ddblake's own namespace, over 5-minute periods unless ``period`` says otherwise."""
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period or Duration.minutes(5),
    )
