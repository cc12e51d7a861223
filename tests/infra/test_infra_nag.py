"""cdk-nag AwsSolutions: zero unsuppressed findings, every suppression explained, and proof that the
check really reports findings (cdk-nag 3.0.2 with aws-cdk-lib 2.275 fails with "aspect.visit is not
a function"; the pinned 2.38.2 runs - this file shows it finds what it should)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

NAG_LEVELS = ("aws:cdk:error", "aws:cdk:warning")


def annotations(assembly: Path) -> list[tuple[str, str, str]]:
    """``(level, construct path, message)`` of every error and warning in a cloud assembly."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    found = []
    for artifact in manifest["artifacts"].values():
        metadata = dict(artifact.get("metadata", {}))
        if artifact.get("additionalMetadataFile"):
            metadata.update(json.loads((assembly / artifact["additionalMetadataFile"]).read_text()))
        for path, entries in metadata.items():
            found += [(e["type"], path, str(e["data"])) for e in entries if e["type"] in NAG_LEVELS]
    return found


@pytest.mark.parametrize("config", ["single-account", "cross-account"])
def test_no_unsuppressed_findings(assemblies: dict[str, Path], config: str) -> None:
    findings = [a for a in annotations(assemblies[config]) if "AwsSolutions-" in a[2]]
    assert findings == []
    # ... and the checks did run: cdk-nag wrote its report for every stack
    reports = list(assemblies[config].glob("AwsSolutions-*-NagReport.csv"))
    assert len(reports) == (1 if config == "single-account" else 2)
    for report in reports:
        rows = report.read_text().splitlines()
        evaluated = {r.split(",")[0].strip('"') for r in rows[1:]}
        assert {f"AwsSolutions-{rule}" for rule in ("KMS5", "IAM4", "IAM5", "S10")} <= evaluated
        assert not [r for r in rows if ',"Non-Compliant",' in r]
        assert [r for r in rows if ',"Suppressed",' in r], "the known suppressions should be listed"


def test_other_warnings_are_only_ours(assemblies: dict[str, Path]) -> None:
    others = [a for c in assemblies.values() for a in annotations(c) if "AwsSolutions-" not in a[2]]
    assert [a for a in others if "placeholder" not in a[2]] == []


def test_every_suppression_has_a_reason(templates: dict[str, Any]) -> None:
    seen = set()
    for name, template in templates.items():
        for logical, resource in template["Resources"].items():
            rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            for rule in rules:
                seen.add(rule["id"])
                assert len(rule.get("reason", "")) >= 40, (
                    f"{name}/{logical}: {rule['id']} needs a real reason"
                )
                if rule["id"] == "AwsSolutions-IAM5":
                    assert rule.get("applies_to"), f"{name}/{logical}: IAM5 suppressed for every wildcard"
    assert seen == {"AwsSolutions-IAM5", "AwsSolutions-KDF1", "AwsSolutions-KDS3", "AwsSolutions-L1"}


@pytest.fixture(scope="module")
def insecure(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A deliberately insecure stack checked by the project's own nag set-up (check_nag, suppress)."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Annotations

    from ddblake_infra.nag import check_nag, suppress

    app = App(outdir=str(tmp_path_factory.mktemp("nag-insecure")))
    stack = Stack(app, "Insecure")
    s3.Bucket(stack, "PlainBucket")  # no encryption settings, no TLS-only policy, no access logs
    role = iam.Role(stack, "WideRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["kms:*"], resources=["*"]))
    quiet = s3.Bucket(stack, "SuppressedBucket", enforce_ssl=True)
    suppress(
        quiet,
        "AwsSolutions-S1",
        "Access logs are not wanted on this test bucket (the suppression under test).",
    )
    check_nag(app)
    return Annotations.from_stack(stack)


def test_nag_reports_an_insecure_construct(insecure: Any) -> None:
    from aws_cdk.assertions import Match

    def errors(rule: str, path: str) -> list[Any]:
        return list(insecure.find_error(path, Match.string_like_regexp(f"^{rule}[:\\[]")))

    assert errors("AwsSolutions-S1", "/Insecure/PlainBucket/Resource")  # no server access logs
    assert errors("AwsSolutions-S10", "/Insecure/PlainBucket/Resource")  # no TLS-only policy
    assert errors("AwsSolutions-IAM5", "/Insecure/WideRole/DefaultPolicy/Resource")  # kms:* on *


def test_nag_suppression_silences_only_what_it_names(insecure: Any) -> None:
    from aws_cdk.assertions import Match

    assert not list(
        insecure.find_error(
            "/Insecure/SuppressedBucket/Resource", Match.string_like_regexp("^AwsSolutions-S1:")
        )
    )
    assert not list(
        insecure.find_error(
            "/Insecure/SuppressedBucket/Resource", Match.string_like_regexp("^AwsSolutions-S10")
        )
    )
    assert list(
        insecure.find_error("/Insecure/PlainBucket/Resource", Match.string_like_regexp("^AwsSolutions-S1:"))
    )
