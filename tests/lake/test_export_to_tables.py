"""Export folders through the real CLI to the Iceberg tables: exact items; damaged exports refused.

A full export is loaded (``ddblake load --from-export``) and applied, then an incremental export
(updates, inserts, deletes, several writes of one key, out of order across its data files): the
``dump`` must be exactly the items computed here from the export files alone. Then incremental
exports with a wrong checksum or a missing data file are refused with one error line naming the
file, and leave the lake as it was: same snapshots, no new file, same dump. No DynamoDB is needed:
``--keys`` spares the load its DescribeTable.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ddblake.cli.main import main
from ddblake.lake.catalog import LakeConfig, open_catalog
from ddblake.names import changes_identifier, table_identifier

TABLE = "export-orders"
ARN = f"arn:aws:dynamodb:us-east-1:111111111111:table/{TABLE}"
FULL_TIME = "2025-11-28T08:00:00.000Z"
FULL_US = 1_764_316_800_000_000  # FULL_TIME in µs
MINUTE_US = 60_000_000

Item = dict[str, Any]
Line = dict[str, Any]


# --- export folders, written as DynamoDB writes them -------------------------------------------


def write_export(
    root: Path, export_id: str, files: Sequence[Sequence[Line]], *, incremental: bool, window: int = 0
) -> Path:
    """An export folder under ``root``: gzip data files, manifest-files.json with each file's
    ``itemCount``, base64 ``md5Checksum`` and ETag, and manifest-summary.json with the total."""
    folder = root / "AWSDynamoDB" / export_id
    (folder / "data").mkdir(parents=True)
    entries = []
    for n, lines in enumerate(files):
        data = gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines), mtime=0)
        key = f"AWSDynamoDB/{export_id}/data/part{n:02d}.json.gz"
        (root / key).write_bytes(data)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        entries.append(
            {
                "itemCount": len(lines),
                "md5Checksum": base64.b64encode(digest).decode(),
                "etag": digest.hex(),
                "dataFileS3Key": key,
            }
        )
    (folder / "manifest-files.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    summary: dict[str, Any] = {
        "version": "2023-08-01" if incremental else "2020-06-30",
        "exportArn": f"{ARN}/export/{export_id}",
        "startTime": FULL_TIME,
        "endTime": FULL_TIME,
        "tableArn": ARN,
        "tableId": "00000000-0000-0000-0000-000000000000",
        "s3Bucket": "exports",
        "s3Prefix": None,
        "s3SseAlgorithm": "AES256",
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": 0,
        "itemCount": sum(len(lines) for lines in files),
        "outputFormat": "DYNAMODB_JSON",
    }
    if incremental:
        start = FULL_US + window * 10 * MINUTE_US
        summary.update(
            exportType="INCREMENTAL_EXPORT",
            exportFromTime=_iso(start),
            exportToTime=_iso(start + 10 * MINUTE_US),
            outputView="NEW_AND_OLD_IMAGES",
        )
    else:
        summary.update(exportType="FULL_EXPORT", exportTime=FULL_TIME)
    (folder / "manifest-summary.json").write_text(json.dumps(summary))
    return folder


def _iso(us: int) -> str:
    when = dt.datetime.fromtimestamp(us / 1_000_000, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def key_of(item: Item) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


def keys(pk: str, sk: str) -> Item:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def change(write_us: int, key: Item, new: Item | None, old: Item | None) -> Line:
    """An incremental export line (no NewImage: a delete)."""
    line: Line = {"Metadata": {"WriteTimestampMicros": {"N": str(write_us)}}, "Keys": key}
    if new is not None:
        line["NewImage"] = new
    if old is not None:
        line["OldImage"] = old
    return line


# --- the oracle: the export files read back here, without ddblake ---------------------------------


def read_lines(folder: Path) -> list[Line]:
    root = folder.parents[1]
    lines: list[Line] = []
    for entry in (folder / "manifest-files.json").read_text().splitlines():
        data = gzip.decompress((root / json.loads(entry)["dataFileS3Key"]).read_bytes())
        lines.extend(json.loads(text) for text in data.decode().splitlines())
    return lines


def expected_after(full: Path, *incrementals: Path) -> dict[tuple[str, str], Item]:
    """The table's items: the full export's, then every incremental write in write-time order."""
    items = {key_of(line["Item"]): line["Item"] for line in read_lines(full)}
    writes = [line for folder in incrementals for line in read_lines(folder)]
    for line in sorted(writes, key=lambda w: int(w["Metadata"]["WriteTimestampMicros"]["N"])):
        key = key_of(line["Keys"])
        if "NewImage" in line:
            items[key] = line["NewImage"]
        else:
            items.pop(key, None)
    return {k: _sets_sorted(v) for k, v in items.items()}


def _sets_sorted(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag in ("SS", "NS", "BS"):
                return {tag: sorted(inner)}
            if tag in ("M", "L") or not isinstance(inner, (dict, list)):
                return {tag: _sets_sorted(inner)}
        return {k: _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sets_sorted(v) for v in value]
    return value


# --- the data ----------------------------------------------------------------------------------

NUMBERS = [
    "0",
    "-1",
    "12.5",
    "9223372036854775808",
    "-9223372036854775808",
    "12345678901234567890123456789012345678",
    "1.2345678901234567890123456789012345678",
    "1E-130",
    "-1E-130",
    "9.9999999999999999999999999999999999999E+125",
    "-9.9999999999999999999999999999999999999E+125",
]


def shared_value(i: int) -> Item:
    """Attribute ``shared``: a different type from item to item."""
    kinds: list[Item] = [
        {"N": NUMBERS[i % len(NUMBERS)]},
        {"S": f"text {i} ünïcødé ✓"},
        {"B": base64.b64encode(bytes([i, 0, 255])).decode()},
        {"BOOL": i % 2 == 0},
        {"NULL": True},
        {"SS": [f"s{i}", "a"]},
        {"NS": [str(i), "1E-130", "-3.5"]},
        {"BS": [base64.b64encode(bytes([i])).decode(), "AAEC"]},
        {"M": {"deep": {"L": [{"N": str(i)}, {"M": {"x": {"NULL": True}}}, {"S": ""}]}}},
        {"L": [{"S": "a"}, {"N": "1"}, {"BOOL": False}]},
    ]
    return kinds[i % len(kinds)]


def full_item(i: int) -> Item:
    item: Item = {
        **keys(f"p{i % 7}", f"s{i:03d}"),
        "n": {"N": NUMBERS[(i * 3) % len(NUMBERS)]},
        "shared": shared_value(i),
    }
    if i % 3 == 0:
        item["empty"] = {"S": ""}
    if i % 4 == 0:
        item["bin"] = {"B": ""}
    return item


FULL_ITEMS = [full_item(i) for i in range(40)]


def first_incremental() -> list[list[Line]]:
    """Writes in the first window after the full export, spread over two files out of order."""
    t = FULL_US + 2 * MINUTE_US
    by_key = {key_of(item): item for item in FULL_ITEMS}
    k = [key_of(item) for item in FULL_ITEMS]
    lines: list[Line] = []
    # updates of exported items (one changes the type of `shared`, one drops attributes)
    for n, i in enumerate((1, 5, 9, 13)):
        old = by_key[k[i]]
        new = {**old, "shared": shared_value(i + 3), "v": {"N": str(n)}}
        if i == 9:
            new = {**keys(*k[i]), "only": {"S": "left"}}
        lines.append(change(t + n * 1_000_000, keys(*k[i]), new, old))
    # deletes of exported items
    for n, i in enumerate((2, 6, 30)):
        lines.append(change(t + 10_000_000 + n, keys(*k[i]), None, by_key[k[i]]))
    # inserts of new items
    for n in range(5):
        new = {**keys("new", f"n{n}"), "shared": shared_value(n + 20), "n": {"N": NUMBERS[n]}}
        lines.append(change(t + 20_000_000 + n * 1_000, keys("new", f"n{n}"), new, None))
    # one key written three times in the same second (µs order decides), the last write first
    key = keys("new", "n0")
    same_second = t + 40_000_000
    hot = [
        change(same_second + 300, key, {**key, "v": {"S": "third"}}, {**key, "v": {"S": "second"}}),
        change(same_second + 100, key, {**key, "v": {"S": "first"}}, {**key}),
        change(same_second + 200, key, {**key, "v": {"S": "second"}}, {**key, "v": {"S": "first"}}),
    ]
    # an item deleted then put back, and an inserted item deleted again later
    back = keys(*k[3])
    revived = [
        change(t + 50_000_000, back, None, by_key[k[3]]),
        change(t + 51_000_000, back, {**back, "shared": {"S": "back"}}, None),
        change(t + 60_000_000, keys("new", "n4"), None, {**keys("new", "n4")}),
    ]
    # file 0 gets the later writes, file 1 the earlier ones
    return [[*revived, *hot, *lines[7:]], lines[:7]]


def second_incremental() -> list[list[Line]]:
    """A later window: changes that would show in the dump if this export were (even partly) loaded."""
    t = FULL_US + 12 * MINUTE_US
    files: list[list[Line]] = []
    for f in range(3):
        lines = []
        for n in range(4):
            key = keys(f"p{n}", f"s{(f * 4 + n) * 3 + 10:03d}")
            lines.append(change(t + (f * 4 + n) * 1_000, key, {**key, "late": {"N": str(f)}}, None))
        lines.append(change(t + 90_000_000 + f, keys("new", f"late{f}"), {**keys("new", f"late{f}")}, None))
        files.append(lines)
    files[1].append(change(t + 95_000_000, keys("new", "n1"), None, {**keys("new", "n1")}))
    return files


# --- the CLI -----------------------------------------------------------------------------------


def ddblake(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def load(capsys: pytest.CaptureFixture[str], lake: Path, folder: Path) -> tuple[int, str]:
    code, _, err = ddblake(
        capsys, "load", "--table", TABLE, "--lake", str(lake), "--from-export", str(folder), "--keys", "pk,sk"
    )
    return code, err


def apply(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    code, _, err = ddblake(capsys, "apply", "--table", TABLE, "--lake", str(lake), "--once")
    assert code == 0, err


def dump(capsys: pytest.CaptureFixture[str], lake: Path) -> dict[tuple[str, str], Item]:
    code, out, err = ddblake(capsys, "dump", "--table", TABLE, "--lake", str(lake))
    assert code == 0, err
    items: dict[tuple[str, str], Item] = {}
    for text in out.splitlines():
        line = json.loads(text)
        assert set(line) == {"Item"}, text
        # the export files are written with spaces (json.dumps' default, as DynamoDB does): the
        # dump is compact all the same, one form whatever loaded the item
        assert text == json.dumps(line, separators=(",", ":"), ensure_ascii=False), text
        key = key_of(line["Item"])
        assert key not in items, f"{key} dumped twice"
        items[key] = _sets_sorted(line["Item"])
    return items


def snapshots(lake: Path) -> tuple[int, int]:
    config = LakeConfig.build(lake=str(lake))
    catalog = open_catalog(config, config.storage())
    ids = []
    for name in (table_identifier(TABLE), changes_identifier(TABLE)):
        snap = catalog.load_table(f"ddb.{name}").current_snapshot()
        assert snap is not None, name
        ids.append(snap.snapshot_id)
    return ids[0], ids[1]


def files_of(lake: Path) -> dict[str, bytes]:
    """Every file of the lake with its content's digest."""
    return {
        str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).digest()
        for p in sorted(lake.rglob("*"))
        if p.is_file()
    }


