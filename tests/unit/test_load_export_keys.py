"""A full export loaded with --keys that are not the table's key is refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_load_export import _events, _untouched, make_export

from ddblake.errors import ConfigError
from ddblake.load import LoadConfig
from ddblake.load import service as load_service
from ddblake.load.export import CorruptExportError
from ddblake.load.export_keys import KeyCheck
from ddblake.progress import NoProgress


def _run(folder: Path, lake: Path, keys: str) -> Any:
    config = LoadConfig.build(
        table="example-ddb-table", lake=str(lake), from_export=str(folder), keys=keys, buffer_bytes=64 * 1024
    )
    return load_service.run_load(config, progress=NoProgress("tbl"))


@pytest.fixture(autouse=True)
def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_service, "build_load_clients", lambda config: None)


def test_keys_most_items_hold_are_refused_before_a_row_is_written_and_the_right_ones_then_load(
    tmp_path: Path,
) -> None:
    """A sparse attribute taken for the key: the load used to write 4,900 rows under it first,
    and its state then refused the rerun with the right keys."""
    items: list[Any] = [{"Item": {"id": {"S": f"i{i}"}, "grp": {"S": "g"}}} for i in range(5000)]
    items.append({"Item": {"id": {"S": "last"}}})  # the one item without grp, at the end
    folder = make_export(tmp_path / "exp", [items[:2500], items[2500:]])
    lake = tmp_path / "lake"
    with pytest.raises(ConfigError) as refused:
        _run(folder, lake, "grp")
    message = str(refused.value)
    assert "nothing loaded" in message and "line 2501" in message and "no attribute 'grp'" in message
    assert "data/" in message and "--keys grp" in message
    assert _untouched(lake)  # no raw file, no load state
    result = _run(folder, lake, "id")
    assert result.items == 5001
    assert {json.dumps(e.keys, sort_keys=True) for e in _events(lake)} == {
        json.dumps({"id": i["Item"]["id"]}, sort_keys=True) for i in items
    }


def test_a_key_attribute_of_a_type_no_key_has_is_refused(tmp_path: Path) -> None:
    items = [{"Item": {"id": {"S": "a"}, "m": {"M": {}}}}, {"Item": {"id": {"S": "b"}, "m": {"N": "1"}}}]
    folder = make_export(tmp_path / "exp", [items])
    lake = tmp_path / "lake"
    with pytest.raises(ConfigError, match=r"line 1: its attribute 'm' is of type M"):
        _run(folder, lake, "id,m")
    assert _untouched(lake)


def test_a_damaged_line_is_refused_before_a_row_is_written_when_keys_are_given(tmp_path: Path) -> None:
    lines = [b'{"Item":{"id":{"S":"a"}}}\n', b'{"Item":{"id":{"S":"b"}\n', b'{"Item":{"id":{"S":"c"}}}\n']
    folder = make_export(tmp_path / "exp", [lines], raw_lines=True)
    lake = tmp_path / "lake"
    with pytest.raises(CorruptExportError, match=r"line 2: it is not an export line"):
        _run(folder, lake, "id")
    assert _untouched(lake)


def test_the_line_check_reads_ion_and_never_names_a_value() -> None:
    check = KeyCheck(("id", "sk"), "ION")
    assert check(b'$ion_1_0 {Item:{id:"secret-value",sk:12.5}}') is None
    problem = check(b'$ion_1_0 {Item:{id:"secret-value",sk:{a:1}}}')
    assert problem == ("its attribute 'sk' is of type M, which no key attribute has (S, N or B)", True)
    problem = KeyCheck(("id",), "DYNAMODB_JSON")(b'{"Item":{"id":["secret-value"]}}')
    assert problem is not None and "secret-value" not in problem[0] and problem[1]
    assert KeyCheck(("id",), "DYNAMODB_JSON")(b'{"Keys":{"id":{"S":"x"}}}') == (
        "it is not a full export line (no Item)",
        False,
    )
