"""Whose lake table a reading command meets: this lake's, a copied lake's, or another lake's in a
catalog namespace lakes share (docs/deploy.md: one stack, bucket and lake per DynamoDB table, all
in the Glue database ``ddb``).

Each table ddblake creates names its lake in the property ``ddblake.lake``. ``query`` reads another
lake's table of a shared catalog (joining tables of several lakes is what that deployment is for),
unless this lake has a DynamoDB table of the same identifier, whose lake table that one stands in
for; ``dump``, which names this lake's table, refuses it.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from typing import TYPE_CHECKING

from ddblake.errors import ConfigError, TerminalError
from ddblake.lake.advice import copied_lake
from ddblake.lake.options import LAKE_PROPERTY
from ddblake.lake.storage import Storage, local_lake_path
from ddblake.names import changes_identifier, table_identifier

if TYPE_CHECKING:
    from pyiceberg.table import Table

log = logging.getLogger("ddblake.lake.query")  # said as query's, the command that reads on

OWN_TABLE_FOLDERS = ("raw", "state/capture", "state/load", "state/apply")
"""The lake folders holding one folder per DynamoDB table the lake captures, loads or applies."""


def check_own_lake(
    tbl: Table, identifier: str, own_lake: Storage | None, *, shared_reads: bool = False
) -> None:
    """Refuse a table of another lake: listed by this lake's own catalog, a copied or moved lake;
    listed by a catalog lakes share (a Glue database, a ``DDBLAKE_CATALOG_URI``), another lake's
    table, which apply and status of this lake do not take for its own either.

    ``shared_reads`` (query): in a shared catalog, another lake's table is read (logged at INFO,
    naming its lake) unless this lake also has a DynamoDB table of that identifier
    (:func:`own_table_clash`), whose lake table it would silently stand in for. Without it (dump,
    which names this lake's table) another lake's table is refused.

    Iceberg metadata holds absolute paths, so a copy of a lake directory still reads the original's
    files: its answers would silently come from there (or fail once the original is gone). A table
    without the ``ddblake.lake`` property (an older lake's) is taken as this lake's.

    Raises:
        TerminalError: the table's ``ddblake.lake`` property names another lake, and (with
            ``shared_reads``) the lake's own ``catalog.db`` lists it or this lake has a DynamoDB
            table of the same identifier; one line naming both lakes and the fix.
    """
    from ddblake.lake.catalog import own_catalog_db

    lake = tbl.properties.get(LAKE_PROPERTY)
    if own_lake is None or not lake or own_lake.names(lake):
        return
    if own_catalog_db(tbl.catalog, own_lake):
        raise TerminalError(copied_lake(identifier, lake, own_lake.uri()))
    namespace, name = identifier.rsplit(".", 1)
    clash = own_table_clash(own_lake, name)
    other = lake_shown(lake)
    if shared_reads and clash is None:
        log.info("lake table %s is read from lake %s, which owns it in a catalog both use", identifier, other)
        return
    here = (
        f"lake table {identifier} belongs to lake {other}, not to this one ({own_lake.shown()}), in the "
        f"namespace {namespace!r} of a catalog both use"
    )
    if clash is None:  # dump: this lake has no such table, the other one has
        raise TerminalError(f"{here}: to dump it, pass --lake {shlex.quote(other)}")
    raise TerminalError(
        f"{here}, and this lake's DynamoDB table {clash!r} has the same identifier: pass --lake "
        f"{shlex.quote(other)} to read that lake's, or apply this lake's tables into another "
        "--namespace (or DDBLAKE_NAMESPACE) and read them there"
    )


def own_table_clash(own_lake: Storage, name: str) -> str | None:
    """The DynamoDB table of ``own_lake`` (a folder of its under :data:`OWN_TABLE_FOLDERS`) whose
    lake table or change history has the identifier ``name``; None when there is none."""
    tables: set[str] = set()
    for folder in OWN_TABLE_FOLDERS:
        tables.update(own_lake.list_dirs(folder))
    return next((t for t in sorted(tables) if name in (table_identifier(t), changes_identifier(t))), None)


def lake_shown(lake: str) -> str:
    """A lake's URI (a table's ``ddblake.lake``) as ``--lake`` takes it and people read it: a local
    lake's ``file://`` URI as its path (:meth:`Storage.shown`), any other as it is."""
    with contextlib.suppress(ConfigError):
        path = local_lake_path(lake)
        if path is not None:
            return str(path)
    return lake
