"""The ``names`` section: every AWS resource's name, from a default template or the config, checked
against what its service allows before CloudFormation would refuse it (CDK-free, like the rest of
the config reading)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from typing import Final

from ddblake_infra.config_reader import Section

# Per resource kind: (pattern, max length, what the service allows) for names after substitution.
_NAME_RULES: Final[dict[str, tuple[re.Pattern[str], int, str]]] = {
    "stack": (re.compile(r"^[A-Za-z][A-Za-z0-9-]*$"), 128, "letters, digits and '-', starting with a letter"),
    "stream": (re.compile(r"^[A-Za-z0-9_.-]+$"), 128, "letters, digits, '_', '.' and '-'"),
    "firehose": (re.compile(r"^[A-Za-z0-9_.-]+$"), 64, "letters, digits, '_', '.' and '-'"),
    "lambda": (re.compile(r"^[A-Za-z0-9_-]+$"), 64, "letters, digits, '_' and '-'"),
    "role": (re.compile(r"^[\w+=,.@-]+$", re.ASCII), 64, "letters, digits and +=,.@_-"),
    "glue": (re.compile(r"^[\w.-]+$", re.ASCII), 255, "letters, digits, '_', '.' and '-'"),
    "bucket": (
        re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"),
        63,
        "lower-case letters, digits, '.' and '-', starting and ending with a letter or digit",
    ),
    "alias": (re.compile(r"^alias/[A-Za-z0-9/_-]+$"), 256, "'alias/' then letters, digits, '/', '_' and '-'"),
    "topic": (re.compile(r"^[A-Za-z0-9_-]+$"), 256, "letters, digits, '_' and '-'"),
    "workgroup": (re.compile(r"^[A-Za-z0-9._-]+$"), 128, "letters, digits, '.', '_' and '-'"),
}

_DEFAULT_NAMES: Final[dict[str, tuple[str, str]]] = {
    # key: (default template, kind)
    "stack_prefix": ("ddblake-{slug}", "stack"),
    "stream": ("ddblake-{slug}", "stream"),
    "delivery_stream": ("ddblake-{slug}", "firehose"),
    "producer_copy_delivery_stream": ("ddblake-{slug}-local", "firehose"),
    "transform_function": ("ddblake-{slug}-transform", "lambda"),
    "firehose_role": ("ddblake-{slug}-firehose", "role"),
    "producer_copy_firehose_role": ("ddblake-{slug}-firehose-local", "role"),
    "transform_role": ("ddblake-{slug}-transform", "role"),
    "read_role": ("ddblake-{slug}-load-read", "role"),
    "load_role": ("ddblake-{slug}-load", "role"),
    "load_job": ("ddblake-{slug}-load", "glue"),
    "load_security_configuration": ("ddblake-{slug}-load", "glue"),
    "apply_function": ("ddblake-{slug}-apply", "lambda"),
    "apply_role": ("ddblake-{slug}-apply", "role"),
    "alarm_topic": ("ddblake-{slug}-alarms", "topic"),
    "athena_workgroup": ("ddblake-{slug}", "workgroup"),
    "lake_bucket": ("ddblake-{slug}-{consumer_account}-{region}", "bucket"),
    "access_log_bucket": ("ddblake-{slug}-logs-{consumer_account}-{region}", "bucket"),
    "producer_copy_bucket": ("ddblake-{slug}-raw-{producer_account}-{region}", "bucket"),
    "producer_copy_access_log_bucket": ("ddblake-{slug}-logs-{producer_account}-{region}", "bucket"),
    "table_key_alias": ("alias/ddblake/{slug}/table", "alias"),
    "stream_key_alias": ("alias/ddblake/{slug}/stream", "alias"),
    "lake_key_alias": ("alias/ddblake/{slug}/lake", "alias"),
    "ops_key_alias": ("alias/ddblake/{slug}/ops", "alias"),
    "producer_copy_key_alias": ("alias/ddblake/{slug}/raw", "alias"),
}


def names_in_use(
    *, deployment: str, producer_copy: bool, access_logs: bool, athena_workgroup: bool
) -> set[str]:
    """The ``names`` keys of the resources a deployment creates or refers to; the others are not
    checked (a single-account deployment never creates the producer-side copy's bucket, so its
    name must not stop the synth)."""
    unused: set[str] = set()
    if deployment != "cross-account":
        unused.add("read_role")
    if deployment != "cross-account" or not producer_copy:
        unused |= {k for k in _DEFAULT_NAMES if k.startswith("producer_copy_")}
    if not access_logs:
        unused |= {"access_log_bucket", "producer_copy_access_log_bucket"}
    if not athena_workgroup:
        unused.add("athena_workgroup")
    return set(_DEFAULT_NAMES) - unused


NAME_HASH_LENGTH: Final = 8


def _fitted_default(template: str, values: Mapping[str, str], max_len: int) -> str:
    """A default name with ``{slug}`` shortened to fit ``max_len``: the slug's start, ``-``, then the
    first 8 hex digits of the SHA-256 of the full table name, so two long names sharing a start still
    differ. Only names that would not fit change: a deployment whose names fit keeps them."""
    value = template.format_map(values)
    if len(value) <= max_len or "{slug}" not in template:
        return value
    digest = hashlib.sha256(values["table"].encode()).hexdigest()[:NAME_HASH_LENGTH]
    room = max_len - len(template.format_map({**values, "slug": ""}))
    start = values["slug"][: max(room - NAME_HASH_LENGTH - 1, 0)].rstrip("-")
    return template.format_map({**values, "slug": f"{start}-{digest}" if start else digest})


CROSS_ACCOUNT_STACK_SUFFIX: Final = len("-consumer")
"""A cross-account deployment names its stacks ``<stack_prefix>-consumer`` and ``-producer``: the
prefix has that much less room in CloudFormation's 128 characters."""


