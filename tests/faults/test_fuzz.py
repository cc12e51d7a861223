"""Property-based fuzzing of every input boundary: nothing escapes but ddblake's documented errors.

What tests/unit already fuzzes (the record parser against the Firehose fast path, the codec's round
trips) is not repeated; this adds the boundaries *between* the parts, where one part's "accepted"
must be the next part's "can handle":

* the transform Lambda's ``handler`` on whole Firehose events: it never raises, answers every
  ``recordId`` once and in order, and every ``Ok`` line is one the raw-log reader accepts;
* capture's ``record_to_line`` (capture/records.py) on boto3-shaped records holding any Python value: only
  ``BadRecordError``, and its lines are readable too;
* the raw-log reader (``decode_gzip``, ``read_raw_file``, ``ChangeEvent.from_line``) on arbitrary and
  damaged bytes: errors come back as values or as ``BadRecordError``, and a line it accepts can be
  keyed, versioned and typed by ``apply``;
* the codec on arbitrary JSON: only ``DdblakeError`` subclasses; and whatever the parser's image
  check accepts, the codec types (so a line the transform writes can never stop ``apply``).

``DDBLAKE_VERIFY_EXAMPLES`` sets the examples per property; ``DDBLAKE_VERIFY_SEED`` the seed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from faultlib import LambdaContext, base_seed, record, strength
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_changes_fuzz import images, json_values, keys, kinesis_records, serialize, values  # noqa: E402

from ddblake.aws.firehose_transform import handler  # noqa: E402
from ddblake.capture.records import record_to_line  # noqa: E402
from ddblake.changes import rawline  # noqa: E402
from ddblake.changes.model import ChangeEvent  # noqa: E402
from ddblake.changes.parse import check_image  # noqa: E402
from ddblake.changes.resolve import Keyed, bucket_of, key_string, version_of  # noqa: E402
from ddblake.codec import BadValueError, deserialize_item, items_to_table, jsonl_to_table, validate_item  # noqa: E402
from ddblake.errors import BadRecordError, DdblakeError  # noqa: E402
from ddblake.lake import current  # noqa: E402
from ddblake.lake.rawlog import decode_gzip, read_raw_file, split_lines  # noqa: E402
from ddblake.lake.storage import Storage  # noqa: E402

pytestmark = [pytest.mark.faults]

EXAMPLES = strength("examples", 60)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
RUNS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _ledger() -> Iterator[None]:
    yield
    for test, n in RUNS.items():
        record(f"fuzz/{test}", trials=0, examples=n)


def ran(test: str) -> None:
    RUNS[test] = RUNS.get(test, 0) + 1


def numbers_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for tag, inner in value.items():
            if tag == "N" and isinstance(inner, str):
                yield inner
            elif tag == "NS" and isinstance(inner, list):
                yield from (n for n in inner if isinstance(n, str))
            else:
                yield from numbers_in(inner)
    elif isinstance(value, list):
        for v in value:
            yield from numbers_in(v)


def applicable(ev: ChangeEvent) -> None:
    """What apply does with an accepted event before it reaches Iceberg: none of it may raise."""
    key = key_string(ev.keys)
    bucket_of(key, 16)
    version_of(ev)
    texts = [ev.event_id, ev.table, ev.sequence or "", json.dumps(ev.keys, ensure_ascii=False)]
    texts.append(json.dumps(ev.old_image, ensure_ascii=False))  # the history keeps the old image as text
    pa.array(texts, pa.string())
    if ev.new_image is not None:
        text = json.dumps(ev.new_image, separators=(",", ":"), ensure_ascii=False)
        pa.array([text], pa.string())  # the history's image column and the current state's _ddb_item
        if ev.op != "REMOVE":
            keyed = [Keyed(key, version_of(ev), ev)]
            current.typed_rows(keyed, 16, None, [text])
            current.typed_rows(keyed, 16, None, None)


# --- the Firehose transform handler ------------------------------------------------------------------


@st.composite
def firehose_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A Firehose batch: good Kinesis records, garbage, broken base64, odd metadata, any order."""
    out = []
    for i in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["good", "good", "json", "bytes", "not-base64", "not-text"]))
        data: Any
        if kind == "good":
            data = base64.b64encode(serialize(draw(kinesis_records()), "dynamodb")).decode()
        elif kind == "json":
            data = base64.b64encode(json.dumps(draw(json_values)).encode()).decode()
        elif kind == "bytes":
            data = base64.b64encode(draw(st.binary(max_size=200))).decode()
        elif kind == "not-base64":
            data = draw(st.text(max_size=20))
        else:
            data = draw(st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=2)))
        rec: dict[str, Any] = {"recordId": f"r{i}", "data": data}
        arrival = draw(st.one_of(st.none(), st.integers(-5, 2 * 10**12), st.text(max_size=3)))
        if arrival is not None:
            rec["approximateArrivalTimestamp"] = arrival
        if draw(st.booleans()):
            rec["kinesisRecordMetadata"] = draw(
                st.one_of(st.none(), st.dictionaries(st.just("approximateArrivalTimestamp"), json_values))
            )
        out.append(rec)
    return out


