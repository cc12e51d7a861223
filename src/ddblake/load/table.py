"""DescribeTable and Scan pages for one table, keeping DynamoDB's JSON exactly as it was sent.

botocore parses every Scan response twice over: ``json.loads``, then a walk of the whole item tree
against the service model (decoding base64 binaries into ``bytes``). For a load that walk is most of
the CPU, and it changes the data: the raw log wants DynamoDB JSON *as sent* (binary as base64 text).
So a ``before-parse`` handler on the client stashes the response body of a successful Scan, made
by this module in this thread, and hands botocore an empty document to parse; the reader then
decodes the body with ``json.loads`` alone. Error responses, other operations, and other users of the
same client are untouched. Where the hook does not fire (a ``botocore.stub.Stubber``, an older
botocore), the parsed response is converted back to DynamoDB JSON instead — same result, slower.
"""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from ddblake.aws.clients import describe_client
from ddblake.aws.roles import Identity, explain_access_error
from ddblake.aws.setup_errors import refused_parameters
from ddblake.errors import DdblakeError, TerminalError
from ddblake.load.jsontext import members_with_text
from ddblake.load.rows import to_call_item, to_wire_item
from ddblake.load.state import SCAN_STATE, state_path

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_RAW_KEY: Final = "ddblakeRawBody"
_HOOK_ID: Final = "ddblake-load-raw-scan"
_ITEMS: Final = frozenset({"Items"})
_raw_mode = threading.local()


def _keep_raw_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parse`` handler: keep a Scan's body for :class:`TableReader` (see module doc)."""
    if not getattr(_raw_mode, "on", False):
        return
    body = response_dict.get("body")
    if int(response_dict.get("status_code") or 500) < 300 and isinstance(body, bytes):
        customized_response_dict[_RAW_KEY] = body
        response_dict["body"] = b"{}"


@dataclass(frozen=True)
class TableInfo:
    """What a load needs from DescribeTable.

    Attributes:
        name: the table name.
        arn: the table ARN (names the owning account and region).
        key_names: the KeySchema attribute names, hash key first.
        item_count: DescribeTable's ItemCount (refreshed by AWS about every 6 hours).
        size_bytes: TableSizeBytes (same caveat).
        provisioned_rcu: provisioned read capacity; 0 for on-demand tables.
        on_demand: billing mode PAY_PER_REQUEST.
        max_read_units: an on-demand table's ``OnDemandThroughput.MaxReadRequestUnits``; 0 when
            it has none (DescribeTable leaves it out, or says -1).
        server_time_us: AWS's time when it answered, from the response's ``Date`` header (to the
            second, rounded down); None without one. A Scan load's start is checked against it
            (:func:`clock_ahead_us`): stream times are AWS's clock.
    """

    name: str
    arn: str
    key_names: tuple[str, ...]
    item_count: int
    size_bytes: int
    provisioned_rcu: float
    on_demand: bool
    max_read_units: float = 0.0
    server_time_us: int | None = None

    @property
    def avg_item_bytes(self) -> float:
        """Average item size, 1 KB when unknown."""
        return self.size_bytes / self.item_count if self.item_count > 0 and self.size_bytes > 0 else 1024.0


@dataclass(frozen=True)
class Page:
    """One Scan page: items in DynamoDB JSON, where to continue, and the capacity it consumed.

    Attributes:
        items: the items, decoded.
        last_key: ``LastEvaluatedKey`` in DynamoDB JSON (binary as base64 text, as the load state
            keeps it); None on the segment's last page.
        consumed: capacity units the page consumed.
        texts: each item's JSON text exactly as DynamoDB sent it, when the raw body was available.
    """

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None
    consumed: float
    texts: list[str] | None = None


CLOCK_AHEAD_ALLOWED_US = 30_000_000
"""How far this machine's clock may run ahead of AWS's before a Scan load's start is corrected: the
version rule (:func:`ddblake.load.rows.version_time_from_us`) already puts the rows at least a
minute before the start, so up to half of that is left as it is."""


def clock_ahead_us(server_us: int | None, local_us: int | None) -> int:
    """How far this machine's clock (``local_us``, read when AWS's answer arrived) is ahead of AWS's
    (``server_us``, that answer's Date), when that is more than :data:`CLOCK_AHEAD_ALLOWED_US`;
    else 0.

    A Scan load's start is this machine's time, but the stream's times, which its rows must rank
    below, are AWS's: a clock minutes ahead put the rows above changes made after the load (which
    they then overwrote), and reconcile removed items created after the Scan passed their key. The
    Date is rounded down to the second and was made before the answer arrived, so the figure is
    never less than the real lead: the start moves back by at least as much as needed.
    """
    if server_us is None or local_us is None:
        return 0
    ahead = local_us - server_us
    return ahead if ahead > CLOCK_AHEAD_ALLOWED_US else 0


def _server_time_us(response: Any) -> int | None:
    """The ``Date`` header of a response as epoch µs (None: absent or not an HTTP date)."""
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    text = headers.get("date")
    if not isinstance(text, str):
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return int(when.timestamp()) * 1_000_000