def resource_names(
    s: Section,
    values: Mapping[str, str],
    in_use: Collection[str] | None = None,
    *,
    stack_suffix: int = 0,
) -> dict[str, str]:
    """``names``: each name's template filled from ``values`` and checked against what its service
    allows, so a too-long or invalid name fails here rather than in CloudFormation.

    Default names too long for their service get a shortened table slug (:func:`_fitted_default`).
    Only the names in ``in_use`` (all when None) are checked, and every bad one is reported in the
    one error, so a long table name is fixed in one edit rather than one synth per name.
    """
    names: dict[str, str] = {}
    bad: list[tuple[str, str]] = []
    for key, (template, kind) in _DEFAULT_NAMES.items():
        pattern, max_len, allowed = _NAME_RULES[kind]
        if kind == "stack":  # the stacks' own names append to the prefix (CROSS_ACCOUNT_STACK_SUFFIX)
            max_len -= stack_suffix
        explicit = s.data.get(key) is not None
        raw = s.text(key, template)
        try:
            value = raw.format_map(values) if explicit else _fitted_default(template, values, max_len)
        except (KeyError, ValueError, IndexError) as e:
            raise s.error(
                key,
                f"{raw!r}: unknown or malformed placeholder {e}; use {{table}}, {{slug}}, "
                "{region}, {producer_account}, {consumer_account} or {namespace}",
            ) from None
        if (in_use is None or key in in_use) and (not pattern.fullmatch(value) or len(value) > max_len):
            bad.append(
                (key, f"{value!r} is not a valid {kind} name: at most {max_len} characters, {allowed}")
            )
        names[key] = value
    if len(bad) == 1:
        key, problem = bad[0]
        raise s.error(key, f"{problem}; set names.{key} to a shorter or simpler name")
    if bad:
        listed = "; ".join(f"names.{key}: {problem}" for key, problem in bad)
        raise s.error(
            "", f'{len(bad)} names are not valid, set each in "names" to a shorter or simpler one: {listed}'
        )
    return names
