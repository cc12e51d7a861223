"""Building the CDK app from a configuration: one entry point for ``cdk synth`` and for the tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aws_cdk import Annotations, App, Environment, Stack

from ddblake_infra.config import CONFIG_ENV, load_config, resolve_config_path
from ddblake_infra.config_reader import InfraConfigError
from ddblake_infra.consumer import ConsumerStack
from ddblake_infra.nag import check_nag
from ddblake_infra.producer import ProducerStack
from ddblake_infra.settings import DeployConfig, region_warning
from ddblake_infra.single import SingleAccountStack

FEATURE_FLAGS: Final[dict[str, object]] = {
    # S3 server access logs are admitted by a bucket policy (ACLs are disabled on every bucket).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    # ARNs use the partition of the configured region as a literal, not ${AWS::Partition}.
    "@aws-cdk/core:enablePartitionLiterals": True,
    "@aws-cdk/aws-iam:standardizedServicePrincipals": True,
    "@aws-cdk/aws-lambda:recognizeLayerVersion": True,
    "@aws-cdk/aws-kms:aliasNameRef": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
}


ALLOW_PLACEHOLDER_KEY: Final = "allow_placeholder_key"
"""Context flag (``-c allow_placeholder_key=true``) that lets the all-zero example lake key synthesize."""


def context_flag(app: App, name: str, default: bool) -> bool:
    """A true/false context value: ``-c name=true`` gives the string, cdk.json may give a boolean."""
    value = app.node.try_get_context(name)
    if value is None or value == "":
        return default
    return str(value).strip().lower() == "true"


def make_app(outdir: str | None = None) -> App:
    """An App with ddblake's feature flags, no analytics resource and no construct stack traces."""
    return App(outdir=outdir, context=dict(FEATURE_FLAGS), analytics_reporting=False, stack_traces=False)


def stack_names(cfg: DeployConfig) -> list[str]:
    """The stacks a configuration deploys, in deploy order."""
    prefix = cfg.name("stack_prefix")
    return [f"{prefix}-consumer", f"{prefix}-producer"] if cfg.cross_account else [prefix]


def add_stacks(
    app: App, cfg: DeployConfig, *, nag: bool = True, allow_placeholder_key: bool = False
) -> list[Stack]:
    """Add the configuration's stacks to ``app`` (and cdk-nag's AwsSolutions checks when ``nag``).

    Args:
        allow_placeholder_key: synthesize a producer whose ``lake.key_arn`` is the all-zero
            placeholder (the cross-account example; ``-c allow_placeholder_key=true``). Without it
            such a configuration is an error: every Firehose put would fail against a key that
            does not exist.

    Raises:
        InfraConfigError: the lake key is the placeholder (and not allowed), or an asset cannot
            be staged (e.g. the Glue script is missing).
    """
    source = f"(config {cfg.path})"
    stacks = _build_stacks(app, cfg, source=source, nag=nag, allow_placeholder_key=allow_placeholder_key)
    warning = region_warning(cfg.region)
    if warning is not None:
        for stack in stacks:
            Annotations.of(stack).add_warning_v2("ddblake:unknown-region", f"{cfg.path}: {warning}")
    return stacks


def _build_stacks(
    app: App, cfg: DeployConfig, *, source: str, nag: bool, allow_placeholder_key: bool
) -> list[Stack]:
    """The stacks of :func:`add_stacks` (which documents the arguments)."""
    stacks: list[Stack]
    if cfg.cross_account:
        consumer_name, producer_name = stack_names(cfg)
        if cfg.lake_key_is_placeholder and not allow_placeholder_key:
            raise InfraConfigError(
                f"{cfg.path}: lake.key_arn: is the all-zero placeholder, not a real key: the producer "
                "stack's Firehose would fail on every put. For the first step remove lake.key_arn "
                f"(then only {consumer_name} is synthesized) and deploy it; then put its LakeKeyArn "
                f"output in lake.key_arn and deploy {producer_name}. To synthesize the example anyway "
                f"(never to deploy), pass -c {ALLOW_PLACEHOLDER_KEY}=true"
            )
        consumer = ConsumerStack(
            app,
            consumer_name,
            cfg=cfg,
            env=Environment(account=cfg.consumer_account, region=cfg.region),
            description=f"ddblake consumer: lake, Glue load, scheduled apply for {cfg.table.name} {source}",
            termination_protection=cfg.retain_data,
        )
        if cfg.lake.key_arn is None:  # the first step: the consumer, whose lake key the producer needs
            Annotations.of(consumer).add_warning_v2(
                "ddblake:no-lake-key",
                f"lake.key_arn is not set in {cfg.path}: only {consumer_name} is synthesized. Deploy it, "
                f"put its LakeKeyArn output in lake.key_arn, then deploy {producer_name}",
            )
            if nag:
                check_nag(app)
            return [consumer]
        producer = ProducerStack(
            app,
            producer_name,
            cfg=cfg,
            env=Environment(account=cfg.producer_account, region=cfg.region),
            description=f"ddblake producer: table {cfg.table.name}, Kinesis, Firehose to the lake {source}",
            termination_protection=cfg.retain_data,
        )
        if cfg.lake_key_is_placeholder:
            Annotations.of(producer).add_warning_v2(
                "ddblake:placeholder-lake-key",
                f"lake.key_arn in {cfg.path} is the all-zero placeholder, synthesized only because "
                f"{ALLOW_PLACEHOLDER_KEY}=true: deploy {consumer_name} first and put its LakeKeyArn "
                "output there before deploying this stack",
            )
        stacks = [consumer, producer]
    else:
        stacks = [
            SingleAccountStack(
                app,
                stack_names(cfg)[0],
                cfg=cfg,
                env=Environment(account=cfg.producer_account, region=cfg.region),
                description=f"ddblake single-account: table {cfg.table.name} to its data lake {source}",
                termination_protection=cfg.retain_data,
            )
        ]
    if nag:
        check_nag(app)
    return stacks


def chosen_config(app: App) -> str | None:
    """``-c config=PATH``, else $DDBLAKE_INFRA_CONFIG, else None (the single-account example).

    cdk.json sets no ``config`` of its own: the CDK CLI hands cdk.json's context to the app exactly
    as it hands ``-c`` values, so a default there would always win over the environment.
    """
    value = app.node.try_get_context("config") or os.environ.get(CONFIG_ENV)
    return str(value) if value else None


def main(argv: Sequence[str] | None = None) -> int:
    """``cdk synth`` entry point (infra/app.py): config from ``-c config=PATH`` or $DDBLAKE_INFRA_CONFIG."""
    app = make_app()
    chosen = chosen_config(app)
    nag = str(app.node.try_get_context("nag") or "true").lower() != "false"
    try:
        cfg = load_config(resolve_config_path(chosen, base=Path.cwd()))
        add_stacks(app, cfg, nag=nag, allow_placeholder_key=context_flag(app, ALLOW_PLACEHOLDER_KEY, False))
    except InfraConfigError as e:
        print(f"ddblake infra: error: {e}", file=sys.stderr)
        return 2
    app.synth()
    return 0
