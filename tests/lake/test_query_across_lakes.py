"""Lakes sharing a catalog namespace: docs/deploy.md's one stack (bucket, lake) per DynamoDB table,
all in the Glue database ``ddb``. ``query`` joins their tables; it refuses another lake's table only
when this lake has a DynamoDB table of the same identifier (a real clash); ``dump`` names this
lake's table, so it refuses another lake's (docs/lake.md)."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from lake_helpers import event

from ddblake.cli.main import main
from ddblake.lake.catalog import LakeConfig
from ddblake.lake.rawlog import RawLogWriter


def _land(lake: str, table: str, pk: str) -> None:
    writer = RawLogWriter(
        LakeConfig.build(lake=lake).storage(), table, buffer_bytes=1 << 30, buffer_seconds=3600
    )
    writer.add(dataclasses.replace(event("INSERT", pk, 1, image={"n": {"N": "1"}}), table=table).to_line())
    assert writer.flush() is not None


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_query_joins_tables_of_two_stacks_lakes_in_one_glue_database(
    moto_s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", moto_s3.endpoint)
    monkeypatch.setenv("DDBLAKE_NAMESPACE", f"ns_{uuid.uuid4().hex[:10]}")
    other = moto_s3.bucket + "-b"
    boto3.client("s3", endpoint_url=moto_s3.endpoint).create_bucket(Bucket=other)
    a, b = f"s3://{moto_s3.bucket}", f"s3://{other}"
    _land(a, "orders_table", "o1")
    _land(b, "customers", "c1")
    assert _run(capsys, "apply", "--table", "orders_table", "--lake", a, "--once")[0] == 0
    assert _run(capsys, "apply", "--table", "customers", "--lake", b, "--once")[0] == 0

    with caplog.at_level(logging.INFO, logger="ddblake.lake.query"):
        rc, out, err = _run(
            capsys,
            "query",
            "--lake",
            a,
            "--format",
            "csv",
            "select o.pk, c.pk from orders_table o, customers c",
        )
    assert rc == 0, err
    assert out.splitlines() == ["pk,pk", "o1,c1"]
    said = [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "customers" in r.getMessage()
    ]
    assert any(b in m for m in said), said
    assert not any("orders_table" in m for m in said), "lake a's own table is not announced"

    rc, out, err = _run(capsys, "dump", "--table", "customers", "--lake", a)
    assert (rc, out) == (1, "") and len(err.splitlines()) == 1, err
    assert f"belongs to lake {b}, not to this one ({a})" in err and f"pass --lake {b}" in err
    assert "--namespace" not in err, "lake a has no table customers: no clash to avoid"


def _land_local(lake: Path, table: str, pk: str) -> None:
    lake.mkdir(parents=True, exist_ok=True)
    _land(str(lake), table, pk)


def test_a_shared_sql_catalog_refuses_only_a_real_name_clash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("DDBLAKE_CATALOG_URI", f"sqlite:///{tmp_path}/shared.db")
    _land_local(a, "orders", "from-a")
    _land_local(b, "customers", "from-b")
    assert _run(capsys, "apply", "--table", "orders", "--lake", str(a), "--once")[0] == 0
    assert _run(capsys, "apply", "--table", "customers", "--lake", str(b), "--once")[0] == 0

    rc, out, err = _run(capsys, "query", "--lake", str(b), "--format", "csv", "select pk from orders")
    assert (rc, out.splitlines()) == (0, ["pk", "from-a"]), err

    # lake b captures a DynamoDB table whose identifier is also 'orders' (and its history's):
    # its own table would be hidden behind lake a's, so both are refused, naming the clash.
    _land_local(b, "Orders", "from-b")
    for sql in ("select pk from orders", "select count(*) from orders_changes"):
        rc, out, err = _run(capsys, "query", "--lake", str(b), "--format", "csv", sql)
        assert (rc, out) == (1, ""), sql
        assert len(err.splitlines()) == 1 and f"belongs to lake {a}" in err, err
        assert "DynamoDB table 'Orders' has the same identifier" in err and "--namespace" in err
