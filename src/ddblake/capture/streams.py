"""DynamoDB and DynamoDB Streams calls capture needs, with errors translated into ddblake's kinds.

The adapter is the only place that sees botocore: the consumer gets shards, iterators and records, and
errors it can act on — :class:`IteratorExpired` (re-open from the checkpoint), :class:`DataTrimmed`
(a gap), and otherwise the kinds of :mod:`ddblake.errors`.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ddblake.aws.clients import (
    ACCESS_DENIED_CODES,
    build_dynamodb_clients,
    describe_client,
    error_code,
    translate_error,
)
from ddblake.aws.roles import Identity, explain_access_error
from ddblake.capture.shards import Shard
from ddblake.errors import DdblakeError, NotFoundError, TerminalError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

log = logging.getLogger(__name__)

IteratorType = Literal["TRIM_HORIZON", "AFTER_SEQUENCE_NUMBER", "LATEST", "AT_SEQUENCE_NUMBER"]


class IteratorExpired(TransientError):
    """A shard iterator is older than 15 minutes; open a new one from the last position."""


class DataTrimmed(TerminalError):
    """The records asked for are past the stream's 24-hour retention (TrimmedDataAccessException)."""


class ShardGone(NotFoundError):
    """GetRecords says the shard an iterator reads, or its whole stream, no longer exists
    (ResourceNotFoundException): trimmed, or the stream removed (24 hours after DeleteTable). The
    caller, which knows the shard and stream, says which (:mod:`ddblake.capture.reading`)."""


@dataclass(frozen=True)
class TableStream:
    """The stream DescribeTable reports for a table.

    Attributes:
        arn: ``LatestStreamArn``; DynamoDB keeps it after a stream is disabled (still readable 24 h).
        enabled: whether the table currently writes to a stream.
        view_type: KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES.
    """

    arn: str | None
    enabled: bool
    view_type: str | None


@dataclass(frozen=True)
class RecordBatch:
    """One GetRecords answer: records, and the next iterator (None once a closed shard is drained)."""

    records: Sequence[Any]
    next_iterator: str | None


ENABLE_STREAM = (
    "aws dynamodb update-table --table-name {table} --stream-specification "
    "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES"
)


def check_stream(stream: TableStream, table: str, where: str) -> None:
    """Refuse a table whose stream cannot feed the lake, before anything is read or loaded.

    A stream of KEYS_ONLY or OLD_IMAGE records carries no new image, so every insert and update
    would end in errors/ and the lake would never hold the table.

    Raises:
        TerminalError: no stream, or one of the wrong view type (says how to enable the right one).
    """
    if stream.arn is None:
        raise TerminalError(
            f"table {table!r} at {where} has no stream; enable one with: {ENABLE_STREAM.format(table=table)}"
        )
    if stream.enabled and stream.view_type not in ("NEW_AND_OLD_IMAGES", "NEW_IMAGE"):
        raise TerminalError(
            f"table {table!r} at {where} streams {stream.view_type} records, which carry no new image; "
            "the lake needs NEW_IMAGE or NEW_AND_OLD_IMAGES. A stream's view type cannot be changed: "
            f"disable the stream, then enable one with: {ENABLE_STREAM.format(table=table)}"
        )


@dataclass(frozen=True)
class FoundStream:
    """What :func:`table_or_kept_stream` found.

    Attributes:
        stream: the table's stream, or (``deleted``) the newest stream ListStreams names for it.
        deleted: DescribeTable answers not found.
        shards: the kept stream's shards (DescribeStream's answer, already asked for), when it is
            the one to drain; None otherwise.
    """

    stream: TableStream
    deleted: bool = False
    shards: list[Shard] | None = None


