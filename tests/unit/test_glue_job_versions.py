"""The Glue job refuses an export when the lake already holds export loads versioned to the minute.

``ddblake load --from-export`` versions a new export's rows to the minute when the lake holds such
a load (an older ddblake's, or one against a non-AWS endpoint): rows of the two rules do not order
against each other. The Glue job always versions to the second, and a Glue incremental export
after such a full load left a stale value in the lake (and a Glue full load after such an
incremental one lost the newer write).
"""

from __future__ import annotations

import json

from ddblake.gluejob.job import minute_versioned_loads


def _state(kind: str, options: dict[str, str]) -> bytes:
    return json.dumps({"v": 1, "table": "orders", "kind": kind, "options": options}).encode()


def test_the_minute_versioned_export_loads_are_named() -> None:
    objects = [
        ("lake/state/load/orders/export-01700000000000-aaaa.json", _state("export", {"versions": "minute"})),
        ("lake/state/load/orders/export-01700000000000-bbbb.json", _state("export", {"versions": "second"})),
        ("lake/state/load/orders/export-01700000000000-cccc.json", _state("export", {})),  # before the rule
        ("lake/state/load/orders/export-request.json", b'{"client_token": "x"}'),
        ("lake/state/load/orders/export-damaged.json", b"{not json"),
        ("lake/state/load/orders-2/export-0170-dddd.json", _state("export", {"versions": "minute"})),
    ]
    assert minute_versioned_loads("lake", "orders", objects) == [
        "export-01700000000000-aaaa",
        "export-01700000000000-cccc",
    ]


def test_a_lake_of_second_versioned_loads_is_taken() -> None:
    objects = [("state/load/orders/export-x.json", _state("export", {"versions": "second"}))]
    assert minute_versioned_loads("", "orders", objects) == []
