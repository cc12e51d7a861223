"""``ddblake load`` (and ``sync``'s first load): wire config, clients, lake and the loaders together.

The CLI and ``sync`` call :func:`run_load`. ``sync`` passes ``started_at_us`` — a time taken
*before* it read the stream positions capture will start from — so that the load's rows rank
below every change capture will deliver (see ``ddblake.load.rows``). The start time only has to be
no later than the moment the Scan begins reading; earlier is always safe.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

from ddblake.aws.clients import DynamoClients, dynamodb_endpoint, is_aws_endpoint, resolved_dynamodb_endpoint
from ddblake.aws.roles import Identity, build_role_clients
from ddblake.errors import DdblakeError
from ddblake.lake.storage import Storage
from ddblake.load.config import LoadConfig
from ddblake.load.export import CorruptExportError
from ddblake.load.export_load import ExportLoad
from ddblake.load.export_start import (
    ExportFailedError,
    forget_request,
    pending_request,
    start_export,
    wait_export,
)
from ddblake.load.rows import now_us
from ddblake.load.scan import LoadResult, ScanLoad
from ddblake.load.state import EXPORT_REQUEST, list_loads, note_new_full_load, reload_level, state_path
from ddblake.load.table import TableReader
from ddblake.progress import NoProgress, Progress
from ddblake.signals import stop_on_signals

__all__ = ["LoadConfig", "LoadResult", "build_load_clients", "now_us", "run_load"]

log = logging.getLogger(__name__)


def build_load_clients(config: LoadConfig) -> tuple[DynamoClients, Callable[[], Identity]]:
    """DynamoDB clients for the load (with the assumed role, if any) and who they act as.

    Raises:
        TerminalError: the role cannot be assumed (names principal, role and accounts).
        ConfigError: no region or credentials.
    """
    return build_role_clients(
        config.endpoint_url, config.assume_role, external_id=config.external_id, table=config.table
    )


def run_load(
    config: LoadConfig,
    *,
    clients: DynamoClients | None = None,
    storage: Storage | None = None,
    progress: Progress | None = None,
    started_at_us: int | None = None,
    stop: threading.Event | None = None,
    identity: Callable[[], Identity] | None = None,
) -> LoadResult:
    """Load the table into the lake's raw change log: a Scan, an existing export, or a new export.

    Runs to the end, or resumes an unfinished load of the same kind (same Scan; same export).

    Args:
        config: what to load, from where, how fast.
        clients: DynamoDB clients; built from ``config`` (endpoint, assumed role) when None. Given
            clients are used as they are: no role is assumed for them (build them with
            :func:`build_load_clients` to apply ``config.assume_role``, and pass its identity too).
        storage: the lake; opened from ``config.lake`` when None.
        progress: where progress goes; a stderr line by default (``NoProgress`` for none).
        started_at_us: the load's start for the version rule (Scan loads): a time no later than the
            first Scan call, e.g. taken before ``sync`` read the stream positions. Default: now.
            Ignored when an unfinished load is resumed (its rows keep their version).
        stop: set to stop cleanly (rows read so far are written and recorded); SIGINT/SIGTERM set it.
        identity: who the clients act as (for error messages), when ``clients`` is given.

    Returns:
        What the run did.

    Raises:
        CorruptExportError: the export is incomplete or damaged; nothing was written.
        NotFoundError, TerminalError: the table, role or export cannot be used (the message names
            account, role, table or file and what to change).
        TransientError: throttling, the network or a stop interrupted the load; rerun to resume.
    """
    storage = storage or Storage.from_uri(config.lake)
    progress = progress if progress is not None else Progress(f"load {config.table}")

    supplied = clients is not None

    def fallback_identity() -> Identity:
        # Clients the caller built (sync's, a test's): ddblake assumed no role for them, whatever the
        # settings name, so an error must not claim the configured role was used.
        if supplied:
            return Identity(unapplied_role=config.assume_role)
        return Identity(role_arn=config.assume_role)

    @functools.cache
    def reader() -> TableReader:
        # Built on first use: an export loaded with --keys (or an incremental one) needs no AWS
        # client at all, so it needs no region or credentials either.
        nonlocal clients, identity
        if clients is None:
            clients, built_identity = build_load_clients(config)
            identity = identity or built_identity
        identity = identity or fallback_identity
        return TableReader(config.table, clients.dynamodb, identity)

    def identity_now() -> Identity:
        return identity() if identity is not None else fallback_identity()

    stop = stop or threading.Event()
    with stop_on_signals(stop):
        try:
            if config.kind == "scan":
                result = ScanLoad(
                    config, reader(), storage, progress=progress, started_at_us=started_at_us, stop=stop
                ).run()
            else:
                versions = export_versions(config, clients, storage)
                level = reload_level(started_at_us)
                result = _export(config, reader, storage, progress, stop, identity_now, versions, level)
        finally:  # stopped or failed: its progress line ends, so the error or log line after is whole
            progress.end_line()
    log.debug("%s", result.summary())
    return result


def export_versions(config: LoadConfig, clients: DynamoClients | None, storage: Storage | None = None) -> str:
    """How an export's rows are versioned (``ddblake.load.rows.export_version_from_us``).

    ``second`` when the DynamoDB endpoint in effect is AWS's (the given clients', else the one boto3
    resolves: ``--endpoint-url``, the standard variables, a profile's ``endpoint_url``), whose stream
    stamps changes to the second. ``minute`` for any other endpoint (DynamoDB Local stamps its
    stream to the minute, and rows versioned to the second would outrank the changes of the
    export's own minute made after it; the minute is always safe, only coarser), and for a lake
    that already holds an export load of this table versioned to the minute (by an older ddblake,
    or against such an endpoint): rows of the two rules do not order against each other, so an
    older incremental write could win over a newer full export's row.
    """
    if clients is not None:
        meta = getattr(clients.dynamodb, "meta", None)
        endpoint = str(getattr(meta, "endpoint_url", "") or "") or dynamodb_endpoint(config.endpoint_url)
    else:
        endpoint = resolved_dynamodb_endpoint(config.endpoint_url)
    if not is_aws_endpoint(endpoint):
        return "minute"
    if storage is not None:
        for state in list_loads(storage, config.table):
            if state.kind == "export" and state.options.get("versions", "minute") != "second":
                return "minute"
    return "second"


def _export(
    config: LoadConfig,
    reader: Callable[[], TableReader],
    storage: Storage,
    progress: Progress,
    stop: threading.Event,
    identity: Callable[[], Identity],
    versions: str,
    reload_level: int,
) -> LoadResult:
    keys: dict[str, tuple[str, ...]] = {}
    started: str | None = None  # the export --export-to started (or an earlier run did)

    def key_names() -> tuple[str, ...]:
        if config.keys:
            return config.keys
        if "k" not in keys:
            keys["k"] = reader().describe().key_names
        return keys["k"]

    if config.export_to:
        request = pending_request(storage, config.table, config.export_to)
        if request is None:
            note_new_full_load(storage, config.table, level=reload_level)  # before paying for an export
            info = reader().describe()
            keys["k"] = info.key_names
            request = start_export(
                reader().client,
                table=config.table,
                table_arn=info.arn,
                destination=config.export_to,
                storage=storage,
                identity=identity,
                bucket_owner=config.export_bucket_owner,
            )
        else:
            log.info(
                "load %s: waiting for export %s started by an earlier run", config.table, request.export_id
            )
        try:
            wait_export(
                reader().client,
                request,
                table=config.table,
                poll_seconds=config.export_poll_seconds,
                progress=progress,
                identity=identity,
                stop=stop,
            )
        except ExportFailedError:
            _forget_failed(storage, config.table, request.export_id)
            raise
        folder = request.folder
        started = request.export_id
    else:
        folder = config.from_export or ""
    loader = ExportLoad(
        config.table,
        folder,
        storage,
        key_names=key_names,
        buffer_bytes=config.buffer_bytes,
        progress=progress,
        stop=stop,
        workers=config.workers,
        versions=versions,
        keys=config.keys,
        reload_level=None if config.export_to else reload_level,  # --export-to said so before starting
    )
    try:
        result = loader.run()
    except CorruptExportError:
        if started is not None:  # it will never load: the next run must start a new export
            _forget_failed(storage, config.table, started)
        raise
    if config.export_to:
        forget_request(storage, config.table)
    return result


def _forget_failed(storage: Storage, table: str, export_id: str) -> None:
    """Forget a FAILED export's request, so the next run starts a new export instead of polling it."""
    try:
        forget_request(storage, table)
    except DdblakeError as e:  # the export's own failure is the error to report
        log.warning(
            "load %s: could not forget failed export %s (%s); delete %s before the next run",
            table,
            export_id,
            e,
            storage.shown(state_path(table, EXPORT_REQUEST)),
        )


__all__ += ["NoProgress", "Progress"]


def run_load_beside(
    config: LoadConfig,
    clients: DynamoClients | None,
    storage: Storage,
    started_at_us: int,
    *,
    identity: Callable[[], Identity] | None = None,
    stop: threading.Event | None = None,
) -> LoadResult:
    """:func:`run_load` for a caller holding clients of its own (``sync``, a re-bootstrap).

    Clients given with ``identity`` were built with ``config``'s role
    (:func:`ddblake.aws.roles.build_role_clients`, as sync's capture does) and are used as they are.
    Otherwise they carry no role, and a load configured with one (``--assume-role``,
    ``DDBLAKE_ASSUME_ROLE``) makes its calls with the role's own clients, as ``ddblake load`` does,
    and its errors name the role.
    """
    if clients is None or identity is None:
        clients, identity = build_load_clients(config) if config.assume_role else (clients, None)
    return run_load(
        config, clients=clients, identity=identity, storage=storage, started_at_us=started_at_us, stop=stop
    )
