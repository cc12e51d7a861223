"""docs/deploy.md says what the templates and the code do: trust-policy conditions, the apply's listing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from infra_templates import statements

from ddblake_infra.assets import SRC, import_closure

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy.md"
CONDITION_KEYS = ("aws:SourceAccount", "aws:SourceArn", "sts:ExternalId", "aws:PrincipalArn")


def _sentences(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", text)
    return [s.strip() for s in re.split(r"(?<=[.;])\s", flat)]


def _claimed_keys(text: str, role: str) -> set[str]:
    """Condition keys docs/deploy.md says the ``role`` trust policies carry: the clauses
    (sentences split at ';') naming the role and a trust policy, each key quoted in them."""
    found: set[str] = set()
    for clause in _sentences(text):
        if role in clause and "trust polic" in clause:
            found |= {key for key in CONDITION_KEYS if f"`{key}`" in clause.split("(")[0]}
    return found


def _template_keys(templates: dict[str, Any], role: re.Pattern[str]) -> set[str]:
    keys: set[str] = set()
    for name, template in templates.items():
        for s in statements(name, template):
            if s.kind == "trust" and role.fullmatch(s.owner):
                keys |= {k for block in s.conditions.values() for k in block}
    return keys


def test_trust_policy_conditions_match_the_templates(templates: dict[str, Any]) -> None:
    text = DEPLOY.read_text()
    firehose = _template_keys(templates, re.compile(r"ddblake-.+-firehose(-local)?"))
    glue = _template_keys(templates, re.compile(r"ddblake-.+-load"))
    assert firehose == {"sts:ExternalId"}
    assert _claimed_keys(text, "Firehose roles") == firehose
    assert glue and _claimed_keys(text, "Glue") == glue


def test_the_apply_listing_is_described_as_one_listing() -> None:
    """apply_handler passes apply's own listing to its metrics: one listing of raw/<table>/ a run."""
    text = re.sub(r"\s+", " ", DEPLOY.read_text())
    (sentence,) = [s for s in _sentences(text) if s.startswith("Each apply run lists")]
    assert "lists all of `raw/<table>/` once" in sentence
    assert "twice" not in sentence and "once for its metrics" not in sentence


def test_every_stack_output_is_named(templates: dict[str, Any]) -> None:
    """The outputs rows of the inventory name every output of every example template (the
    producer-side copy's bucket and key included)."""
    named = set(re.findall(r"`([A-Za-z]+)`", DEPLOY.read_text()))
    outputs = {o for template in templates.values() for o in template.get("Outputs", {})}
    assert {"LocalCopyBucketArn", "LocalCopyKeyArn"} <= outputs
    assert sorted(outputs - named) == []


def test_the_key_alias_names_keys_are_named() -> None:
    """docs/deploy.md names each key alias by its ``names.<key>`` and default."""
    from ddblake_infra.resource_names import _DEFAULT_NAMES

    text = re.sub(r"\s+", " ", DEPLOY.read_text())
    aliases = {k: v for k, (v, kind) in _DEFAULT_NAMES.items() if kind == "alias"}
    assert len(aliases) == 5
    for key, default in aliases.items():
        assert f"`{key}` `{default}`" in text, key


def test_the_apply_not_running_row_says_what_a_new_deployment_does() -> None:
    """The alarm table states the exact behaviour on a new deployment (one ALARM, then OK after the
    first run; none again on an update), why no setting avoids it, and when a stopped schedule is
    reported (CloudWatch's evaluation range), instead of "may notify once"."""
    text = re.sub(r"\s+", " ", DEPLOY.read_text())
    _, row, *others = text.split("| apply not running (")
    assert not others  # one row
    row = row.split(" | consumer |")[0]
    assert "may notify once" not in row
    for claim in (
        "**On a new deployment** the alarm notifies once",
        "within minutes of `cdk deploy` the topic gets ALARM",
        "it gets OK minutes after apply's first scheduled run ends",
        "If no OK comes within one period, the schedule has never invoked apply",
        "a CloudWatch alarm does not know its own age",
        "`ignore` or `missing` would leave a new alarm silent in INSUFFICIENT_DATA",
        "A later `cdk deploy` of the stack does not notify again",
        "evaluation range",
    ):
        assert claim in row, claim


_NUMBER_WORDS = dict(
    zip(("eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen"), range(8, 15), strict=True)
)


def _expanded(pattern: str) -> set[str]:
    """``dir/{a,b}.py`` as ``{"dir/a.py", "dir/b.py"}`` (one brace group at most)."""
    match = re.fullmatch(r"(.*)\{(.*)\}(.*)", pattern)
    if match is None:
        return {pattern}
    head, names, tail = match.groups()
    return {f"{head}{name}{tail}" for name in names.split(",")}


def test_the_transform_bundle_listing_matches_its_import_closure() -> None:
    """An operator who builds the transform's layer from deploy.md's list gets a Lambda that
    imports: the list, and its count, are the files the synth bundles."""
    flat = re.sub(r"\s+", " ", DEPLOY.read_text(encoding="utf-8"))
    claim = re.search(r"today (\w+) files of `src/ddblake`: (.*?)\), found by reading", flat)
    assert claim is not None, "docs/deploy.md no longer lists the transform bundle's files"
    listed = {f for item in re.findall(r"`([^`]+)`", claim.group(2)) for f in _expanded(item)}
    files, _ = import_closure()
    bundled = {p.relative_to(SRC / "ddblake").as_posix() for p in files}
    assert listed == bundled
    assert _NUMBER_WORDS.get(claim.group(1)) == len(bundled)
