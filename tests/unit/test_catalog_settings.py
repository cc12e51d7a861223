"""The catalog settings said wrong: a URI given as ``catalog`` is shown without its password, and a
``catalog_uri`` that is no URL (a port of letters) is one line naming the setting, not a traceback.
And a SQL catalog two lakes share (``DDBLAKE_CATALOG_URI``) does not let one read the other's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.cli.main import main
from ddblake.errors import ConfigError
from ddblake.lake.catalog import LakeConfig, missing_sqlite_file, open_catalog
from ddblake.lake.rawlog import RawLogWriter

PASSWORD = "Sup3rSecret"  # noqa: S105 - a test value to look for


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- a URI given as the catalog kind ---------------------------------------------------------------


def test_a_uri_given_as_the_catalog_is_shown_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DDBLAKE_CATALOG", f"postgresql://lake:{PASSWORD}@db.internal/lake")
    with pytest.raises(ConfigError) as caught:
        LakeConfig.build(lake=str(tmp_path))
    text = str(caught.value)
    assert PASSWORD not in text and PASSWORD.lower() not in text
    assert "'postgresql://lake:***@db.internal/lake' (from DDBLAKE_CATALOG)" in text
    assert "must be 'sql' or 'glue'" in text and "catalog_uri (DDBLAKE_CATALOG_URI)" in text
    rc, _, err = _run(capsys, "status", "--lake", str(tmp_path))
    assert rc == 2 and len(err.splitlines()) == 1
    assert PASSWORD.lower() not in err.lower() and "lake:***@db.internal" in err


def test_a_plain_wrong_catalog_kind_is_still_shown_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DDBLAKE_CATALOG", "glu")
    with pytest.raises(ConfigError, match=r"catalog 'glu' \(from DDBLAKE_CATALOG\) must be 'sql' or 'glue'"):
        LakeConfig.build(lake=str(tmp_path))


# --- a catalog URI that is no URL -------------------------------------------------------------------

BAD_PORT = "postgresql://user:pw@db.example:54x2/lake"


def test_a_catalog_uri_with_a_port_of_letters_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        missing_sqlite_file(BAD_PORT)
    text = str(caught.value)
    assert text.startswith("catalog_uri 'postgresql://***@db.example:54x2/lake' (DDBLAKE_CATALOG_URI)")
    assert "port is not a number" in text and ":pw@" not in text
    config = LakeConfig.build(lake=str(tmp_path), catalog_uri=BAD_PORT)
    for create in (True, False):
        with pytest.raises(ConfigError, match="catalog_uri 'postgresql://\\*\\*\\*@db.example:54x2/lake'"):
            open_catalog(config, config.storage(), create=create)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["dump", "--table", "orders"],
        ["query", "select 1"],
        ["apply", "--table", "orders", "--once"],
    ],
)
def test_every_catalog_command_says_a_bad_catalog_uri_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", BAD_PORT)
    (tmp_path / "lake").mkdir()
    rc, _, err = _run(capsys, *command[:1], "--lake", str(tmp_path / "lake"), *command[1:])
    assert rc == 2, err
    assert err.startswith("ddblake: error: catalog_uri 'postgresql://***@db.example:54x2/lake'"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and ":pw@" not in err


def test_a_catalog_uri_sqlalchemy_cannot_parse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not a database URL: give one like sqlite:////path/catalog.db"):
        missing_sqlite_file("not a url")


# --- a SQL catalog two lakes share -----------------------------------------------------------------


def _land(lake: Path, pk: str) -> None:
    ev = ChangeEvent(
        op="INSERT",
        table="orders",
        keys={"pk": {"S": pk}},
        new_image={"pk": {"S": pk}},
        old_image=None,
        event_id=f"orders-{pk}",
        event_time_us=1_764_316_800_000_000,
        sequence=None,
        source="streams",
        ttl=False,
        ingested_us=1_764_316_800_000_000,
    )
    writer = RawLogWriter(
        LakeConfig.build(lake=str(lake)).storage(), "orders", buffer_bytes=1 << 30, buffer_seconds=3600
    )
    writer.add(ev.to_line())
    assert writer.flush() is not None


def test_a_shared_sql_catalog_does_not_let_a_lake_read_anothers_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _land(a, "from-a")
    _land(b, "from-b")
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", f"sqlite:///{tmp_path}/shared.db")
    assert _run(capsys, "apply", "--table", "orders", "--lake", str(a), "--once")[0] == 0
    for command in (["dump", "--table", "orders"], ["query", "--format", "csv", "select pk from orders"]):
        rc, out, err = _run(capsys, command[0], "--lake", str(b), *command[1:])
        assert (rc, out) == (1, ""), command
        assert len(err.splitlines()) == 1 and "lake table ddb.orders belongs to lake" in err
        assert str(a) in err and f"not to this one ({b})" in err and "copied or moved" not in err
    rc, out, _ = _run(capsys, "dump", "--table", "orders", "--lake", str(a))
    assert rc == 0 and json.loads(out)["Item"]["pk"] == {"S": "from-a"}
