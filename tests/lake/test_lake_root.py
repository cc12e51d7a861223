"""A local lake's folder appears with its first write, and messages name its files by path.

A first ``load``, ``capture`` or ``sync`` that failed before writing anything (an endpoint nothing
answers on) used to leave an empty lake folder, which ``status`` then took for a lake with no
tables. And what a message told people to delete, or to pass as ``--lake``, was a ``file://`` URI
that neither ``rm`` nor ddblake's own ``--lake`` reads as the path it names.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.aws.clients import build_dynamodb_clients
from ddblake.cli.main import main
from ddblake.errors import ConfigError, TerminalError
from ddblake.lake.catalog import CATALOG_FILE, LakeConfig, open_catalog
from ddblake.lake.storage import Storage
from ddblake.load.handoff import first_load_path, first_load_started
from ddblake.local.runtime import free_port

pytestmark = pytest.mark.e2e


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "argv", [["load"], ["capture", "--once"], ["sync", "--once"]], ids=["load", "capture", "sync"]
)
def test_a_first_command_that_fails_before_writing_leaves_no_folder(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "new" / "lake"  # its parent is not there either
    nobody = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on: refused at once

    code, err = _run(
        capsys, *argv[:1], "--table", "orders", "--lake", str(lake), "--endpoint-url", nobody, *argv[1:]
    )

    assert code == 1 and "cannot reach endpoint" in err, err
    assert not (tmp_path / "new").exists()
    code, err = _run(capsys, "status", "--lake", str(lake))
    assert code == 2
    assert err == (
        f"ddblake: error: no lake at {lake}: check --lake (or DDBLAKE_LAKE); "
        "capture, load and sync create one"
    )


def test_opening_and_reading_a_lake_that_is_not_there_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "new" / "lake"
    storage = Storage.from_uri(str(lake))
    assert storage.read("state/x.json") is None
    assert storage.list_files("raw/") == [] and storage.list_dirs("raw/") == []
    for argv in (["status"], ["dump", "--table", TABLE], ["query", "select 1"]):
        code, _ = _run(capsys, argv[0], "--lake", str(lake), *argv[1:])
        assert code == 2, argv
    assert not (tmp_path / "new").exists()


def test_a_file_in_the_lakes_way_is_refused_when_opened(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a lake")
    for lake in (afile, afile / "sub"):
        with pytest.raises(ConfigError, match=f"{afile} is a file, not a directory; pass a directory"):
            Storage.from_uri(str(lake))


def test_the_first_write_creates_the_folder_and_its_parents(lake: Lake, tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path / "a" / "b" / "lake"))
    assert not (tmp_path / "a").exists()
    storage.write_atomic("state/x.json", b"{}")
    assert (tmp_path / "a" / "b" / "lake" / "state" / "x.json").read_bytes() == b"{}"

    # the fixture's lake: not there until its raw log's first file, then applied as ever
    assert not lake.root.exists()
    lake.write([event("INSERT", "a", 1, image={"n": {"N": "1"}})])
    assert not (lake.root / CATALOG_FILE).exists()
    assert lake.apply().files == 1
    assert (lake.root / CATALOG_FILE).is_file()
    assert lake.dump() == {"a": {"pk": {"S": "a"}, "n": {"N": "1"}}}


def test_the_sqlite_catalog_of_a_lake_not_there_yet_creates_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "fresh" / "lake"
    config = LakeConfig.build(lake=str(root))
    catalog = open_catalog(config, Storage.from_uri(str(root)))
    assert (root / CATALOG_FILE).is_file()
    assert list(catalog.list_tables("ddb")) == []


def test_a_first_load_creates_the_lake_and_apply_reads_it(
    dynamodb_local_endpoint: str, table_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ddb = build_dynamodb_clients(dynamodb_local_endpoint).dynamodb
    ddb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    lake = str(tmp_path / "new" / "lake")

    assert (
        main(["load", "--table", table_name, "--lake", lake, "--endpoint-url", dynamodb_local_endpoint]) == 0
    )
    assert main(["apply", "--table", table_name, "--lake", lake, "--once"]) == 0
    capsys.readouterr()
    assert main(["dump", "--table", table_name, "--lake", lake]) == 0
    assert json.loads(capsys.readouterr().out) == {"Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}
    assert (tmp_path / "new" / "lake" / CATALOG_FILE).is_file()


def test_shown_is_a_path_for_a_local_lake_and_the_uri_for_s3(tmp_path: Path) -> None:
    local = Storage.from_uri(str(tmp_path / "my lake"))
    assert local.shown() == f"{tmp_path}/my lake"
    assert local.shown("state/x.json") == f"{tmp_path}/my lake/state/x.json"
    assert local.uri().startswith("file://")  # what pyiceberg and the tables' properties keep
    remote = Storage.from_uri("s3://bucket/lake")
    assert (
        remote.shown() == "s3://bucket/lake"
        and remote.shown("state/x.json") == "s3://bucket/lake/state/x.json"
    )


def test_a_message_names_the_file_to_delete_by_path_and_quotes_the_lake_of_its_command(
    tmp_path: Path,
) -> None:
    root = tmp_path / "my lake"
    storage = Storage.from_uri(str(root))
    storage.write_atomic(first_load_path(TABLE), b"{damaged")

    with pytest.raises(TerminalError) as caught:
        first_load_started(storage, TABLE)

    assert str(caught.value) == (
        f"table {TABLE!r}: {root}/{first_load_path(TABLE)} is damaged; delete it and run "
        f"'ddblake sync --table {TABLE} --lake {shlex.quote(str(root))} --rebootstrap' (a new load, then the "
        "stream)"
    )
    assert f"--lake '{root}'" in str(caught.value) and "file://" not in str(caught.value)