def table_or_kept_stream(adapter: StreamsAdapter, table: str, known_arn: str | None) -> FoundStream:
    """The table's stream (DescribeTable), or a deleted table's stream still to drain.

    DeleteTable leaves the table's stream readable, DISABLED, for 24 hours (and DynamoDB Local keeps
    it too): when DescribeTable answers not found and the checkpoint names a stream (``known_arn``)
    that DescribeStream still finds, that stream is returned as a disabled one with its shards, so
    that capture drains the deleted table's last changes as it drains any disabled stream — but only
    if it is the newest stream ListStreams names for the table. A newer one (the stream disabled and
    enabled again, or the table created again, before this delete) is returned instead, disabled:
    the caller finds the ARN changed and reports the gap, as for a live table.

    Raises:
        NotFoundError: the table is not found, and neither is its stream (or none is known); the
            table's own error, which names the account, role and endpoint.
        TransientError: DescribeStream or ListStreams failed for now, or ListStreams names no stream
            of the table (whether it had a newer one cannot be told yet).
    """
    try:
        return FoundStream(adapter.table_stream())
    except NotFoundError:
        if known_arn is None:
            raise
        try:
            shards: list[Shard] | None = adapter.shards(known_arn)  # DescribeStream: still there?
        except TransientError:
            raise
        except DdblakeError:  # gone too, or not ours to read: the table's own error says why
            shards = None
        if shards is None:
            raise
    try:
        newest = adapter.newest_stream()
    except NotFoundError:  # as naming none: the table is gone
        newest = None
    if newest is None:
        raise TransientError(
            f"table {table!r} is not found at {adapter.where} and ListStreams names no stream "
            f"of it, while its stream {known_arn} is still there: whether the table had a newer stream "
            "cannot be told, so that stream is not drained yet"
        )
    if newest != known_arn:
        return FoundStream(TableStream(newest, enabled=False, view_type=None), deleted=True)
    return FoundStream(TableStream(known_arn, enabled=False, view_type=None), deleted=True, shards=shards)


def drained_message(table: str, where: str, arn: str | None, deleted: bool, lake: str) -> str:
    """What capture says once a disabled stream, or a deleted table's, is read to its end (``lake``:
    the lake as shown, quoted here for the command)."""
    rebootstrap = f"ddblake sync --table {table} --lake {shlex.quote(lake)} --rebootstrap"
    if deleted:
        return (
            f"table {table!r} is deleted (not found at {where}): table deleted, stream drained: every "
            f"change its stream {arn} held is captured, and no more will come; should the table be "
            f"created again, its new stream starts after a gap: re-bootstrap it then ({rebootstrap})"
        )
    return (
        f"the stream of table {table!r} is disabled and every change it held is captured; changes made "
        f"from now on are not captured: enable the stream again ({ENABLE_STREAM.format(table=table)}) "
        f"and re-bootstrap the table from a full load ({rebootstrap})"
    )


