"""Export lines into raw-log lines: the rows of an export load (``ddblake.load.export`` checks it).

:class:`RowMaker` applies the version and event-ID rules of ``ddblake.load.rows`` to one export's
lines: a full export's items become LOAD rows at the export's time, an incremental export's changes
rows at their write time. DYNAMODB_JSON lines keep their images' text exactly as exported; ION lines
(``ddblake.load.ion``) come in already converted to DynamoDB JSON.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from ddblake.changes.model import ChangeEvent
from ddblake.errors import BadRecordError
from ddblake.load.jsontext import members_with_text
from ddblake.load.rows import (
    export_event_id,
    export_version_from_us,
    incremental_op,
    incremental_sequence,
    key_of,
    spliced_line,
)

if TYPE_CHECKING:
    from ddblake.load.export import ExportManifest

_ITEM_PREFIX: Final = '{"Item":'


class RowMaker:
    """Turns export lines into raw-log lines by the version and event-ID rules of ``ddblake.load.rows``.

    Args:
        manifest: the export.
        table: the table name written in the rows.
        key_names: the table's key attributes (from DescribeTable or the first item's ``Keys``).
    """

    def __init__(
        self,
        manifest: ExportManifest,
        table: str,
        key_names: tuple[str, ...] | None,
        versions: str = "second",
    ) -> None:
        """Fix the rules for one export (``versions``: see ``ddblake.load.rows.export_version_from_us``)."""
        self.manifest = manifest
        self.table = table
        self.key_names = key_names
        self.versions = versions
        self.version = export_version_from_us(manifest.export_time_us or 0, versions)
        # A full export's rows carry its time as their sequence: an incremental export's row of the
        # same second (its write time as sequence) then wins only if written after the snapshot.
        self.sequence = incremental_sequence(manifest.export_time_us) if manifest.export_time_us else None
        self.export_id = manifest.export_id

    def line_for(self, text: str, ingested_us: int) -> bytes:
        """One DYNAMODB_JSON export line as a raw-log line, its images copied as text.

        Raises:
            BadRecordError: the line is not an export line of this export's kind.
        """
        stripped = text.strip()
        if not self.manifest.incremental and stripped.startswith(_ITEM_PREFIX) and stripped.endswith("}"):
            # The common full-export line: one C parse for the values; then, as "Item" is the only
            # member and written literally, its text is everything between that colon and the last brace.
            try:
                whole = json.loads(stripped)
            except ValueError as e:
                raise BadRecordError(f"export line is not JSON ({e})") from e
            if isinstance(whole, dict) and len(whole) == 1:
                event = self.item_to_event(whole, ingested_us)
                return spliced_line(
                    op=event.op,
                    table=event.table,
                    keys=event.keys,
                    new_text=stripped[len(_ITEM_PREFIX) : -1].strip(),
                    event_id=event.event_id,
                    event_time_us=event.event_time_us,
                    source=event.source,
                    ingested_us=ingested_us,
                    sequence=event.sequence,
                )
        try:
            members = members_with_text(text)
        except ValueError as e:
            raise BadRecordError(f"export line is not a JSON object ({e})") from e
        obj = {name: value for name, (value, _) in members.items()}
        event = self.item_to_event(obj, ingested_us)  # checks the shape, computes keys and ID
        new_name = "NewImage" if self.manifest.incremental else "Item"
        return spliced_line(
            op=event.op,
            table=event.table,
            keys=event.keys,
            new_text=members[new_name][1] if event.new_image is not None else None,
            old_text=members["OldImage"][1] if event.old_image is not None else None,
            event_id=event.event_id,
            event_time_us=event.event_time_us,
            source=event.source,
            ingested_us=ingested_us,
            sequence=event.sequence,
        )

    def item_to_event(self, obj: Any, ingested_us: int) -> ChangeEvent:
        """One parsed export line as a ChangeEvent.

        Raises:
            BadRecordError: the line is not an export line of this export's kind.
        """
        if not isinstance(obj, dict):
            raise BadRecordError("export line is not a JSON object")
        if not self.manifest.incremental:
            item = obj.get("Item")
            if not isinstance(item, dict) or not item:
                raise BadRecordError("full export line has no Item")
            if self.key_names is None:
                raise BadRecordError("the table's key attributes are unknown")
            item_keys = key_of(item, self.key_names)
            return ChangeEvent(
                op="LOAD",
                table=self.table,
                keys=item_keys,
                new_image=item,
                old_image=None,
                event_id=export_event_id(self.export_id, item_keys),
                event_time_us=self.version,
                sequence=self.sequence,
                source="export",
                ttl=False,
                ingested_us=ingested_us,
            )
        keys: Any = obj.get("Keys")
        new: Any = obj.get("NewImage")
        old: Any = obj.get("OldImage")
        try:
            write_us = int(obj["Metadata"]["WriteTimestampMicros"]["N"])
        except (KeyError, TypeError, ValueError) as e:
            raise BadRecordError("incremental export line has no Metadata.WriteTimestampMicros") from e
        if not isinstance(keys, dict) or not keys:
            raise BadRecordError("incremental export line has no Keys")
        if new is not None and not isinstance(new, dict):
            raise BadRecordError("incremental export line's NewImage is not an object")
        if old is not None and not isinstance(old, dict):
            raise BadRecordError("incremental export line's OldImage is not an object")
        return ChangeEvent(
            op=incremental_op(new, old, self.manifest.output_view),
            table=self.table,
            keys=keys,
            new_image=new,
            old_image=old,
            event_id=export_event_id(self.export_id, keys, write_us),
            event_time_us=export_version_from_us(write_us, self.versions),
            sequence=incremental_sequence(write_us),
            source="export",
            ttl=False,
            ingested_us=ingested_us,
        )
