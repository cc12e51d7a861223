"""Helpers for lake tests: synthetic change events written as raw files, apply, dump.

A plain module (not conftest.py) so that ``from lake_helpers import ...`` never resolves to another
folder's conftest when several test folders are collected together.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ddblake.changes.model import ChangeEvent
from ddblake.lake.apply import Applier, ApplyConfig, ApplyResult
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.lake.query import run_sql
from ddblake.lake.rawlog import RawLogWriter
from ddblake.lake.report import dump_items
from ddblake.lake.storage import Storage

TABLE = "orders-table"
BASE_US = 1_764_316_800_000_000  # 2025-11-28T08:00:00Z


def event(
    op: str,
    pk: str,
    t: int,
    *,
    image: dict[str, Any] | None = None,
    seq: int | None = None,
    event_id: str | None = None,
    ttl: bool = False,
    source: str = "streams",
) -> ChangeEvent:
    """A change of item ``pk`` at BASE + ``t`` seconds (image attributes beside the key)."""
    keys = {"pk": {"S": pk}}
    new = None if op == "REMOVE" else {**keys, **(image or {})}
    return ChangeEvent(
        op=op,  # type: ignore[arg-type]
        table=TABLE,
        keys=keys,
        new_image=new,
        old_image=None,
        event_id=event_id or uuid.uuid4().hex,
        event_time_us=BASE_US + t * 1_000_000,
        sequence=None if seq is None else str(seq),
        source=source,  # type: ignore[arg-type]
        ttl=ttl,
        ingested_us=BASE_US + t * 1_000_000,
    )


class Lake:
    """A file lake for one test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = Storage.from_uri(str(root))
        self.config = LakeConfig.build(lake=str(root))

    def write(self, events: Iterable[ChangeEvent], *, lines: Iterable[bytes] = ()) -> str:
        """One raw file holding these events (and any extra raw lines); returns its path."""
        writer = RawLogWriter(self.storage, TABLE, buffer_bytes=1 << 30, buffer_seconds=3600)
        for ev in events:
            writer.add(ev.to_line())
        for line in lines:
            writer.add(line)
        written = writer.flush()
        assert written is not None
        return written.path

    def apply(self, **kwargs: Any) -> ApplyResult:
        config = ApplyConfig.build(table=TABLE, lake=self.config, once=True, **kwargs)
        return Applier(config, storage=self.storage).run_once()

    def catalog(self) -> Any:
        return open_catalog(self.config, self.storage)

    def dump(self) -> dict[str, dict[str, Any]]:
        """Current items by pk."""
        items = [json.loads(line)["Item"] for line in dump_items(self.catalog(), "ddb", TABLE)]
        return {item["pk"]["S"]: item for item in items}

    def history(self) -> list[dict[str, Any]]:
        tbl = self.catalog().load_table("ddb.orders_table_changes")
        return tbl.scan().to_arrow().to_pylist() if tbl.current_snapshot() else []


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)
    return Lake(tmp_path / "lake")


@pytest.fixture
def make_event() -> Callable[..., ChangeEvent]:
    return event


Batches = Sequence[Sequence[ChangeEvent]]
MakeLake = Callable[[], Lake]


@pytest.fixture
def new_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeLake:
    """Fresh lakes on demand (one per batching of the same changes), no DDBLAKE_* settings."""
    for name in list(os.environ):
        if name.startswith("DDBLAKE_"):
            monkeypatch.delenv(name)
    made: list[Lake] = []

    def make() -> Lake:
        made.append(Lake(tmp_path / f"lake{len(made)}"))
        return made[-1]

    return make


def insert(pk: str, t: int, image: dict[str, Any]) -> ChangeEvent:
    """An INSERT of ``pk`` at ``t`` with ``image``'s attributes."""
    return event("INSERT", pk, t, image=image)


def applied(lake: Lake, batches: Batches) -> Lake:
    """``lake`` with each batch written as one raw file and applied."""
    for batch in batches:
        lake.write(batch)
        lake.apply()
    return lake


def current_rows(lake: Lake) -> list[dict[str, Any]]:
    """Every row of the current state as {column: value}: column order does not matter."""
    cols, rows = run_sql(lake.catalog(), "ddb", "select * from orders_table order by _ddb_key")
    return [dict(zip(cols, row, strict=True)) for row in rows]


def same_whatever_the_batching(new_lake: MakeLake, *splits: Batches) -> Lake:
    """Apply every split of the same events to its own lake; all must agree with the first."""
    lakes = [applied(new_lake(), split) for split in splits]
    expected_rows, expected_dump = current_rows(lakes[0]), lakes[0].dump()
    for other in lakes[1:]:
        assert current_rows(other) == expected_rows
        assert other.dump() == expected_dump
    return lakes[0]


def reads_during(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> tuple[list[int], list[bool]]:
    """The task count of each pyiceberg ``ArrowScan.to_table`` call made while ``owner.name`` runs
    (the attribute wrapped for the test), and a flag that is ``[True]`` while it runs."""
    from pyiceberg.io.pyarrow import ArrowScan

    reads: list[int] = []
    running = [False]
    real_read, real = ArrowScan.to_table, getattr(owner, name)

    def counted(self: ArrowScan, tasks: Any) -> Any:
        tasks = list(tasks)
        if running[0]:
            reads.append(len(tasks))
        return real_read(self, tasks)

    def watched(*args: Any, **kwargs: Any) -> Any:
        running[0] = True
        try:
            return real(*args, **kwargs)
        finally:
            running[0] = False

    monkeypatch.setattr(ArrowScan, "to_table", counted)
    monkeypatch.setattr(owner, name, watched)
    return reads, running