@seed(base_seed())
@FUZZ
@given(firehose_records())
def test_transform_handler_answers_every_record_and_writes_only_readable_lines(
    records: list[dict[str, Any]],
) -> None:
    ran("firehose-handler")
    event = {"invocationId": "fuzz", "deliveryStreamArn": "arn:aws:firehose:us-east-1:1:deliverystream/d"}
    answer = handler({**event, "records": records}, LambdaContext())["records"]  # type: ignore[arg-type]
    assert [a["recordId"] for a in answer] == [r["recordId"] for r in records]
    for rec, out in zip(records, answer, strict=True):
        assert out["result"] in ("Ok", "ProcessingFailed")
        if out["result"] == "ProcessingFailed":
            assert out["data"] == rec["data"], "a failed record goes back unchanged"
            continue
        line = base64.b64decode(out["data"])
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        applicable(ChangeEvent.from_line(line))  # what the Lambda writes, apply can read and apply


# --- capture's boto3 records -------------------------------------------------------------------------

python_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
        st.binary(max_size=8),
        st.decimals(allow_nan=True),
        st.datetimes(),
        st.frozensets(st.text(max_size=3), max_size=2),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def to_boto3(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "B" and isinstance(inner, str):
                return {"B": base64.b64decode(inner)}
            if tag == "BS" and isinstance(inner, list):
                return {"BS": [base64.b64decode(b) for b in inner]}
        return {k: to_boto3(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_boto3(v) for v in value]
    return value


@st.composite
def boto3_records(draw: st.DrawFn) -> Any:
    """What ``get_records`` returns (datetime, bytes), sometimes with one value replaced by anything."""
    ddb: dict[str, Any] = {
        "ApproximateCreationDateTime": draw(
            st.datetimes(min_value=dt.datetime(1970, 1, 2), timezones=st.just(dt.UTC))
        ),
        "Keys": to_boto3(draw(keys)),
        "SequenceNumber": str(draw(st.integers(1, 10**25))).zfill(21),
        "SizeBytes": 10,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    for name in ("NewImage", "OldImage"):
        if draw(st.booleans()):
            ddb[name] = to_boto3(draw(images))
    rec: dict[str, Any] = {
        "eventID": draw(st.text(min_size=1, max_size=10)),
        "eventName": draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE"])),
        "eventSource": "aws:dynamodb",
        "dynamodb": ddb,
    }
    if draw(st.booleans()):
        target = draw(st.sampled_from([rec, ddb]))
        target[draw(st.sampled_from(sorted(target)))] = draw(python_values)
    return draw(st.one_of(st.just(rec), python_values))


@seed(base_seed())
@FUZZ
@given(boto3_records(), st.sampled_from(["table-a", "x", "bad/name"]))
def test_capture_turns_any_boto3_record_into_a_readable_line_or_a_bad_record(
    record_: Any, table: str
) -> None:
    ran("capture-record")
    try:
        line = record_to_line(record_, table=table, ingested_us=1_795_000_000_000_000)
    except BadRecordError:
        return
    applicable(ChangeEvent.from_line(line))


# --- the raw-log reader ------------------------------------------------------------------------------

line_objects = st.builds(
    lambda op, k, new, seq, t, ttl: ChangeEvent(
        op=op,
        table="raw-table",
        keys=k,
        new_image=None if op == "REMOVE" else new,
        old_image=None,
        event_id="e1",
        event_time_us=t,
        sequence=seq,
        source="streams",
        ttl=ttl and op == "REMOVE",
        ingested_us=t,
    ).to_dict(),
    st.sampled_from(["INSERT", "MODIFY", "REMOVE", "LOAD"]),
    keys,
    images,
    st.one_of(st.none(), st.integers(0, 10**39).map(str)),
    st.integers(0, 253_402_300_799_999_999),
    st.booleans(),
)


@st.composite
def raw_lines(draw: st.DrawFn) -> bytes:
    """Valid lines, valid lines with one field replaced by any JSON, cut or spliced lines, any bytes."""
    kind = draw(st.sampled_from(["valid", "field", "cut", "bytes", "json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    obj = draw(line_objects)
    if kind == "field":
        obj[draw(st.sampled_from(sorted(obj)))] = draw(st.one_of(json_values, values))
    compact = (",", ":") if draw(st.booleans()) else None  # ddblake's own style, read by apply's fast path
    data = json.dumps(obj, ensure_ascii=draw(st.booleans()), separators=compact).encode()
    if kind == "cut":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at + draw(st.integers(0, 4)) :]
    return data


@seed(base_seed())
@FUZZ
@given(raw_lines())
def test_raw_log_reader_raises_only_bad_record_and_what_it_accepts_apply_can_apply(line: bytes) -> None:
    ran("raw-line")
    try:
        ev = ChangeEvent.from_line(line)
    except BadRecordError:
        with pytest.raises(BadRecordError):  # apply's fast reader refuses it too
            rawline.read_line(line)
        return
    slim, new, old = rawline.read_line(line)  # apply's reader: the same event, images of equal value
    assert slim == rawline.slim(ev)
    assert (None if new is None else json.loads(new)) == ev.new_image
    assert (None if old is None else json.loads(old)) == ev.old_image
    applicable(ev)
    assert ChangeEvent.from_line(ev.to_line()) == ev, "an accepted line survives a rewrite"


@st.composite
def damaged_gzip(draw: st.DrawFn) -> bytes:
    payload = b"".join(draw(st.lists(raw_lines(), max_size=6)))
    data = bytearray(gzip.compress(payload, mtime=0) * draw(st.integers(1, 2)))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["cut", "flip", "append", "zeros"]))
        if action == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif action == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif action == "append":
            data += draw(st.binary(max_size=20))
        else:
            data += b"\x00" * draw(st.integers(1, 9))
    return bytes(draw(st.one_of(st.just(bytes(data)), st.binary(max_size=64))))


@seed(base_seed())
@FUZZ
@given(damaged_gzip())
def test_raw_file_reader_reports_damage_as_a_value(data: bytes) -> None:
    ran("raw-file")
    payload, error = decode_gzip(data)
    assert isinstance(payload, bytes) and (error is None or isinstance(error, str))
    for line in split_lines(payload, complete_only=error is not None):
        assert b"\n" not in line
        with contextlib.suppress(BadRecordError):
            ChangeEvent.from_line(line)


def test_read_raw_file_returns_missing_and_broken_files_as_values(tmp_path: Path) -> None:
    storage = Storage.from_uri(str(tmp_path))
    assert read_raw_file(storage, "raw/t/gone.gz").error == "missing (deleted after listing)"
    storage.write_atomic("raw/t/x.gz", b"\x1f\x8b\x08garbage")
    content = read_raw_file(storage, "raw/t/x.gz")
    assert content.lines == [] and content.error and "gzip" in content.error


# --- the codec -----------------------------------------------------------------------------------------


@seed(base_seed())
@FUZZ
@given(
    st.one_of(json_values, st.dictionaries(st.text(max_size=4), st.one_of(values, json_values), max_size=4))
)
def test_codec_raises_only_ddblake_errors_on_any_json(value: Any) -> None:
    ran("codec-json")
    for convert in (deserialize_item, validate_item):
        with contextlib.suppress(DdblakeError):
            convert(value)
    for rows in ([value], [value, {"a": {"S": "x"}}]):
        with contextlib.suppress(DdblakeError):
            items_to_table(rows, evolve=True, drop_untyped=True)  # type: ignore[arg-type]
        with contextlib.suppress(DdblakeError):
            jsonl_to_table(b"\n".join(json.dumps(r).encode() for r in rows), evolve=True, drop_untyped=True)


@seed(base_seed())
@FUZZ
@given(st.lists(images, min_size=1, max_size=3))
def test_what_the_image_check_accepts_the_codec_types(batch: list[dict[str, Any]]) -> None:
    """The transform writes a line only when ``check_image`` accepts it; the codec must then type it,
    or apply would stop on a line that was never quarantined."""
    ran("check-vs-codec")
    try:
        for image in batch:
            check_image(image, "NewImage")
    except BadRecordError:
        return
    evs = [
        ChangeEvent(
            "INSERT",
            "t-x",
            {"pk": {"S": str(i)}},
            {**image, "pk": {"S": str(i)}},
            None,
            f"e{i}",
            1,
            None,
            "streams",
            False,
            1,
        )
        for i, image in enumerate(batch)
    ]
    keyed = [Keyed(key_string(e.keys), version_of(e), e) for e in evs]
    texts = [json.dumps(e.new_image, separators=(",", ":"), ensure_ascii=False) for e in evs]
    try:
        current.typed_rows(keyed, 16, None, texts)
        current.typed_rows(keyed, 16, None, None)
    except UnicodeEncodeError:
        assume(False)  # lone surrogates: the raw-log reader refuses those lines (tested above)


@pytest.mark.parametrize("number", ["0E+55", "-.0e86"])
def test_codec_types_zero_with_a_large_exponent(number: str) -> None:
    """A zero written with a huge exponent is still zero, in a column typed for its neighbours."""
    table = items_to_table([{"n": {"N": number}}, {"n": {"N": "1.5"}}], evolve=True, drop_untyped=True)
    assert table.column("n").to_pylist() == [Decimal(0), Decimal("1.5")]


def test_codec_refuses_a_null_first_line_without_crashing() -> None:
    script = (
        "from ddblake.codec import jsonl_to_table\n"
        "try:\n    jsonl_to_table(b'null')\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, f"the process died with {done.returncode}"
    assert done.stdout.decode().strip() == "BadValueError line 1 is not a JSON object"
    with pytest.raises(BadValueError, match="line 2 is not a JSON object"):  # never dropped silently
        jsonl_to_table(b'{"a": {"S": "x"}}\nnull')


def test_base64_strictness_matches_between_reader_and_codec() -> None:
    """The parser's base64 check and the codec's decoder agree on padding (a regression guard)."""
    for text in ("", "AA==", "AAA=", "AAAA", "AAB=", "AB=="):
        decoded = binascii.a2b_base64(text, strict_mode=True)
        check_image({"b": {"B": text}}, "NewImage")
        assert deserialize_item({"b": {"B": text}}) == {"b": decoded}
    for text in ("A", "AA=", "A===", "=AAA", "AA==AA==", "AA AA", "****"):
        with pytest.raises(binascii.Error):
            binascii.a2b_base64(text, strict_mode=True)
        with pytest.raises(BadRecordError):
            check_image({"b": {"B": text}}, "NewImage")
        with pytest.raises(DdblakeError):
            deserialize_item({"b": {"B": text}})