# --- the tests ---------------------------------------------------------------------------------


def loaded_lake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, Path]:
    """A lake with the full export and the first incremental export loaded and applied."""
    lake = tmp_path / "lake"
    full = write_export(
        tmp_path / "full",
        "01764316800000-full0000",
        [[{"Item": item} for item in FULL_ITEMS[:25]], [{"Item": item} for item in FULL_ITEMS[25:]]],
        incremental=False,
    )
    code, err = load(capsys, lake, full)
    assert code == 0, err
    apply(capsys, lake)
    assert dump(capsys, lake) == expected_after(full), "the full export's items, exactly"

    first = write_export(tmp_path / "incr1", "01764316920000-incr0001", first_incremental(), incremental=True)
    code, err = load(capsys, lake, first)
    assert code == 0, err
    apply(capsys, lake)
    return lake, full, first


def test_full_then_incremental_export_load_to_exactly_the_expected_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake, full, first = loaded_lake(tmp_path, capsys)
    expected = expected_after(full, first)
    # the oracle itself saw every kind of change
    assert ("new", "n0") in expected and expected[("new", "n0")]["v"] == {"S": "third"}
    assert ("new", "n4") not in expected and ("p2", "s002") not in expected
    assert expected[("p3", "s003")]["shared"] == {"S": "back"}
    assert expected[("p2", "s009")] == keys("p2", "s009") | {"only": {"S": "left"}}
    assert len(expected) == 40 - 3 + 4
    assert dump(capsys, lake) == expected


