"""Errors of setting AWS up, said without values: profiles, regions, endpoint URLs, parameters.

boto3 raises these while a session or client is built (a profile the shell names but the config
file lacks, a schemeless endpoint URL) or before a request is sent (botocore's parameter
validation, whose text quotes the values, which may be item data). Each becomes one line that
names what is involved and the fix.
"""

from __future__ import annotations

import os
import re
from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ConfigNotFound,
    ConfigParseError,
    CredentialRetrievalError,
    HTTPClientError,
    InvalidConfigError,
    InvalidRegionError,
    MetadataRetrievalError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ddblake.errors import ConfigError, DdblakeError, TerminalError, TransientError
from ddblake.redact import first_line


def env_value(name: str) -> str | None:
    """The variable's value, stripped; None when unset or blank (as botocore takes it)."""
    value = os.environ.get(name, "").strip()
    return value or None


def endpoint_variable(names: tuple[str, ...]) -> str | None:
    """The first of ``names`` (``AWS_ENDPOINT_URL_<SERVICE>``, ...) that is set, if any."""
    return next((name for name in names if env_value(name)), None)


def aws_profile() -> tuple[str, str]:
    """The AWS profile boto3 uses and the variable that names it (``('default', 'AWS_PROFILE')``
    when none does)."""
    for name in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE"):  # botocore's order
        profile = env_value(name)
        if profile:
            return profile, name
    return "default", "AWS_PROFILE"


def _aws_config_file() -> str:
    return env_value("AWS_CONFIG_FILE") or "~/.aws/config"


def without_userinfo(endpoint: str) -> str:
    """``endpoint`` without a ``user:password@`` part, which must never reach a message."""
    scheme, sep, rest = endpoint.rpartition("://")
    host = rest.rpartition("@")[2] if "@" in rest else rest
    return f"{scheme}{sep}{host}"


def endpoint_url_error(endpoint: str, source: str) -> ConfigError:
    """The endpoint URL is not one botocore accepts (``localhost:8000``): say how to write it."""
    endpoint = without_userinfo(endpoint)
    example = f"http://{endpoint}" if "://" not in endpoint and endpoint.strip() else "http://localhost:8000"
    return ConfigError(
        f"endpoint URL {endpoint!r} (from {source}) is not a URL: give scheme and host, e.g. {example}"
    )


_CONFIG_ERRORS: Final = (PartialCredentialsError, InvalidConfigError, ConfigParseError, ConfigNotFound)
"""Set-up errors that are the configuration's: a usage error (exit 2) saying what to fix."""
_PASSING_ERRORS: Final = (
    CredentialRetrievalError,
    MetadataRetrievalError,
    BotoConnectionError,
    HTTPClientError,
)
"""Set-up errors of a credential source that did not answer (a container or instance endpoint, a
``credential_process`` failing): worth a retry, not a configuration mistake."""


def setup_error(e: BaseException, *, what: str, source: str | None = None) -> DdblakeError:
    """The error for an error boto3 raised while building a session or client.

    Names the AWS profile (and the variable that chose it), the region or the endpoint URL involved,
    and the fix. ``what``: what was being built (``the DynamoDB client``); ``source``: where the
    endpoint override in effect came from (``--endpoint-url``), None when there is none.

    Returns:
        ConfigError for the configuration's mistakes (a profile, region, endpoint URL or config
        file that is wrong); TransientError when a credential source did not answer; TerminalError
        for anything else.
    """
    profile, variable = aws_profile()
    if isinstance(e, ProfileNotFound):
        named = str(e.kwargs.get("profile") or profile)
        return ConfigError(
            f"cannot build {what}: the config profile {named!r} ({variable}) could not be found in "
            f"{_aws_config_file()}: set {variable} to a profile of your AWS config file, or unset it"
        )
    if isinstance(e, InvalidRegionError):
        region = str(e.kwargs.get("region_name", ""))
        return ConfigError(
            f"cannot build {what}: region {region!r} (AWS_DEFAULT_REGION, AWS_REGION or profile {profile!r}) "
            "is not a region name: set a region such as us-east-1"
        )
    if isinstance(e, ValueError) and not isinstance(e, BotoCoreError):
        text = str(e)
        if text.startswith("Invalid endpoint:"):
            bad = text.partition(":")[2].strip()
            return endpoint_url_error(
                bad, source or f"the endpoint_url of profile {profile!r} in {_aws_config_file()}"
            )
    text = (
        f"cannot build {what}: {first_line(e)} ({type(e).__name__}); check the AWS profile {profile!r} "
        f"({variable}) in {_aws_config_file()} and the AWS_* environment variables"
    )
    if isinstance(e, _PASSING_ERRORS):
        return TransientError(f"{text}, or run again if the credential source was only unreachable")
    return ConfigError(text) if isinstance(e, _CONFIG_ERRORS) else TerminalError(text)


_PARAM_LINE: Final = re.compile(
    r"^(?P<what>Invalid (?:type|value|length) for (?:document )?parameter) (?P<name>.+?), value: "
)
_TYPE_TAIL: Final = re.compile(
    r", type: <class '(?P<got>[\w.]+)'>, valid types: "
    r"(?P<valid>(?:<class '[\w.]+'>|file-like object)(?:, (?:<class '[\w.]+'>|file-like object))*)$"
)
_MIN_TAIL: Final = re.compile(r", valid min (?P<kind>value|length): (?P<min>-?\d+)$")
_CLASS: Final = re.compile(r"<class '([\w.]+)'>")
_JSON_LINE: Final = re.compile(r"^Invalid parameter (?P<name>.+?) must be json serializable: ")
_UNKNOWN: Final = "Unknown parameter in "
_VALUE_FREE: Final = (
    "Missing required parameter in ",
    "Invalid number of parameters set ",
    "Must set one of the following keys ",
)
_MAX_PROBLEMS: Final = 5


def refused_parameters(e: ParamValidationError) -> str:
    """The parameters botocore's validation refused, on one line, *without* the values it quotes.

    botocore's own text (``Invalid type for parameter ExclusiveStartKey.pk.N, value: 4111...,
    type: <class 'int'>, valid types: <class 'str'>``) quotes each value, which may be item data (a
    key value), over several lines. This keeps the parameter paths, the type given and the types
    or bounds allowed: ``Invalid type for parameter ExclusiveStartKey.pk.N (got int, valid types:
    str)``. Lines it does not recognise (a value's own line breaks among them) are dropped.
    """
    report = str(e.kwargs.get("report", "")) if e.kwargs.get("report") is not None else str(e)
    problems: list[str] = []
    for line in report.splitlines():
        found = _PARAM_LINE.match(line)
        if found:
            text = f"{found['what']} {found['name'][:200]}"
            kind = _TYPE_TAIL.search(line)
            bound = _MIN_TAIL.search(line)
            if kind:
                valid = _CLASS.sub(r"\1", kind["valid"])
                text += f" (got {kind['got']}, valid types: {valid})"
            elif bound:
                text += f" (valid min {bound['kind']}: {bound['min']})"
            problems.append(text)
        elif json_line := _JSON_LINE.match(line):
            problems.append(f"Invalid parameter {json_line['name'][:200]}: not JSON serializable")
        elif line.startswith(_UNKNOWN):  # the unknown name botocore quotes may be a value
            problems.append(f"{line.partition(':')[0][:300]}: a name it does not know")
        elif line.startswith(_VALUE_FREE):
            problems.append(line[:300])
    if not problems:
        return "parameter validation failed"
    more = len(problems) - _MAX_PROBLEMS
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    return f"{shown}; and {more} more" if more > 0 else shown
