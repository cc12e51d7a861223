"""The child processes of bench/apply.py: each times one thing in a fresh process.

Split from bench/apply.py so that the entry point holds only the run and its report. The bench
starts ``python bench/apply.py --child MODE WORK ...``; its ``main`` hands the arguments to
:func:`run_as_child`, which runs one body here and prints its result as the last stdout line (one
JSON object, read back by ``_common.run_child``). A body times only its apply / merge / upsert call
(imports and reading its input excluded) and reports its peak RSS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from _apply_data import BUCKETS, TABLE
from _common import peak_rss_mb


def child_ddblake(work: Path, max_files: int) -> dict[str, Any]:
    """ddblake's whole apply of the raw files in ``work/lake``, split into its stages.

    Args:
        work: The bench's work directory.
        max_files: Raw files per apply batch.

    Returns:
        Seconds, peak RSS, seconds per stage and the apply's own result fields.
    """
    import pyiceberg.catalog.sql  # noqa: F401  (imported lazily by open_catalog: not part of the timing)

    import ddblake.codec  # noqa: F401
    from ddblake.lake.apply import Applier, ApplyConfig
    from ddblake.lake.catalog import LakeConfig

    phases = _time_phases()
    lake = str(work / "lake")
    started = time.perf_counter()
    config = ApplyConfig.build(
        table=TABLE, lake=LakeConfig.build(lake=lake), once=True, buckets=BUCKETS, max_files=max_files
    )
    result = Applier(config).run_once()
    seconds = time.perf_counter() - started
    phases["other"] = seconds - sum(phases.values())
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        **result.__dict__,
    }


def _time_phases() -> dict[str, float]:
    """Wrap apply's three stages with timers (reading raw files, history commit, current lookup + commit)."""
    from ddblake.lake import apply as mod
    from ddblake.lake import batch

    phases = {"read_parse": 0.0, "history": 0.0, "current": 0.0}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - t0

        return wrapper

    batch.read_raw = timed("read_parse", batch.read_raw)
    mod.Applier._commit_history = timed("history", mod.Applier._commit_history)  # type: ignore[method-assign]
    mod.Applier._commit_current = timed("current", mod.Applier._commit_current)  # type: ignore[method-assign]
    mod.Applier._lookup = timed("current", mod.Applier._lookup)  # type: ignore[method-assign]
    return phases


def child_delta(work: Path, changes: str) -> dict[str, Any]:
    """delta-rs's ``MERGE`` of the net changes in ``work/changes`` into ``work/delta``.

    Args:
        work: The bench's work directory.
        changes: The Parquet file of net changes, relative to ``work``.

    Returns:
        Seconds, peak RSS, rows updated / inserted / deleted and files rewritten.
    """
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    source = pq.read_table(work / changes)
    started = time.perf_counter()
    metrics = (
        DeltaTable(str(work / "delta"))
        .merge(
            source=source,
            predicate="t._ddb_bucket = s._ddb_bucket AND t._ddb_key = s._ddb_key",
            source_alias="s",
            target_alias="t",
        )
        .when_matched_delete(predicate="s._op = 'REMOVE' AND s._ddb_version > t._ddb_version")
        .when_matched_update_all(
            predicate="s._op <> 'REMOVE' AND s._ddb_version > t._ddb_version", except_cols=["_op"]
        )
        .when_not_matched_insert_all(predicate="s._op <> 'REMOVE'", except_cols=["_op"])
        .execute()
    )
    seconds = time.perf_counter() - started
    keep = ("num_target_rows_updated", "num_target_rows_inserted", "num_target_rows_deleted")
    out = {k: metrics.get(k) for k in keep}
    out["files_rewritten"] = metrics.get("num_target_files_removed")
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), **out}


def _pyiceberg_catalog(work: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    root = work / "pyiceberg"
    root.mkdir(exist_ok=True)
    catalog = SqlCatalog("bench", uri=f"sqlite:///{root}/catalog.db", warehouse=(root / "warehouse").as_uri())
    return catalog


def child_pyiceberg_setup(work: Path) -> dict[str, Any]:
    """Create the plain pyiceberg table (partitioned on ``_ddb_bucket``) from ``work/base.parquet``."""
    import pyarrow.parquet as pq
    from pyiceberg.transforms import IdentityTransform

    base = pq.read_table(work / "base.parquet")
    catalog = _pyiceberg_catalog(work)
    catalog.create_namespace("bench")
    table = catalog.create_table("bench.t", schema=base.schema)
    with table.update_spec() as spec:
        spec.add_field("_ddb_bucket", IdentityTransform(), "_ddb_bucket")
    table = catalog.load_table("bench.t")
    table.append(base)
    return {"rows": base.num_rows}


def child_pyiceberg(work: Path, changes: str, join: str) -> dict[str, Any]:
    """pyiceberg's ``Table.upsert`` of the net changes, then a delete of the removed keys.

    Args:
        work: The bench's work directory.
        changes: The Parquet file of net changes, relative to ``work``.
        join: ``key`` to join on ``pk, sk``; anything else joins on ``_ddb_key``.

    Returns:
        Seconds (upsert + delete), the upsert's seconds, peak RSS and the rows changed.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyiceberg.expressions import In

    net = pq.read_table(work / changes)
    is_rm = pc.equal(net.column("_op"), "REMOVE")
    ups = net.filter(pc.invert(is_rm)).drop_columns(["_op"])
    removed = net.filter(is_rm).column("_ddb_key").to_pylist()
    table = _pyiceberg_catalog(work).load_table("bench.t")
    ups = ups.cast(table.schema().as_arrow())
    join_cols = ["pk", "sk"] if join == "key" else ["_ddb_key"]
    started = time.perf_counter()
    res = table.upsert(ups, join_cols=join_cols)
    upsert_s = time.perf_counter() - started
    if removed:
        table.delete(In("_ddb_key", removed))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "upsert_s": upsert_s,
        "peak_rss_mb": peak_rss_mb(),
        "rows_updated": res.rows_updated,
        "rows_inserted": res.rows_inserted,
        "rows_deleted": len(removed),
    }


def run_as_child(argv: list[str]) -> int:
    """Run one child body and print its result as one JSON line.

    Args:
        argv: ``MODE WORK [ARGS...]``, the arguments after ``--child``.

    Returns:
        The exit status (0).
    """
    mode, work = argv[0], Path(argv[1])
    if mode == "ddblake":
        out = child_ddblake(work, int(argv[2]))
    elif mode == "delta":
        out = child_delta(work, argv[2])
    elif mode == "pyiceberg-setup":
        out = child_pyiceberg_setup(work)
    elif mode == "pyiceberg":
        out = child_pyiceberg(work, argv[2], argv[3])
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps(out))
    return 0