class StreamsAdapter:
    """DescribeTable, DescribeStream, GetShardIterator and GetRecords for one table."""

    def __init__(
        self,
        table: str,
        *,
        dynamodb: DynamoDBClient | None = None,
        streams: DynamoDBStreamsClient | None = None,
        endpoint_url: str | None = None,
        identity: Callable[[], Identity] | None = None,
    ) -> None:
        """Use the given clients; build the missing ones from ``endpoint_url`` and boto3's chain.

        ``identity`` says who the clients act as (:func:`ddblake.aws.roles.build_role_clients`), so
        that a denied or missing table names the account, the principal and the role used.
        """
        if dynamodb is None or streams is None:
            built = build_dynamodb_clients(endpoint_url)
            dynamodb = dynamodb or built.dynamodb
            streams = streams or built.streams
        self.table = table
        self.dynamodb = dynamodb
        self.streams = streams
        self.identity = identity or (lambda: Identity())

    @property
    def where(self) -> str:
        """The endpoint or region the table is read from (for messages)."""
        return describe_client(self.dynamodb)

    def _fail(self, e: Exception, action: str) -> DdblakeError:
        client = self.dynamodb if action == "DescribeTable" else self.streams
        message = str(e.response.get("Error", {}).get("Message", "")) if isinstance(e, ClientError) else ""
        if error_code(e) in ACCESS_DENIED_CODES or "not authorized" in message.lower():
            return explain_access_error(
                e, action=action, table=self.table, client=client, identity=self.identity
            )
        return translate_error(e, action=action, table=self.table, client=client)

    def table_stream(self) -> TableStream:
        """The table's stream settings.

        Raises:
            NotFoundError: no such table at this endpoint/region.
        """
        try:
            table = self.dynamodb.describe_table(TableName=self.table)["Table"]
        except (ClientError, BotoCoreError) as e:
            if error_code(e) == "ResourceNotFoundException":
                # names the account, principal and role used, and --assume-role for another account's table
                raise explain_access_error(
                    e, action="DescribeTable", table=self.table, client=self.dynamodb, identity=self.identity
                ) from e
            raise self._fail(e, "DescribeTable") from e
        spec = table.get("StreamSpecification")
        return TableStream(
            arn=table.get("LatestStreamArn"),
            enabled=bool(spec and spec.get("StreamEnabled")),
            view_type=spec.get("StreamViewType") if spec else None,
        )

    def shards(self, stream_arn: str) -> list[Shard]:
        """Every shard of the stream (DescribeStream, all pages).

        Raises:
            NotFoundError: the stream no longer exists.
        """
        shards: list[Shard] = []
        start: str | None = None
        while True:
            try:
                if start is None:
                    page = self.streams.describe_stream(StreamArn=stream_arn)
                else:
                    page = self.streams.describe_stream(StreamArn=stream_arn, ExclusiveStartShardId=start)
            except (ClientError, BotoCoreError) as e:
                if error_code(e) == "ResourceNotFoundException":
                    raise NotFoundError(
                        f"stream {stream_arn} of table {self.table!r} not found at {self.where}"
                    ) from e
                raise self._fail(e, "DescribeStream") from e
            description = page["StreamDescription"]
            shards.extend(Shard.from_api(s) for s in description.get("Shards", []))
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    def newest_stream(self) -> str | None:
        """The newest stream ListStreams names for the table (all pages; by ``StreamLabel``, its
        creation time), or None when it names none.

        Raises:
            TransientError: ListStreams failed for now.
            TerminalError: ListStreams is denied (the message names the permission to grant).
        """
        newest: tuple[str, str] | None = None  # (label, ARN)
        start: str | None = None
        while True:
            try:
                if start is None:
                    page = self.streams.list_streams(TableName=self.table)
                else:
                    page = self.streams.list_streams(TableName=self.table, ExclusiveStartStreamArn=start)
            except (ClientError, BotoCoreError) as e:
                raise self._fail(e, "ListStreams") from e
            for listed in page.get("Streams", []):
                arn = listed.get("StreamArn")
                if not arn or listed.get("TableName", self.table) != self.table:
                    continue
                label = listed.get("StreamLabel") or arn.rsplit("/", 1)[-1]
                if newest is None or label > newest[0]:
                    newest = (label, arn)
            start = page.get("LastEvaluatedStreamArn")
            if not start:
                return None if newest is None else newest[1]

    def shard_iterator(
        self, stream_arn: str, shard_id: str, after_seq: str | None, *, at_seq: str | None = None
    ) -> str:
        """An iterator after ``after_seq``; else at ``at_seq``; else at the shard's oldest record.

        ``at_seq`` (``AT_SEQUENCE_NUMBER``) is for a shard known but never read: at its starting
        sequence number, so records trimmed since are an error, where ``TRIM_HORIZON`` would
        silently start at the oldest record left.

        Raises:
            DataTrimmed: the position is older than the stream keeps.
            NotFoundError: the shard is gone.
        """
        try:
            if after_seq is not None:
                start: dict[str, Any] = {
                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                    "SequenceNumber": after_seq,
                }
            elif at_seq is not None:
                start = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": at_seq}
            else:
                start = {"ShardIteratorType": "TRIM_HORIZON"}
            answer = self.streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, **start)
        except (ClientError, BotoCoreError) as e:
            code = error_code(e)
            if code == "TrimmedDataAccessException":
                where = f"after {after_seq}" if after_seq is not None else f"from {at_seq}"
                raise DataTrimmed(f"shard {shard_id}: records {where} were trimmed") from e
            if code == "ResourceNotFoundException":
                raise NotFoundError(f"shard {shard_id} of stream {stream_arn} not found") from e
            raise self._fail(e, "GetShardIterator") from e
        iterator = answer.get("ShardIterator")
        if not iterator:
            raise NotFoundError(f"shard {shard_id} of stream {stream_arn} gave no iterator")
        return iterator

    def get_records(self, iterator: str, limit: int) -> RecordBatch:
        """One GetRecords call.

        Raises:
            IteratorExpired: the iterator is too old.
            DataTrimmed: the iterator points at trimmed records.
            ShardGone: the iterator's shard, or its stream, no longer exists.
        """
        try:
            answer = self.streams.get_records(ShardIterator=iterator, Limit=limit)
        except (ClientError, BotoCoreError) as e:
            code = error_code(e)
            if code == "ExpiredIteratorException":
                raise IteratorExpired("shard iterator expired") from e
            if code == "TrimmedDataAccessException":
                raise DataTrimmed("records were trimmed") from e
            if code == "ResourceNotFoundException":  # not the table: GetRecords names no table
                raise ShardGone(
                    f"the shard this iterator of table {self.table!r} reads, or its stream, no longer "
                    f"exists at {describe_client(self.streams)} (GetRecords: ResourceNotFoundException): "
                    "trimmed after 24 hours, or the stream removed 24 hours after its table was deleted"
                ) from e
            raise self._fail(e, "GetRecords") from e
        return RecordBatch(records=answer.get("Records", []), next_iterator=answer.get("NextShardIterator"))
