"""Reading synthesized CloudFormation templates: resources, policy statements, readable resources.

Intrinsics are rendered to strings a test can match: ``{"Fn::GetAtt": [id, "Arn"]}`` becomes
``<AWS::S3::Bucket.Arn>`` (the type of the resource ``id``), ``{"Ref": id}`` becomes
``<AWS::SNS::Topic>``, ``{"Ref": "AWS::Region"}`` becomes ``${AWS::Region}``, ``Fn::Join`` joins.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


def resources_of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def render(value: Any, resources: dict[str, Any]) -> str:
    """A CloudFormation value as a plain string (see the module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return f"<{resources[logical]['Type']}.{attr}>"
        if fn == "Ref":
            return f"<{resources[arg]['Type']}>" if arg in resources else "${" + arg + "}"
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(render(p, resources) for p in parts)
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
    raise AssertionError(f"cannot render {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    """One policy statement with rendered actions, resources and principals."""

    where: str  # "<template>/<logical id>" and the policy kind
    kind: str  # identity | trust | bucket | key | topic
    owner: str  # role name, bucket/key logical ID...
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: dict[str, tuple[str, ...]]
    conditions: dict[str, Any]
    raw: dict[str, Any]


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(doc.get("Statement", []))


def _principals(stmt: dict[str, Any], resources: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    principal = stmt.get("Principal", {})
    if principal == "*":
        return {"*": ("*",)}
    return {k: tuple(render(v, resources) for v in as_list(vs)) for k, vs in principal.items()}


def statements(template_name: str, template: dict[str, Any]) -> Iterator[Statement]:
    """Every policy statement of a template: role inline policies and trust policies, managed and
    standalone policies, bucket, key and topic policies."""
    res = template["Resources"]

    def make(logical: str, kind: str, owner: str, stmt: dict[str, Any]) -> Statement:
        return Statement(
            where=f"{template_name}/{logical} ({kind})",
            kind=kind,
            owner=owner,
            effect=stmt["Effect"],
            actions=tuple(as_list(stmt.get("Action", []))),
            resources=tuple(render(r, res) for r in as_list(stmt.get("Resource", []))),
            principals=_principals(stmt, res),
            conditions=stmt.get("Condition", {}),
            raw=stmt,
        )

    for logical, r in res.items():
        props = r.get("Properties", {})
        kind = r["Type"]
        if kind == "AWS::IAM::Role":
            name = props.get("RoleName", logical)
            for s in _statements(props["AssumeRolePolicyDocument"]):
                yield make(logical, "trust", name, s)
            for policy in props.get("Policies", []):
                for s in _statements(policy["PolicyDocument"]):
                    yield make(logical, "identity", name, s)
            assert not props.get("ManagedPolicyArns"), f"{template_name}/{logical}: managed policies attached"
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for s in _statements(props["PolicyDocument"]):
                yield make(logical, "identity", logical, s)
        elif kind == "AWS::S3::BucketPolicy":
            for s in _statements(props["PolicyDocument"]):
                yield make(logical, "bucket", render(props["Bucket"], res), s)
        elif kind == "AWS::KMS::Key":
            for s in _statements(props["KeyPolicy"]):
                yield make(logical, "key", logical, s)
        elif kind == "AWS::SNS::TopicPolicy":
            for s in _statements(props["PolicyDocument"]):
                yield make(logical, "topic", logical, s)
