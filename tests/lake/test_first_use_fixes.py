"""What a first-time user ran into (session 22's walk through the tool), each now one clear line.

A ``~user`` path that cannot be expanded, an S3 lake whose bucket does not exist, a relative lake in
a settings file, credentials DynamoDB Local refuses, an apply that publishes an unfinished load.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from lake_helpers import TABLE, Lake, event

from ddblake.aws.clients import translate_error
from ddblake.cli.main import main
from ddblake.load.state import LoadState, write_state

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_a_tilde_path_of_no_user_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "status", "--lake", "~no-such-user-here/lake")
    assert code == 2
    assert err == (
        "ddblake: error: lake '~no-such-user-here/lake': cannot expand '~no-such-user-here' "
        "(Could not determine home directory.); give the directory's full path"
    )


def test_an_s3_lake_whose_bucket_does_not_exist_is_no_lake(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    for argv in (["status"], ["query", "select 1"], ["apply", "--table", TABLE, "--once"]):
        code, err = _run(capsys, *argv[:1], "--lake", "s3://no-such-bucket-here/lake", *argv[1:])
        assert code == 2, err
        assert err == (
            "ddblake: error: no lake at s3://no-such-bucket-here/lake: S3 has no bucket "
            "'no-such-bucket-here' (in this account and endpoint); check --lake (or DDBLAKE_LAKE)"
        )
    # The bucket there and nothing in it yet (a stack just deployed): a lake with no tables.
    assert main(["status", "--lake", f"s3://{moto_s3.bucket}/lake"]) == 0
    assert "the lake holds no tables yet" in capsys.readouterr().out


def test_a_relative_lake_in_a_settings_file_is_the_files_folders(
    lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    config = lake.root.parent / "ddblake.toml"
    config.write_text(f'lake = "./{lake.root.name}"\ntable = "{TABLE}"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert main(["--config", str(config), "apply", "--once"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "dump"]) == 0
    assert capsys.readouterr().out == '{"Item":{"pk":{"S":"a"},"n":{"N":"1"}}}\n'

    typo = tmp_path / "typo.toml"
    typo.write_text('lake = "./lak"\n')
    code, err = _run(capsys, "--config", str(typo), "status")
    assert code == 2
    assert err == (
        f"ddblake: error: no lake at {tmp_path / 'lak'}: check --lake (or DDBLAKE_LAKE or lake in {typo}); "
        "capture, load and sync create one"
    )


def test_apply_says_when_the_load_it_publishes_is_unfinished(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    state = LoadState(
        table=TABLE,
        name="scan",
        kind="scan",
        load_id="L1",
        started_us=1_764_316_800_000_000,
        version_time_us=1_764_316_800_000_000,
        total_parts=16,
    )
    state.part("3").items = 1
    state.finish_segment("3")  # 1 of 16 segments read, as a load stopped by Ctrl-C leaves it
    write_state(lake.storage, state)
    assert main(["apply", "--table", TABLE, "--lake", str(lake.root), "--once"]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"table {TABLE}: load scan L1 unfinished: 1 of 16 segment(s) done, 1 item(s) so far" in w
        and w.endswith("until then the tables hold only the part of the table it read")
        for w in warned
    ), warned
    caplog.clear()

    state.finished_us = 1_764_316_900_000_000  # finished: nothing to say
    write_state(lake.storage, state)
    assert main(["apply", "--table", TABLE, "--lake", str(lake.root), "--once"]) == 0
    assert not any("unfinished" in r.getMessage() for r in caplog.records)


def test_credentials_that_dynamodb_local_refuses_say_what_it_takes(dynamodb_local_endpoint: str) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local_endpoint,
        region_name="us-east-1",
        aws_access_key_id="my_key",  # an underscore: DynamoDB Local refuses it
        aws_secret_access_key="x",  # noqa: S106 - DynamoDB Local's, not a secret
    )
    with pytest.raises(ClientError) as raised:
        client.list_tables()
    said = str(translate_error(raised.value, action="ListTables", client=client))
    assert "only an access key ID of letters and digits" in said and "aws sso login" not in said


def test_no_credentials_for_glue_does_not_point_at_dynamodb_local() -> None:
    glue = str(translate_error(NoCredentialsError(), action="Glue GetTables"))
    assert "AWS_ACCESS_KEY_ID" in glue and "--endpoint-url" not in glue
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    scan = str(translate_error(NoCredentialsError(), action="Scan", table="t", client=dynamodb))
    assert "--endpoint-url for DynamoDB Local" in scan


def test_an_s3_scheme_in_capitals_is_an_s3_lake() -> None:
    from ddblake.lake.catalog import LakeConfig

    config = LakeConfig.build(lake="S3://analytics-lake/ddb")
    assert (config.lake, config.catalog) == ("s3://analytics-lake/ddb", "glue")


def test_apply_with_nothing_to_apply_leaves_no_catalog_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "an existing folder"
    folder.mkdir()
    code, err = _run(capsys, "apply", "--table", "mistyped-table", "--lake", str(folder), "--once")
    assert code == 1 and "nothing to apply (is the table name right?" in err
    assert list(folder.iterdir()) == [], "no catalog.db to make the folder look like a lake"


def test_a_continuous_apply_says_once_that_it_runs_and_where_it_looks(
    lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from ddblake.lake.options import ApplyConfig
    from ddblake.lake.service import run_apply

    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    stop = threading.Event()
    stop.set()  # stopped before its first poll: only what it says on the way in
    caplog.set_level(logging.INFO, logger="ddblake")
    run_apply(ApplyConfig.build(table=TABLE, lake=lake.config, once=False, poll_seconds=2.5), stop=stop)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"apply {TABLE}: applying")]
    assert said == [
        f"apply {TABLE}: applying new raw files under {lake.storage.root}/raw/{TABLE}/ every 2.5 s "
        "until stopped (Ctrl-C or SIGTERM)"
    ]
