"""Values DynamoDB can never produce are quarantined by apply, wherever the change came from.

A set with a repeated member (NS by value: ``1`` and ``1.0``; BS by decoded bytes), a number
outside DynamoDB's range and a string with a lone surrogate cannot have come from a table: a raw-log
line holding one, whether a capture, a Scan load or an export load wrote it, goes to
``errors/<table>/apply/`` with its reason (which names where, never what), and the good lines go
on. Before, repeated set members reached the tables, and ``dump`` printed a set DynamoDB would never
return. An export load writes its items' text into the raw log as exported (it refuses only lines
that are not export lines), so such an item is quarantined by apply, like any bad value of an export.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from lake_helpers import TABLE, Lake, event

from ddblake.lake.storage import Storage
from ddblake.load.export_load import ExportLoad
from ddblake.progress import NoProgress

SECRET = "7731"  # noqa: S105 - a marker that must never reach a reason

# Each value sits beside the key, at the top level and inside a map and a list (where the raw-log
# reader's fast path and the codec's nested columns see it).
NEVER_FROM_DYNAMODB: dict[str, dict[str, Any]] = {
    "SS repeated": {"SS": [SECRET, "b", SECRET]},
    "NS repeated by value": {"NS": [SECRET, f"{SECRET}.0"]},
    "NS repeated with an exponent": {"NS": ["7.731E+3", SECRET]},
    "BS repeated": {"BS": ["NzczMQ==", "NzczMQ=="]},
    "BS repeated by its bytes": {"BS": ["AA==", "AB=="]},  # different text, the same byte
    "N with 39 digits": {"N": SECRET * 9 + "773"},
    "N too large": {"N": SECRET + "E+200"},
    "N too small": {"N": SECRET + "E-200"},
    "NS member too large": {"NS": ["1", "1" + "0" * 126]},
}
SURROGATES: dict[str, bytes] = {
    # A lone surrogate can only be written escaped (UTF-8 cannot carry it): JSON text, not a dict.
    "S lone surrogate": b'{"S":"7731\\ud800"}',
    "SS lone surrogate": b'{"SS":["a","7731\\udc00"]}',
}


def _nestings(av: dict[str, Any]) -> list[dict[str, Any]]:
    return [av, {"M": {"inner": av}}, {"L": [{"S": "x"}, av]}]


def _bad_lines() -> list[bytes]:
    """Raw-log lines, each holding one value DynamoDB never writes, in each place."""
    lines = []
    n = 0
    for av in NEVER_FROM_DYNAMODB.values():
        for placed in _nestings(av):
            n += 1
            lines.append(event("INSERT", f"bad{n}", 1, image={"v": placed}).to_line())
    for text in SURROGATES.values():
        n += 1
        template = event("INSERT", f"bad{n}", 1, image={"v": {"S": "PLACEHOLDER"}}).to_line()
        lines.append(template.replace(b'{"S":"PLACEHOLDER"}', text))
    return lines


GOOD_SETS = {
    "ss": {"SS": ["7731", "7731 ", "a", "A"]},
    "ns": {"NS": ["7731", "773.1", "-7731", "0"]},
    "bs": {"BS": ["AA==", "AQ==", "AAA="]},
}


def _quarantined(lake: Lake) -> list[dict[str, Any]]:
    records = []
    for path in lake.storage.list_files(f"errors/{TABLE}/apply/"):
        body = gzip.decompress(lake.storage.read(path) or b"")
        records += [json.loads(line) for line in body.splitlines()]
    return records


def _assert_reasons_say_where_not_what(records: list[dict[str, Any]]) -> None:
    for record in records:
        reason = record["reason"]
        assert reason and SECRET not in reason and "NzczMQ" not in reason, reason
        assert "\\ud800" not in reason.lower() and "\ud800" not in reason


def test_apply_quarantines_raw_lines_holding_values_dynamodb_never_writes(lake: Lake) -> None:
    good = event("INSERT", "good", 1, image=GOOD_SETS)
    bad = _bad_lines()
    lake.write([good], lines=bad)
    result = lake.apply()
    assert lake.dump() == {"good": {"pk": {"S": "good"}, **GOOD_SETS}}
    records = _quarantined(lake)
    assert sorted(json.loads(r["raw"])["keys"]["pk"]["S"] for r in records) == sorted(
        json.loads(line)["keys"]["pk"]["S"] for line in bad
    )
    assert result.quarantined == len(bad)
    _assert_reasons_say_where_not_what(records)


@pytest.mark.parametrize("name", sorted(NEVER_FROM_DYNAMODB))
def test_each_value_dynamodb_never_writes_is_quarantined_alone(lake: Lake, name: str) -> None:
    """One bad value per lake: a batch's other bad lines cannot hide that this one got through."""
    lines = [
        event("INSERT", f"bad{n}", 1, image={"v": placed}).to_line()
        for n, placed in enumerate(_nestings(NEVER_FROM_DYNAMODB[name]))
    ]
    lake.write([event("INSERT", "good", 1, image={"v": {"S": "ok"}})], lines=lines)
    assert lake.apply().quarantined == len(lines)
    assert sorted(lake.dump()) == ["good"]
    _assert_reasons_say_where_not_what(_quarantined(lake))


