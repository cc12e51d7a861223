"""``removal_policy``: what ``cdk destroy`` keeps (retain, the default) and what it deletes (destroy).

Retained: the table (with deletion protection), the stream, the keys, the buckets and their
policies, the log groups and the Glue database (deleting a database deletes every table in it).
With ``destroy`` all of them go, and deletion protection is off unless set, so the destroy succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from ddblake_infra.config import REPO_ROOT, parse_config

CONFIGS = ("single-account", "cross-account")


def _example(name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((REPO_ROOT / f"infra/config/{name}.json").read_text())
    return raw


def synth_templates(raw: dict[str, Any], out: Path) -> dict[str, dict[str, Any]]:
    """``{stack name: template}`` of a configuration, synthesized in-process without cdk-nag."""
    from ddblake_infra.build import add_stacks, make_app

    app = make_app(outdir=str(out))
    stacks = add_stacks(app, parse_config(raw, file="x.json"), nag=False, allow_placeholder_key=True)
    return {s.stack_name: Template.from_stack(s).to_json() for s in stacks}


@pytest.fixture(scope="module")
def destroy_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """The cross-account example (both stacks, the producer-side copy) with ``removal_policy: destroy``."""
    raw = _example("cross-account") | {"removal_policy": "destroy"}
    yield synth_templates(raw, tmp_path_factory.mktemp("destroy"))


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _policies_by_bucket(template: dict[str, Any]) -> dict[str, str | None]:
    """``{bucket logical ID: DeletionPolicy of its bucket policy}``, for every bucket."""
    buckets = _of_type(template, "AWS::S3::Bucket")
    out: dict[str, str | None] = {}
    for policy in _of_type(template, "AWS::S3::BucketPolicy").values():
        bucket = policy["Properties"]["Bucket"]["Ref"]
        assert bucket in buckets
        out[bucket] = policy.get("DeletionPolicy")
    assert set(out) == set(buckets), "every bucket has a policy (its TLS-only deny)"
    return out


def test_retain_keeps_the_glue_database(templates: dict[str, Any]) -> None:
    lake_templates = [t for t in templates.values() if _of_type(t, "AWS::Glue::Database")]
    assert len(lake_templates) == 2  # single-account, cross-account consumer
    for template in lake_templates:
        (database,) = _of_type(template, "AWS::Glue::Database").values()
        assert database["DeletionPolicy"] == database["UpdateReplacePolicy"] == "Retain"


def test_retain_keeps_every_bucket_policy(templates: dict[str, Any]) -> None:
    """A retained bucket keeps its TLS-only deny after ``cdk destroy``."""
    checked = 0
    for name, template in templates.items():
        buckets = _of_type(template, "AWS::S3::Bucket")
        for bucket, policy_deletion in _policies_by_bucket(template).items():
            assert buckets[bucket]["DeletionPolicy"] == "Retain", (name, bucket)
            assert policy_deletion == "Retain", (name, bucket)
            checked += 1
    assert checked == 6  # single: lake + logs; consumer: lake + logs; producer copy: bucket + logs


def test_destroy_deletes_the_database_and_bucket_policies(destroy_templates: dict[str, Any]) -> None:
    consumer = destroy_templates["ddblake-example-ddb-table-consumer"]
    (database,) = _of_type(consumer, "AWS::Glue::Database").values()
    assert database["DeletionPolicy"] == "Delete"
    for template in destroy_templates.values():
        buckets = _of_type(template, "AWS::S3::Bucket")
        assert buckets and all(b["DeletionPolicy"] == "Delete" for b in buckets.values())
        assert set(_policies_by_bucket(template).values()) <= {None, "Delete"}


def test_destroy_turns_table_deletion_protection_off(destroy_templates: dict[str, Any]) -> None:
    """Deletion protection on a table the stack deletes makes ``cdk destroy`` fail."""
    producer = destroy_templates["ddblake-example-ddb-table-producer"]
    (table,) = _of_type(producer, "AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False


@pytest.mark.parametrize(
    ("removal_policy", "explicit", "expected"),
    [
        ("retain", None, True),
        ("destroy", None, False),
        ("destroy", True, True),  # an explicit value wins
        ("retain", False, False),
    ],
)
def test_deletion_protection_defaults_to_the_removal_policy(
    removal_policy: str, explicit: bool | None, expected: bool
) -> None:
    raw = _example("single-account") | {"removal_policy": removal_policy}
    if explicit is not None:
        raw["table"] = raw["table"] | {"deletion_protection": explicit}
    assert parse_config(raw, file="x.json").table.deletion_protection is expected
