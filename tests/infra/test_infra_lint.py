"""cfn-lint on every synthesized template: no errors (warnings are listed, not failed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

ALLOWED_WARNINGS = {
    # CDK itself adds DependsOn on a Lambda function's role next to the Role GetAtt.
    "W3005",
}


def _templates(assemblies: dict[str, Path]) -> list[Path]:
    return sorted(p for a in assemblies.values() for p in a.glob("*.template.json"))


def test_every_stack_was_synthesized(assemblies: dict[str, Path]) -> None:
    names = sorted(p.name for p in _templates(assemblies))
    assert names == [
        "ddblake-example-ddb-table-consumer.template.json",
        "ddblake-example-ddb-table-producer.template.json",
        "ddblake-example-ddb-table.template.json",
    ]


@pytest.mark.parametrize("config", ["single-account", "cross-account"])
def test_cfn_lint(assemblies: dict[str, Path], config: str) -> None:
    for template in sorted(assemblies[config].glob("*.template.json")):
        matches = lint_file(template, config=ManualArgs(regions=["ap-northeast-1"]))
        errors = [m for m in matches if m.rule.id.startswith("E")]
        assert errors == [], "\n".join(str(m) for m in errors)
        warnings = [m for m in matches if m.rule.id not in ALLOWED_WARNINGS]
        assert [str(m) for m in warnings if m.rule.id.startswith("W")] == []


def test_cfn_lint_finds_errors(tmp_path: Path) -> None:
    """The lint really runs: a broken template is reported."""
    bad = tmp_path / "bad.template.json"
    bad.write_text(
        '{"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {"BillingMode": "FREE"}}}}'
    )
    matches = lint_file(bad, config=ManualArgs(regions=["ap-northeast-1"]))
    assert [m for m in matches if m.rule.id.startswith("E")]