# --- export load ----------------------------------------------------------------------------------

EXPORT_ID = "01764316800000-c0dec0de"
EXPORT_TIME = "2025-11-28T08:00:00.000Z"


def _full_export(root: Path, lines: list[bytes]) -> Path:
    """A full DYNAMODB_JSON export of ``lines`` (one data file, true checksums), as DynamoDB writes it."""
    folder = root / "AWSDynamoDB" / EXPORT_ID
    (folder / "data").mkdir(parents=True)
    data = gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)
    key = f"AWSDynamoDB/{EXPORT_ID}/data/part00.json.gz"
    (root / key).write_bytes(data)
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    entry = {
        "itemCount": len(lines),
        "md5Checksum": base64.b64encode(digest).decode(),
        "etag": digest.hex(),
        "dataFileS3Key": key,
    }
    (folder / "manifest-files.json").write_text(json.dumps(entry) + "\n")
    arn = f"arn:aws:dynamodb:us-east-1:111111111111:table/{TABLE}"
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{arn}/export/{EXPORT_ID}",
        "tableArn": arn,
        "exportTime": EXPORT_TIME,
        "manifestFilesS3Key": f"AWSDynamoDB/{EXPORT_ID}/manifest-files.json",
        "itemCount": len(lines),
        "outputFormat": "DYNAMODB_JSON",
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary))
    return folder


def _export_lines() -> tuple[list[bytes], int]:
    """A full export's lines: good items, and items each holding one value DynamoDB never writes."""
    lines = [json.dumps({"Item": {"pk": {"S": "good"}, **GOOD_SETS}}).encode()]
    bad = 0
    for av in NEVER_FROM_DYNAMODB.values():
        for placed in _nestings(av):
            bad += 1
            lines.append(json.dumps({"Item": {"pk": {"S": f"bad{bad}"}, "v": placed}}).encode())
    for text in SURROGATES.values():
        bad += 1
        lines.append(b'{"Item":{"pk":{"S":"bad%d"},"v":%s}}' % (bad, text))
    lines.append(json.dumps({"Item": {"pk": {"S": "also-good"}, "n": {"N": "1E+125"}}}).encode())
    return lines, bad


def test_an_export_load_of_values_dynamodb_never_writes_quarantines_them_at_apply(
    lake: Lake, tmp_path: Path
) -> None:
    lines, bad = _export_lines()
    folder = _full_export(tmp_path / "exports", lines)
    loaded = ExportLoad(
        TABLE,
        str(folder),
        Storage.from_uri(str(lake.root)),
        key_names=lambda: ("pk",),
        buffer_bytes=1 << 20,
        progress=NoProgress(TABLE),
    ).run()
    assert loaded.items == len(lines)  # written as exported: the export is not refused
    result = lake.apply()
    assert result.quarantined == bad
    assert lake.dump() == {
        "good": {"pk": {"S": "good"}, **GOOD_SETS},
        "also-good": {"pk": {"S": "also-good"}, "n": {"N": "1E+125"}},
    }
    _assert_reasons_say_where_not_what(_quarantined(lake))
