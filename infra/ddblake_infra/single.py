"""The single-account composition: producer and consumer pieces in one stack, one account."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from ddblake_infra.consumer import LakeSide
from ddblake_infra.delivery import LakeTarget
from ddblake_infra.lake import LakeStorage
from ddblake_infra.monitoring import Operations
from ddblake_infra.producer import Capture
from ddblake_infra.settings import DeployConfig


class SingleAccountStack(Stack):
    """Table, stream, transform, Firehose, lake, Glue load job, scheduled apply and alarms in one
    account; the lake's bucket policy still admits the Firehose role only by ARN, as cross-account."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg = cfg
        self.ops = Operations(
            self, "Ops", cfg=cfg, account=cfg.consumer_account, topic_name=cfg.name("alarm_topic")
        )
        self.lake = LakeStorage(
            self,
            "Lake",
            cfg=cfg,
            account=cfg.consumer_account,
            bucket_name=cfg.lake_bucket_name,
            access_log_bucket_name=cfg.name("access_log_bucket"),
            key_alias=cfg.name("lake_key_alias"),
            description=f"lake of {cfg.table.name}",
        )
        self.capture = Capture(self, "Capture", cfg=cfg, ops=self.ops)
        self.capture.add_delivery(
            "Delivery",
            target=LakeTarget.of(self.lake),
            delivery_name=cfg.name("delivery_stream"),
            role_name=cfg.name("firehose_role"),
        )
        self.lake.admit_firehose(
            producer_account=cfg.producer_account, role_arns=[cfg.firehose_role_arn], table=cfg.table.name
        )
        self.side = LakeSide(
            self,
            "LakeSide",
            cfg=cfg,
            lake=self.lake,
            ops=self.ops,
            table=self.capture.table,
            table_key=self.capture.table_key,
        )
        self.side.outputs(self)
        self.capture.outputs(self)
