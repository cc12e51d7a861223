"""The lake's two tables of one DynamoDB table: found, created, and checked to be this lake's own.

A Glue database can be shared by several lakes and several DynamoDB tables; every table ddblake
creates carries its owner (``SOURCE_PROPERTY``, ``LAKE_PROPERTY``), and one owned by another lake
or table is refused rather than written over. Split from :mod:`ddblake.lake.apply`, whose
:class:`~ddblake.lake.apply.Applier` uses these through :class:`TableOwnership`.
"""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.table import Table

from ddblake.errors import TerminalError
from ddblake.lake import current, history
from ddblake.lake.advice import copied_lake
from ddblake.lake.catalog import shown_catalog_uri
from ddblake.lake.layout import create_current, refuse_occupied, table_folder
from ddblake.lake.nulllists import MENDED_PROPERTY
from ddblake.lake.options import LAKE_PROPERTY, NO_CATALOG_RETRY, SOURCE_PROPERTY, ApplyConfig, other_owner
from ddblake.lake.storage import Storage, warn_encoded


class TableOwnership:
    """Finds or creates one DynamoDB table's history and current-state tables, refusing others'.

    A mixin: the class using it sets the attributes below (``Applier.__init__``).
    """

    config: ApplyConfig
    storage: Storage
    history_id: str
    current_id: str

    @property
    def catalog(self) -> Catalog:
        """The lake's catalog (the class using the mixin provides it)."""
        raise NotImplementedError

    # -- tables -------------------------------------------------------------------------------
    def _owner_properties(self) -> dict[str, str]:
        return {SOURCE_PROPERTY: self.config.table, LAKE_PROPERTY: self.storage.uri(), **NO_CATALOG_RETRY}

    def _owned(self, table: Table) -> Table:
        """Refuse a catalog table that another lake or DynamoDB table wrote (a shared Glue database),
        or that the lake's own ``catalog.db`` lists for another lake: a copied or moved lake
        directory, which another namespace would not mend (said as ``query`` says it)."""
        lake = table.properties.get(LAKE_PROPERTY)
        source = table.properties.get(SOURCE_PROPERTY)
        other_lake = lake if lake and not self.storage.names(lake) else None
        owner = other_owner(table, self.config.table)
        if other_lake and owner is None and self.config.lake.own_catalog:
            raise TerminalError(copied_lake(".".join(table.name()), other_lake, self.storage.uri()))
        if other_lake or owner:
            raise TerminalError(
                f"catalog table {'.'.join(table.name())} belongs to DynamoDB table {source!r} "
                f"in lake {lake}, "
                f"not to {self.config.table!r} in {self.storage.shown()}; use another --namespace "
                "(or DDBLAKE_NAMESPACE) for this lake"
            )
        if lake and lake != self.storage.uri():  # percent-encoded by an older ddblake (storage.local_uri)
            warn_encoded(".".join(table.name()), table.location())
        return table

    def _folder(self, identifier: str) -> str:
        """A table's folder under the lake: Glue's default shape ``warehouse/<ns>.db/<table>``, the
        SQLite catalog's ``warehouse/<ns>/<table>``; a table part longer than a local disk's 255-byte
        file names (a 255-character DynamoDB name's history table, ``…_changes``) is cut, with a hash
        of the whole (:func:`folder_name`)."""
        return table_folder(identifier, self.config.lake.catalog == "glue")

    def _location(self, identifier: str) -> str | None:
        """Where a new table's files go: this lake's :meth:`_folder`. Said explicitly in a Glue
        catalog, because a shared database's own location (another lake's bucket, set by the stack
        that created it) would win over the default; the SQLite catalog's default is this lake's
        already, and is said only for a name its folder cannot hold whole."""
        folder = self._folder(identifier)
        if self.config.lake.catalog != "glue" and folder.rsplit("/", 1)[-1] == identifier.split(".", 1)[1]:
            return None
        return self.storage.uri(folder)

    def _refuse_occupied(self, identifier: str) -> None:
        """Refuse a new table whose folder holds another catalog's table (layout.refuse_occupied).

        Raises:
            TerminalError: the folder holds a table with data that the catalog does not name.
            CommitFailedException: the catalog names it now: another apply created it (and may
                have committed data) since this batch found no table, so the batch starts again
                from the top (:func:`ddblake.lake.service.run_apply` retries), deciding with it.
        """
        lake = self.config.lake
        glue = lake.catalog == "glue"
        shown = shown_catalog_uri(lake.catalog_uri) if lake.catalog_uri else None  # no password shown
        name = shown or ("the Glue Data Catalog" if glue else "the lake's catalog.db")
        try:
            refuse_occupied(self.storage, self._folder(identifier), identifier, name)
        except TerminalError:
            if self.catalog.table_exists(identifier):
                raise CommitFailedException(
                    f"table {identifier} was created by another writer meanwhile"
                ) from None
            raise

    def _history(self) -> Table:
        try:
            return self._owned(self.catalog.load_table(self.history_id))
        except NoSuchTableError:
            self._refuse_occupied(self.history_id)
            schema = history.iceberg_schema()
            return self.catalog.create_table_if_not_exists(
                self.history_id,
                schema=schema,
                partition_spec=history.partition_spec(schema),
                properties=self._owner_properties(),
                location=self._location(self.history_id),
            )

    def _known(self) -> bool:
        """Whether capture or a load has started on the table (its state files), raw files or not."""
        from ddblake.capture.checkpoint import checkpoint_path
        from ddblake.load.state import state_prefix

        table = self.config.table
        return self.storage.read(checkpoint_path(table)) is not None or bool(
            self.storage.list_files(state_prefix(table))
        )

    def _current(self) -> Table | None:
        try:
            return self._owned(self.catalog.load_table(self.current_id))
        except NoSuchTableError:
            return None

    def _create_current(self, arrow_schema: pa.Schema) -> Table:
        props = {
            **self._owner_properties(),
            current.BUCKETS_PROPERTY: str(self.config.buckets),
            MENDED_PROPERTY: "true",  # written by this ddblake: no list of lists to mend
        }
        self._refuse_occupied(self.current_id)
        return create_current(
            self.catalog, self.current_id, arrow_schema, props, self._location(self.current_id)
        )
