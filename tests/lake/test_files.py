"""The current state's file layout: a batch rewrites the files its keys hash to, not whole buckets."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from lake_helpers import Lake, event

from ddblake.changes.resolve import key_hash, key_string
from ddblake.lake import files
from ddblake.lake.files import FileRange, covering, layers, open_file, place, split_sorted, with_hashes

CUR = "ddb.orders_table"


def _s(v: str) -> dict[str, Any]:
    return {"S": v}


def _range(name: str, low: int | None, high: int | None, size: int = 1 << 30) -> FileRange:
    # A scan task as the planner gives it: only the file's path and size are read here.
    return FileRange(
        SimpleNamespace(file=SimpleNamespace(file_path=name, file_size_in_bytes=size)), low, high
    )


def test_covering_takes_the_files_whose_range_holds_a_hash_and_every_file_without_bounds() -> None:
    ranges = [_range("old", None, None), _range("a", 0, 9), _range("b", 10, 19), _range("c", 30, 39)]
    assert [ranges[i].task.file.file_path for i in covering(ranges, [5, 35])] == ["old", "a", "c"]
    assert [r.task.file.file_path for r in covering(ranges[1:], [20, 25])] == []
    assert covering(ranges, []) == []


def test_new_keys_go_to_the_buckets_smallest_file_while_it_is_small_else_to_a_new_file() -> None:
    small = files.open_file_bytes() - 1
    ranges = [_range("a", 10, 19), _range("b", 30, 39, small), _range("c", 40, 49, small // 2)]
    assert open_file(ranges) == 2  # the smallest of the small ones
    assert open_file(ranges[:2]) == 1
    assert open_file(ranges[:1]) is None  # only full files: new keys make a new file
    assert open_file([]) is None  # an empty bucket: likewise
    assert open_file([_range("old", None, None, 10)]) == 0  # a file without bounds takes them too


def test_the_base_is_the_largest_disjoint_files_and_the_rest_overlap_it() -> None:
    ranges = [
        _range("a", 0, 9, 100),
        _range("b", 10, 19, 100),
        _range("wide", 5, 15, 50),  # overlaps a and b: not in the base
        _range("c", 30, 39, 10),
        _range("old", None, None, 500),  # no bounds: overlaps everything
    ]
    assert layers(ranges) == ([0, 1, 3], [2, 4])
    assert layers([_range("wide", 0, 99, 500), *ranges[:2]]) == ([0], [1, 2])  # largest first
    assert layers([]) == ([], [])


def test_new_rows_go_home_else_to_a_base_file_rewritten_anyway_else_to_the_spare() -> None:
    ranges = [_range("a", 10, 19), _range("b", 30, 39), _range("x", 0, 50)]
    base = [0, 1]
    hashes = [25, 5, 35, 15, 45]
    homes: list[int | None] = [None, None, None, 2, None]  # the fourth row's key is in x
    # b is rewritten anyway: 35 and 45 (nearest below: b) join it; 25 and 5 belong to a, which
    # is not rewritten: they go to the spare (the open file, here x).
    assert place(ranges, base, hashes, homes, {1}, 2) == {2: [0, 1, 3], 1: [2, 4]}
    # no spare: a new file (None)
    assert place(ranges, base, hashes, homes, {1}, None) == {None: [0, 1], 1: [2, 4], 2: [3]}
    # an empty bucket: every row makes new files
    assert place([], [], [1, 2], [None, None], set(), None) == {None: [0, 1]}


def test_split_cuts_sorted_parts_of_the_target_size_and_never_inside_one_hash() -> None:
    rng = random.Random(3)
    hashes = [rng.randrange(50) for _ in range(1000)]  # many repeats
    rows = pa.table({"_ddb_key": [f"k{i}" for i in range(1000)], "_ddb_hash": pa.array(hashes, pa.int64())})
    parts = split_sorted(rows, target_bytes=rows.nbytes // 10)
    assert len(parts) >= 8 and sum(p.num_rows for p in parts) == 1000
    bounds = [(min(p.column("_ddb_hash").to_pylist()), max(p.column("_ddb_hash").to_pylist())) for p in parts]
    assert all(hi < next_lo for (_, hi), (next_lo, _) in zip(bounds, bounds[1:], strict=False))
    assert sorted(k for p in parts for k in p.column("_ddb_key").to_pylist()) == sorted(
        rows["_ddb_key"].to_pylist()
    )
    assert split_sorted(rows.slice(0, 0)) == []


def test_with_hashes_fills_rows_written_before_the_column_existed() -> None:
    keys = [key_string({"pk": _s("a")}), key_string({"pk": _s("b")})]
    old = pa.table({"_ddb_key": keys})
    assert with_hashes(old).column("_ddb_hash").to_pylist() == [key_hash(k) for k in keys]
    partly = pa.table({"_ddb_key": keys, "_ddb_hash": pa.array([None, 7], pa.int64())})
    assert with_hashes(partly).column("_ddb_hash").to_pylist() == [key_hash(k) for k in keys]


def _file_bounds(lake: Lake) -> list[tuple[int, int]]:
    from ddblake.lake.commits import plan_buckets

    table = lake.catalog().load_table(CUR)
    plan = plan_buckets(table, [0])
    assert plan is not None
    out = []
    for r in plan[0]:
        assert r.low is not None and r.high is not None  # every file written carries its hash bounds
        out.append((r.low, r.high))
    return sorted(out)


def test_a_small_batch_in_a_large_bucket_rewrites_only_the_files_its_keys_hash_to(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "TARGET_FILE_BYTES", 8 << 10)  # files of ~8 KiB: many per bucket
    items = {f"k{i:04d}": {"v": _s(f"v{i}"), "n": {"N": str(i)}} for i in range(600)}
    lake.write([event("INSERT", pk, 1, image=image) for pk, image in items.items()])
    first = lake.apply(buckets=1)
    bounds = _file_bounds(lake)
    assert len(bounds) >= 8 and first.files_rewritten == 0
    assert all(hi < lo for (_, hi), (lo, _) in zip(bounds, bounds[1:], strict=False))  # disjoint

    # One update, one delete, one new key: the files holding the first two are replaced; the new
    # key's row joins one of them if its hash falls there, else makes a file of its own (no file
    # of the bucket is small enough to take it).
    lake.write(
        [
            event("MODIFY", "k0005", 2, image={"v": _s("changed")}),
            event("REMOVE", "k0300", 3),
            event("INSERT", "new", 4, image={"v": _s("fresh")}),
        ]
    )
    result = lake.apply(buckets=1)
    assert 1 <= result.files_rewritten <= 2 and result.buckets_rewritten == 1
    after = _file_bounds(lake)
    assert len(set(after) & set(bounds)) >= len(bounds) - 2  # the other files are untouched

    expected = {pk: {"pk": _s(pk), **image} for pk, image in items.items()}
    expected["k0005"] = {"pk": _s("k0005"), "v": _s("changed")}
    del expected["k0300"]
    expected["new"] = {"pk": _s("new"), "v": _s("fresh")}
    assert lake.dump() == expected

    # A late change never comes back through a file that was not read: the deleted key stays deleted.
    lake.write([event("MODIFY", "k0300", 2, image={"v": _s("late")})])
    assert lake.apply(buckets=1).stale == 0
    assert "k0300" not in lake.dump()


def _paths(lake: Lake) -> set[str]:
    return {t.file.file_path for t in lake.catalog().load_table(CUR).scan().plan_files()}


def test_new_keys_never_make_a_full_file_be_rewritten_and_overlapping_files_stay_exact(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "TARGET_FILE_BYTES", 8 << 10)  # many files in the one bucket
    monkeypatch.setattr(files, "open_file_bytes", lambda: 1)  # and none small enough to take rows
    items = {f"k{i:04d}": {"v": _s(f"v{i}")} for i in range(600)}
    lake.write([event("INSERT", pk, 1, image=image) for pk, image in items.items()])
    lake.apply(buckets=1)
    full = _paths(lake)
    assert len(full) >= 8

    # A batch of new keys spread over every file's range (a load's, an insert-only workload's):
    # no file is rewritten; the rows make files of their own, whose ranges overlap the others.
    fresh = {f"n{i:03d}": {"v": _s(f"new{i}")} for i in range(60)}
    lake.write([event("INSERT", pk, 2, image=image) for pk, image in fresh.items()])
    result = lake.apply(buckets=1)
    assert result.files_rewritten == 0 and result.upserts == 60
    assert full < _paths(lake)

    # Once the bucket has a small file, it takes the next new keys: one file rewritten, not more.
    monkeypatch.setattr(files, "open_file_bytes", lambda: 1 << 30)
    more = {f"m{i:03d}": {"v": _s(f"more{i}")} for i in range(60)}
    lake.write([event("INSERT", pk, 3, image=image) for pk, image in more.items()])
    assert lake.apply(buckets=1).files_rewritten == 1
    assert len(full & _paths(lake)) >= len(full) - 1

    # Updates and deletes find their key in whichever overlapping file holds it; no key is
    # duplicated or lost, and a late change does not bring back a deleted one.
    lake.write(
        [
            event("MODIFY", "k0007", 4, image={"v": _s("changed")}),
            event("MODIFY", "n005", 4, image={"v": _s("changed too")}),
            event("REMOVE", "m010", 4),
            event("REMOVE", "k0400", 4),
        ]
    )
    lake.apply(buckets=1)
    lake.write([event("MODIFY", "m010", 3, image={"v": _s("late")})])
    assert lake.apply(buckets=1).upserts == 0
    expected = {pk: {"pk": _s(pk), **image} for pk, image in {**items, **fresh, **more}.items()}
    expected["k0007"] = {"pk": _s("k0007"), "v": _s("changed")}
    expected["n005"] = {"pk": _s("n005"), "v": _s("changed too")}
    del expected["m010"], expected["k0400"]
    assert lake.dump() == expected
    keys = lake.catalog().load_table(CUR).scan(selected_fields=("_ddb_key",)).to_arrow().column(0)
    assert len(keys) == len(set(keys.to_pylist())) == len(expected)


def test_overlapping_files_past_their_limit_are_merged_into_the_base_which_stays_disjoint(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "TARGET_FILE_BYTES", 8 << 10)
    monkeypatch.setattr(files, "open_file_bytes", lambda: 1)  # no open file; any overlap is too much
    items = {f"k{i:04d}": {"v": _s(f"v{i}")} for i in range(600)}
    lake.write([event("INSERT", pk, 1, image=image) for pk, image in items.items()])
    lake.apply(buckets=1)
    base = _file_bounds(lake)

    fresh = {f"n{i:03d}": {"v": _s(f"new{i}")} for i in range(60)}
    lake.write([event("INSERT", pk, 2, image=image) for pk, image in fresh.items()])
    assert lake.apply(buckets=1).files_rewritten == 0  # a file of their own, overlapping the base
    overlapping = _file_bounds(lake)
    assert not all(hi < lo for (_, hi), (lo, _) in zip(overlapping, overlapping[1:], strict=False))

    more = {f"m{i:03d}": {"v": _s(f"more{i}")} for i in range(60)}
    lake.write(
        [event("INSERT", pk, 3, image=image) for pk, image in more.items()]
        + [event("MODIFY", "n007", 3, image={"v": _s("changed")}), event("REMOVE", "n008", 3)]
    )
    result = lake.apply(buckets=1)
    assert result.files_rewritten > 1  # the overlapping file, and the base files taking its rows
    merged = _file_bounds(lake)
    assert all(hi < lo for (_, hi), (lo, _) in zip(merged, merged[1:], strict=False))  # disjoint again
    assert len(merged) <= 2 * len(base)  # a full file taking rows may split in two

    expected = {pk: {"pk": _s(pk), **image} for pk, image in {**items, **fresh, **more}.items()}
    expected["n007"] = {"pk": _s("n007"), "v": _s("changed")}
    del expected["n008"]
    assert lake.dump() == expected
    keys = lake.catalog().load_table(CUR).scan(selected_fields=("_ddb_key",)).to_arrow().column(0)
    assert len(keys) == len(set(keys.to_pylist())) == len(expected)


def test_random_batches_on_many_small_files_end_as_on_one_file_per_bucket(
    lake: Lake, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = Lake(tmp_path_factory.mktemp("reference"))
    rng = random.Random(11)
    t = 0
    for _ in range(6):
        evs = []
        for _ in range(80):
            t += 1
            pk = f"k{rng.randrange(200)}"
            if rng.random() < 0.2:
                evs.append(event("REMOVE", pk, t))
            else:
                evs.append(event("MODIFY", pk, t, image={"v": _s(str(t))}))
        lake.write(evs)
        reference.write(evs)
        with monkeypatch.context() as m:
            m.setattr(files, "TARGET_FILE_BYTES", 2 << 10)
            lake.apply(buckets=2)
        reference.apply(buckets=2)
        assert lake.dump() == reference.dump()
    assert len(list(lake.catalog().load_table(CUR).scan().plan_files())) > 4


RELEASE_BEFORE_HASH = "6dc987e"  # the last commit whose current state had no _ddb_hash column


def test_a_lake_written_before_hash_ranges_existed_is_continued_and_migrates_bucket_by_bucket(
    lake: Lake, tmp_path: Path
) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    old_src = tmp_path / "old"
    old_src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", RELEASE_BEFORE_HASH, "src/ddblake"],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip("no git history here (a source tarball): the upgrade path cannot be built")
    subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive.stdout, check=True)  # noqa: S607
    items = {f"k{i:03d}": {"v": _s(f"v{i}")} for i in range(300)}
    lake.write([event("INSERT", pk, 1, image=image) for pk, image in items.items()])
    code = (
        "from ddblake.lake.apply import ApplyConfig, run_apply; from ddblake.lake.catalog import LakeConfig; "
        f"run_apply(ApplyConfig.build(table='orders-table', lake=LakeConfig.build(lake={str(lake.root)!r}), "
        "buckets=4))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(old_src / "src")}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)  # noqa: S603
    table = lake.catalog().load_table(CUR)
    assert "_ddb_hash" not in table.schema().column_names  # really the old layout

    # The new code continues the lake: one change touches one bucket, which is rewritten whole
    # (its file has no hash bounds) and gets the column; the others keep their old files.
    lake.write([event("MODIFY", "k007", 2, image={"v": _s("new")})])
    result = lake.apply(buckets=4)
    assert result.buckets_rewritten == 1 and result.files_rewritten == 1
    table = lake.catalog().load_table(CUR)
    assert "_ddb_hash" in table.schema().column_names
    expected = {pk: {"pk": _s(pk), **image} for pk, image in items.items()}
    expected["k007"] = {"pk": _s("k007"), "v": _s("new")}
    assert lake.dump() == expected
    rows = table.scan(selected_fields=("_ddb_key", "_ddb_hash", "_ddb_bucket")).to_arrow().to_pylist()
    migrated = [r for r in rows if r["_ddb_hash"] is not None]
    assert migrated and all(r["_ddb_hash"] == key_hash(r["_ddb_key"]) for r in migrated)
    assert all(r["_ddb_hash"] % 4 == r["_ddb_bucket"] for r in migrated)
    assert len(migrated) < len(rows)  # the untouched buckets were not rewritten

    # Then every bucket moves over as it is touched, and the items stay exact.
    lake.write([event("MODIFY", pk, 3, image={"v": _s("last")}) for pk in items])
    lake.apply(buckets=4)
    assert all(v["v"] == _s("last") for v in lake.dump().values())
    assert all(
        r["_ddb_hash"] is not None
        for r in lake.catalog().load_table(CUR).scan(selected_fields=("_ddb_hash",)).to_arrow().to_pylist()
    )