@pytest.mark.parametrize("damage", ["md5-in-manifest", "bytes-changed", "file-missing"])
def test_a_damaged_incremental_export_is_refused_and_leaves_the_tables_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    lake, full, first = loaded_lake(tmp_path, capsys)
    before_dump = dump(capsys, lake)
    assert before_dump == expected_after(full, first)
    before_snapshots = snapshots(lake)
    before_files = files_of(lake)

    export_id = "01764317520000-incr0002"
    second = write_export(tmp_path / "incr2", export_id, second_incremental(), incremental=True, window=1)
    intact = tmp_path / "intact"
    intact_folder = write_export(intact, export_id, second_incremental(), incremental=True, window=1)
    damaged = "part01.json.gz"  # the middle one: the first file is sound, so a file-by-file
    data = second / "data" / damaged  # loader would already have written it when it met this one
    manifest = second / "manifest-files.json"
    if damage == "md5-in-manifest":
        entries = [json.loads(line) for line in manifest.read_text().splitlines()]
        good = entries[1]["md5Checksum"]
        entries[1]["md5Checksum"] = base64.b64encode(
            hashlib.md5(b"other", usedforsecurity=False).digest()
        ).decode()
        assert entries[1]["md5Checksum"] != good
        manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
        problem = "checksum mismatch"
    elif damage == "bytes-changed":  # same length and line count, still valid gzip: only the MD5 tells
        sound = gzip.decompress(data.read_bytes())
        lines = sound.replace(b'"late": {"N": "1"}', b'"late": {"N": "7"}')
        assert lines != sound and len(lines) == len(sound)
        data.write_bytes(gzip.compress(lines, mtime=0))
        problem = "checksum mismatch"
    else:
        data.unlink()
        problem = "is missing"

    code, err = load(capsys, lake, second)
    assert code == 1, err
    errors = [line for line in err.splitlines() if line.startswith("ddblake: error:")]
    assert len(errors) == 1, err
    assert problem in errors[0] and f"{export_id}/data/{damaged}" in errors[0], errors[0]
    assert "Traceback" not in err

    assert files_of(lake) == before_files, "a refused export wrote nothing to the lake"
    apply(capsys, lake)  # nothing new to apply: no commit
    assert snapshots(lake) == before_snapshots
    assert dump(capsys, lake) == before_dump

    # The same export intact does change the dump: the refusal above is what kept it unchanged.
    code, err = load(capsys, lake, intact_folder)
    assert code == 0, err
    apply(capsys, lake)
    assert snapshots(lake) != before_snapshots
    assert dump(capsys, lake) == expected_after(full, first, intact_folder) != before_dump
