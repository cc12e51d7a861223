"""CaptureConfig precedence (argument, DDBLAKE_*, default) and messages that name what is missing."""

from __future__ import annotations

import dataclasses

import pytest

from ddblake.capture.config import DEFAULT_POLL_SECONDS, CaptureConfig
from ddblake.errors import ConfigError
from ddblake.lake.rawlog import DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_SECONDS


def test_defaults_apply_when_nothing_is_given() -> None:
    config = CaptureConfig.build(table="tb1", lake="/lake")
    assert config == CaptureConfig(table="tb1", lake="/lake")
    assert (config.buffer_bytes, config.buffer_seconds) == (DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_SECONDS)
    assert config.poll_seconds == DEFAULT_POLL_SECONDS and not config.once and config.endpoint_url is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.table = "other"  # type: ignore[misc]


def test_environment_fills_in_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_TABLE", "from-env")
    monkeypatch.setenv("DDBLAKE_LAKE", "s3://bucket/lake")
    monkeypatch.setenv("DDBLAKE_ENDPOINT_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("DDBLAKE_ONCE", "true")
    monkeypatch.setenv("DDBLAKE_BUFFER_BYTES", "1000")
    monkeypatch.setenv("DDBLAKE_BUFFER_SECONDS", "2.5")
    monkeypatch.setenv("DDBLAKE_POLL_SECONDS", "0.25")
    from_env = CaptureConfig.build()
    assert from_env == CaptureConfig(
        table="from-env",
        lake="s3://bucket/lake",
        endpoint_url="http://127.0.0.1:8000",
        once=True,
        buffer_bytes=1000,
        buffer_seconds=2.5,
        poll_seconds=0.25,
    )
    given = CaptureConfig.build(
        table="arg", lake="/l", endpoint_url="http://h:1", buffer_bytes=7, buffer_seconds=9
    )
    assert (given.table, given.lake, given.endpoint_url, given.buffer_bytes, given.buffer_seconds) == (
        "arg",
        "/l",
        "http://h:1",
        7,
        9,
    )


def test_missing_value_names_the_key_and_where_it_looked() -> None:
    with pytest.raises(ConfigError, match=r"missing table: pass --table or set DDBLAKE_TABLE"):
        CaptureConfig.build(lake="/lake")
    with pytest.raises(ConfigError, match=r"missing lake: pass --lake or set DDBLAKE_LAKE"):
        CaptureConfig.build(table="tb1")


def test_malformed_values_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_BUFFER_BYTES", "lots")
    with pytest.raises(ConfigError, match="DDBLAKE_BUFFER_BYTES='lots'"):
        CaptureConfig.build(table="tb1", lake="/lake")
    monkeypatch.delenv("DDBLAKE_BUFFER_BYTES")
    with pytest.raises(ConfigError, match=r"--buffer-seconds \(or DDBLAKE_BUFFER_SECONDS\) must be positive"):
        CaptureConfig.build(table="tb1", lake="/lake", buffer_seconds=0)


ROLE = "arn:aws:iam::111111111111:role/read"


def test_the_role_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", ROLE)
    monkeypatch.setenv("DDBLAKE_EXTERNAL_ID", "ext-env")
    from_env = CaptureConfig.build(table="tbl", lake="/lake")
    assert (from_env.assume_role, from_env.external_id) == (ROLE, "ext-env")
    other = "arn:aws:iam::222222222222:role/other"
    given = CaptureConfig.build(table="tbl", lake="/lake", assume_role=other, external_id="ext")
    assert (given.assume_role, given.external_id) == (other, "ext")


def test_a_malformed_role_is_refused_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDBLAKE_ASSUME_ROLE", "read-role")
    # named where it came from (review 29): the variable, not the flag nobody passed
    with pytest.raises(ConfigError, match=r"^DDBLAKE_ASSUME_ROLE 'read-role' is not an IAM role ARN"):
        CaptureConfig.build(table="tbl", lake="/lake")
