"""The deployment configuration: one JSON file, validated before any construct is built.

Everything the stacks need comes from this file: accounts, region, the table and its keys, the
stream, Firehose buffering and prefixes, resource names, the consumer's lake key ARN and the choice
between a single-account and a cross-account deployment. Nothing is looked up at synth time, so
``cdk synth`` needs no credentials and no network.

Every problem is reported as :class:`InfraConfigError` naming the file and the dotted key, e.g.
``infra/config/x.json: stream.shards: must be an integer from 1 to 10000 (got 0)``. Unknown keys are
errors too, so a typo never silently falls back to a default. docs/deploy.md lists every key.

The pieces: :mod:`ddblake_infra.settings` (the validated dataclasses), :mod:`ddblake_infra.config_reader`
(:class:`InfraConfigError` and the checked reader of one JSON object),
:mod:`ddblake_infra.config_sections` (one reader per section); this module finds the file, reads it
and checks the top-level keys.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from ddblake_infra.config_reader import InfraConfigError, Section, read_section
from ddblake_infra.config_sections import (
    alarm_settings,
    apply_settings,
    firehose_settings,
    lake_settings,
    load_settings,
    stream_settings,
    table_settings,
    transform_settings,
)
from ddblake_infra.operators import trust_policy_problem
from ddblake_infra.resource_names import CROSS_ACCOUNT_STACK_SUFFIX, names_in_use, resource_names
from ddblake_infra.settings import DeployConfig, partition_of, slugify

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG: Final = REPO_ROOT / "infra" / "config" / "single-account.json"
CONFIG_ENV: Final = "DDBLAKE_INFRA_CONFIG"

TOP_LEVEL_KEYS: Final = (
    "deployment",
    "region",
    "producer_account",
    "consumer_account",
    "removal_policy",
    "table",
    "stream",
    "firehose",
    "transform",
    "lake",
    "load",
    "apply",
    "alarms",
    "names",
)
"""The keys of the file's top level (each section checks its own keys as it reads them)."""

_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^([a-z]{2}(-gov|-iso|-isob|-isoe|-isof)?|eusc-[a-z]{2})-[a-z]+-\d$")
"""Region names of the partitions ``partition_of`` knows; an unknown name of this form only warns."""


def resolve_config_path(explicit: str | None, *, base: Path | None = None) -> Path:
    """The configuration file: ``explicit`` (cdk context ``config``), relative to the repository root
    when it is not absolute and not found from the current directory, else the single-account example.
    """
    if not explicit:
        return DEFAULT_CONFIG
    path = Path(explicit).expanduser()
    if path.is_absolute():
        return path
    here = (base or Path.cwd()) / path
    return here if here.exists() else REPO_ROOT / path


def load_config(path: str | Path) -> DeployConfig:
    """Read and validate the configuration file at ``path``.

    Raises:
        InfraConfigError: the file is missing, not JSON, or a key is missing or invalid; the message
            names the file and the key.
    """
    path = Path(path)
    try:
        shown = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        shown = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InfraConfigError(
            f"{shown}: configuration file not found; pass -c config=PATH to cdk "
            "(examples: infra/config/single-account.json, infra/config/cross-account.json)"
        ) from None
    except json.JSONDecodeError as e:
        raise InfraConfigError(f"{shown}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    return parse_config(raw, file=shown, path=Path(shown))


def parse_config(raw: Any, *, file: str = "<config>", path: Path | None = None) -> DeployConfig:
    """Validate an already-parsed configuration (``load_config`` without the file)."""
    top = Section(file, "", raw)
    top.reject_unknown(TOP_LEVEL_KEYS)
    deployment = top.choice("deployment", "single-account", ("single-account", "cross-account"))
    region = top.text("region", required=True, pattern=_REGION, what="an AWS region such as eu-west-1")
    producer = top.text("producer_account", required=True, pattern=_ACCOUNT, what="a 12-digit account ID")
    consumer = top.text("consumer_account", producer, pattern=_ACCOUNT, what="a 12-digit account ID")
    if deployment == "single-account" and consumer != producer:
        raise top.error(
            "consumer_account",
            f"is {consumer} but producer_account is {producer}: a single-account deployment has one "
            "account; set deployment to 'cross-account' or make them equal",
        )
    if deployment == "cross-account" and consumer == producer:
        raise top.error(
            "consumer_account",
            f"equals producer_account ({producer}): a cross-account deployment needs two accounts; "
            "set deployment to 'single-account' for one",
        )
    partition = partition_of(region)
    retain = top.choice("removal_policy", "retain", ("retain", "destroy")) == "retain"

    table = read_section(top.section("table"), lambda s: table_settings(s, retain=retain))
    stream = read_section(top.section("stream"), stream_settings)
    firehose = read_section(top.section("firehose"), lambda s: firehose_settings(s, table.name, deployment))
    transform = read_section(top.section("transform"), transform_settings)
    lake = read_section(
        top.section("lake"),
        lambda s: lake_settings(
            s, deployment=deployment, region=region, consumer=consumer, partition=partition
        ),
    )
    load = read_section(
        top.section("load"),
        lambda s: load_settings(s, REPO_ROOT, deployment, consumer=consumer, partition=partition),
    )
    apply = read_section(top.section("apply"), apply_settings)
    alarms = read_section(top.section("alarms"), alarm_settings)
    names = read_section(
        top.section("names"),
        lambda s: resource_names(
            s,
            {
                "table": table.name,
                "slug": slugify(table.name),
                "region": region,
                "producer_account": producer,
                "consumer_account": consumer,
                "namespace": lake.namespace,
            },
            names_in_use(
                deployment=deployment,
                producer_copy=firehose.producer_copy,
                access_logs=lake.access_logs,
                athena_workgroup=lake.athena_workgroup,
            ),
            stack_suffix=CROSS_ACCOUNT_STACK_SUFFIX if deployment == "cross-account" else 0,
        ),
    )
    top.finish()
    cfg = DeployConfig(
        path=path or Path(file),
        deployment="cross-account" if deployment == "cross-account" else "single-account",
        region=region,
        partition=partition,
        producer_account=producer,
        consumer_account=consumer,
        table=table,
        stream=stream,
        firehose=firehose,
        transform=transform,
        lake=lake,
        load=load,
        apply=apply,
        alarms=alarms,
        names=names,
        retain_data=retain,
    )
    if cfg.cross_account:
        problem = trust_policy_problem(
            partition=partition,
            consumer=consumer,
            load_role_arn=cfg.load_role_arn,
            operators=load.operator_arns,
            external_id=load.external_id,
        )
        if problem is not None:
            raise InfraConfigError(f"{file}: load.operator_arns: {problem}")
    return cfg
