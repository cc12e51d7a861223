"""What to tell someone whose lake answers otherwise than they expect: the lake's tables in another
namespace than the one asked for, or a lake directory copied with its catalog.

Catalog inspection for messages only (no DuckDB), shared by ``query``, ``dump``, ``status`` and
``apply`` so that each says the same thing of the same situation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from ddblake import settings
from ddblake.lake.catalog import table_names
from ddblake.lake.options import LAKE_PROPERTY, SOURCE_PROPERTY
from ddblake.lake.storage import Storage
from ddblake.names import DEFAULT_NAMESPACE

log = logging.getLogger(__name__)


ELSEWHERE_NAMESPACES: Final = 20
"""Other namespaces :func:`namespaces_elsewhere` looks into at most (a Glue catalog may hold many)."""
ELSEWHERE_PROBES: Final = 3
"""Tables of one other namespace :func:`namespaces_elsewhere` loads at most to find a ddblake one."""


def namespaces_elsewhere(catalog: Catalog, namespace: str, own_lake: Storage | None = None) -> list[str]:
    """The catalog's other namespaces holding ddblake tables (``ddblake.source-table``), of the lake
    ``own_lake`` when given: where a lake's tables are when ``namespace`` holds none, so that a
    wrong ``--namespace`` is not taken for an empty lake (and told to run apply again).

    Only a hint for a message: a catalog that cannot be listed (no ``glue:GetDatabases`` grant)
    gives none, and a large Glue catalog is looked into only so far (:data:`ELSEWHERE_NAMESPACES`,
    :data:`ELSEWHERE_PROBES`).
    """
    try:
        spaces = sorted({".".join(ns) for ns in catalog.list_namespaces()} - {namespace})
    except Exception as e:  # noqa: BLE001 - a hint only: any catalog error leaves it out
        log.debug("cannot list the catalog's namespaces (%s): no hint given", type(e).__name__)
        return []
    found: list[str] = []
    for other in spaces[:ELSEWHERE_NAMESPACES]:
        try:
            probes = [catalog.load_table(ident) for ident in table_names(catalog, other)[:ELSEWHERE_PROBES]]
        except Exception as e:  # noqa: BLE001 - as above
            log.debug("cannot look into namespace %s (%s)", other, type(e).__name__)
            continue
        if any(_ddblake_table(t, own_lake) for t in probes):
            found.append(other)
    return found


def _ddblake_table(table: Table, own_lake: Storage | None) -> bool:
    """Whether ddblake wrote ``table`` (into ``own_lake``, when given)."""
    lake = table.properties.get(LAKE_PROPERTY)
    return SOURCE_PROPERTY in table.properties and (own_lake is None or not lake or own_lake.names(lake))


def elsewhere_hint(namespace: str, others: Sequence[str]) -> str:
    """What to say when ``namespace`` holds no tables but ``others`` (non-empty) hold the lake's:
    which namespaces, and how to choose one (the flag, or the setting that chose this one)."""
    first = others[0]
    advice = f"pass --namespace {first}"
    chosen = settings.lookup("namespace")  # the variable or settings file that chose the namespace
    if chosen is not None and chosen[0] == namespace:  # not when --namespace overrode it
        advice += (
            f" or unset {chosen[1]}" if first == DEFAULT_NAMESPACE else f" or set {chosen[1]} to {first}"
        )
    return (
        f"namespace {namespace!r} holds no tables; this lake's catalog has tables in: "
        f"{', '.join(others)} ({advice})"
    )


def tables_elsewhere(catalog: Catalog, namespace: str, own_lake: Storage | None) -> str | None:
    """:func:`elsewhere_hint` when ``namespace`` holds none of the lake's tables but other namespaces
    do (:func:`namespaces_elsewhere`), else None."""
    others = namespaces_elsewhere(catalog, namespace, own_lake)
    return elsewhere_hint(namespace, others) if others else None


def copied_lake(identifier: str, lake: str, here: str) -> str:
    """What to say of lake table ``identifier`` of the lake at ``lake`` that the lake at ``here``
    lists in its own ``catalog.db``: the lake directory was copied or moved. One wording for every
    command that meets it (query and dump here, apply in :mod:`ddblake.lake.tables`), since the
    fix is the same whatever the command: not another namespace, but a new lake of the raw files."""
    return (
        f"lake table {identifier} belongs to the lake at {lake}, yet the catalog of the lake at "
        f"{here} lists it: this lake directory was copied or moved, and Iceberg's metadata "
        f"still points at the files under {lake}. Use that lake; to make a lake of this copy, "
        f"copy only its raw/ folder into a new directory and run 'ddblake apply --once' there"
    )
