"""cdk-nag AwsSolutions checks, and every suppression with its reason.

A suppression names the rule, the reason and, for IAM5 (wildcards), exactly which wildcard
resources it accepts (as anchored regular expressions), so a new wildcard anywhere else is still
reported. The constructs call these helpers right where they create the resource concerned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Aspects
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct


def check_nag(scope: IConstruct) -> None:
    """Run AwsSolutions on everything under ``scope`` (findings become error annotations)."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=True))


def suppress(
    construct: IConstruct, rule: str, reason: str, applies_to: Sequence[RegexAppliesTo] | None = None
) -> None:
    """Suppress ``rule`` on ``construct`` (and its children) for ``reason``."""
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=True,
    )


def _js(pattern: str) -> RegexAppliesTo:
    return RegexAppliesTo(regex="/" + pattern.replace("/", "\\/") + "/")


def object_prefixes(prefixes: Sequence[str]) -> list[RegexAppliesTo]:
    """IAM5 evidence for ``<bucket>/<prefix>*`` resources: objects under one fixed prefix of one
    bucket (the bucket as a CloudFormation reference or as a literal ARN)."""
    bucket = r"(<[A-Za-z0-9]+\.Arn>|arn:aws[a-z-]*:s3:::[a-z0-9.-]+)"
    return [_js(rf"^Resource::{bucket}/{re.escape(p)}\*$") for p in prefixes]


def literal(resources: Sequence[str]) -> list[RegexAppliesTo]:
    """IAM5 evidence for exactly these resource strings."""
    return [_js(rf"^Resource::{re.escape(r)}$") for r in resources]


def literal_suffix(suffix: str) -> list[RegexAppliesTo]:
    """IAM5 evidence for ``<resource ARN><suffix>`` (a token or a literal ARN, then ``suffix``)."""
    return [_js(rf"^Resource::(<[A-Za-z0-9]+\.Arn>|arn:[^*]+){re.escape(suffix)}$")]


def suppress_object_prefixes(role: IConstruct, prefixes: Sequence[str], why: str) -> None:
    """IAM5 for a role whose object permissions are scoped to fixed prefixes."""
    suppress(
        role,
        "AwsSolutions-IAM5",
        "Object-level S3 actions need an object ARN; these are limited to fixed per-table prefixes "
        f"({', '.join(prefixes)}) of one bucket: {why}",
        object_prefixes(prefixes),
    )