class TableReader:
    """DescribeTable and Scan for one table, errors explained with accounts and roles.

    Args:
        table: the table name.
        client: a DynamoDB client (thread-safe: one is shared by every worker).
        identity: gives the caller identity, asked only to explain an access error.
    """

    def __init__(
        self, table: str, client: DynamoDBClient, identity: Callable[[], Identity] | None = None
    ) -> None:
        """Use ``client``; install the raw-body hook on it (once per client)."""
        self.table = table
        self.client = client
        self._identity = identity or Identity
        client.meta.events.register("before-parse.dynamodb.Scan", _keep_raw_body, unique_id=_HOOK_ID)

    @property
    def where(self) -> str:
        """The endpoint or region calls go to (for messages)."""
        return describe_client(self.client)

    def fail(self, e: Exception, action: str) -> DdblakeError:
        """The ddblake error for a failed call (access errors name account, principal and role)."""
        return explain_access_error(
            e, action=action, table=self.table, client=self.client, identity=self._identity
        )

    def describe(self) -> TableInfo:
        """DescribeTable, reduced to what a load needs.

        Raises:
            NotFoundError, TerminalError, TransientError: see :meth:`fail`.
        """
        try:
            response = self.client.describe_table(TableName=self.table)
        except (ClientError, BotoCoreError) as e:
            raise self.fail(e, "DescribeTable") from e
        table = response["Table"]
        keys = sorted(table.get("KeySchema", []), key=lambda k: k["KeyType"] != "HASH")
        if not keys:
            raise TerminalError(f"table {self.table!r} at {self.where}: DescribeTable shows no key schema")
        billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "")
        rcu = float((table.get("ProvisionedThroughput") or {}).get("ReadCapacityUnits") or 0)
        max_read = float((table.get("OnDemandThroughput") or {}).get("MaxReadRequestUnits") or 0)
        return TableInfo(
            name=self.table,
            arn=str(table.get("TableArn", "")),
            key_names=tuple(k["AttributeName"] for k in keys),
            item_count=int(table.get("ItemCount") or 0),
            size_bytes=int(table.get("TableSizeBytes") or 0),
            provisioned_rcu=0.0 if billing == "PAY_PER_REQUEST" else rcu,
            on_demand=billing == "PAY_PER_REQUEST" or rcu == 0,
            max_read_units=max(0.0, max_read),  # -1: no maximum
            server_time_us=_server_time_us(response),
        )

    def scan_page(
        self,
        *,
        segment: int,
        total_segments: int,
        start_key: dict[str, Any] | None,
        consistent: bool,
        limit: int | None = None,
    ) -> Page:
        """One Scan call of one segment.

        Raises:
            TransientError: throttled or unreachable after botocore's retries (back off, retry).
            NotFoundError, TerminalError: see :meth:`fail`; also a ``start_key`` DynamoDB would refuse
                (the scan load's state file is damaged: the message names it, not the key).
        """
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "ConsistentRead": consistent,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if start_key:
            # Kept in wire form (binary as base64 text); botocore wants bytes (see to_call_item).
            try:
                kwargs["ExclusiveStartKey"] = to_call_item(start_key)
            except (ValueError, TypeError) as e:
                raise TerminalError(
                    f"Scan of table {self.table!r}: the saved resume key of segment {segment} holds a "
                    "binary value that is not base64; the load state is damaged"
                ) from e
        if limit:
            kwargs["Limit"] = limit
        _raw_mode.on = True
        try:
            answer: dict[str, Any] = dict(self.client.scan(**kwargs))
        except ParamValidationError as e:
            if start_key:  # the one part of the request that comes from the lake, not from ddblake
                raise TerminalError(
                    f"Scan of table {self.table!r}: the saved resume key of segment {segment} is not a "
                    f"valid DynamoDB key ({refused_parameters(e)}); the scan load's state file "
                    f"{state_path(self.table, SCAN_STATE)} in the lake is damaged: restore it, or delete "
                    "it to start the Scan load over"
                ) from e
            raise self.fail(e, "Scan") from e
        except (ClientError, BotoCoreError) as e:
            raise self.fail(e, "Scan") from e
        finally:
            _raw_mode.on = False
        raw = answer.get(_RAW_KEY)
        texts: list[str] | None = None
        if isinstance(raw, bytes):
            try:
                members = members_with_text(raw.decode("utf-8"), split=_ITEMS)
            except (ValueError, UnicodeDecodeError) as e:
                raise TerminalError(
                    f"Scan of table {self.table!r} at {self.where}: response is not JSON"
                ) from e
            answer = {name: value for name, (value, _) in members.items()}
            items, texts = members.get("Items", ([], []))
        else:
            items = [to_wire_item(item) for item in answer.get("Items") or []]
        consumed = float((answer.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
        last = answer.get("LastEvaluatedKey")
        if last is not None and raw is None:
            last = to_wire_item(last)
        return Page(items=items, last_key=last or None, consumed=consumed, texts=texts)
