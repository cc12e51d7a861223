"""A lake in the Glue Data Catalog takes DynamoDB table names of at most 247 characters.

Glue refuses a table name over 255 characters, and a table's change history is named
``<identifier>_changes``: a 248-character DynamoDB name passed every check before and failed at
apply's first commit, on every run. infra refuses such a name at synth; the command line and the
Lambda build their apply settings through :meth:`ApplyConfig.build`, which now refuses it too.
"""

from __future__ import annotations

import pytest

from ddblake.cli.main import main
from ddblake.errors import ConfigError
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.options import ApplyConfig

NAME_247 = "orders." + "x" * 234 + "-v2025"
NAME_248 = "orders." + "x" * 235 + "-v2025"


def test_the_boundary_names() -> None:
    assert len(NAME_247) == 247
    assert len(NAME_248) == 248


def test_a_glue_lake_refuses_a_name_whose_history_glue_cannot_hold() -> None:
    lake = LakeConfig.build(lake="s3://bucket/lake", catalog="glue")
    with pytest.raises(ConfigError, match=r"'orders\.x+-v2025' is 248 characters: .* at most 247 characters"):
        ApplyConfig.build(table=NAME_248, lake=lake)
    assert ApplyConfig.build(table=NAME_247, lake=lake).table == NAME_247


def test_a_sqlite_lake_takes_every_dynamodb_name(tmp_path: object) -> None:
    name = "t" * 255  # DynamoDB's longest: a SQLite catalog has no such limit
    lake = LakeConfig.build(lake=str(tmp_path), catalog="sql")
    assert ApplyConfig.build(table=name, lake=lake).table == name


def test_the_command_line_says_so_in_one_line_before_calling_aws(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No endpoint runs here: the refusal comes before any call to S3 or Glue."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE"):
        monkeypatch.delenv(name, raising=False)
    code = main(["apply", "--once", "--table", NAME_248, "--lake", "s3://bucket/lake", "--catalog", "glue"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "over Glue's 255" in lines[0]
