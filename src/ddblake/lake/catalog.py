"""The Iceberg catalog of a lake: SQLite beside a local lake, the AWS Glue Data Catalog in AWS.

Configuration follows the project's precedence — argument, environment, default — and names the
key and where it looked when something is missing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchNamespaceError

from ddblake import settings
from ddblake.errors import ConfigError, DdblakeError, TerminalError, TransientError
from ddblake.lake.storage import Storage, s3_endpoint_from_env
from ddblake.names import DEFAULT_NAMESPACE
from ddblake.settings import aws_region

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

CatalogKind = Literal["sql", "glue"]


@dataclass(frozen=True)
class LakeConfig:
    """Where a lake lives and which catalog tracks its tables."""

    lake: str
    catalog: CatalogKind
    namespace: str
    catalog_uri: str | None
    s3_endpoint_url: str | None

    @classmethod
    def build(
        cls,
        *,
        lake: str | None,
        catalog: str | None = None,
        namespace: str | None = None,
        catalog_uri: str | None = None,
    ) -> LakeConfig:
        """Argument, then ``DDBLAKE_*`` environment, then default.

        Raises:
            ConfigError: a value is missing or not one of the allowed ones.
        """
        lake = settings.required("lake", "--lake DIR|s3://bucket/prefix", lake)
        if lake[:5].lower() == "s3://":  # S3://bucket: a scheme is any case, ddblake's checks are s3://
            lake = "s3://" + lake[5:]
        uri = settings.optional("catalog_uri", None, catalog_uri or None, str)
        chosen, source = settings.sourced("catalog", "--catalog", catalog or None, str)
        kind = (chosen or default_catalog(lake, uri)).lower()
        if kind not in ("sql", "glue"):  # a URI given here by mistake: shown without its password
            raise ConfigError(
                f"catalog {shown_catalog_uri(chosen or kind)!r} (from {source}) must be 'sql' or 'glue'; "
                "a URI goes in catalog_uri (DDBLAKE_CATALOG_URI)"
            )
        if kind == "sql" and lake.startswith("s3://") and not uri:
            raise ConfigError(
                f"lake {lake} is on S3 but the catalog is SQLite: use --catalog glue "
                "(or DDBLAKE_CATALOG=glue), or give a SQLite catalog with DDBLAKE_CATALOG_URI=sqlite:////path/catalog.db"
            )
        return cls(
            lake=lake,
            catalog="glue" if kind == "glue" else "sql",
            namespace=_namespace(namespace),
            catalog_uri=uri,
            s3_endpoint_url=s3_endpoint_from_env(),
        )

    @property
    def own_catalog(self) -> bool:
        """Whether the catalog is the lake's own SQLite ``<lake>/catalog.db`` (no other lake shares it)."""
        return self.catalog == "sql" and not self.catalog_uri

    def storage(self) -> Storage:
        """The lake's storage root."""
        return Storage.from_uri(self.lake, s3_endpoint_url=self.s3_endpoint_url)


def default_catalog(lake: str, catalog_uri: str | None) -> CatalogKind:
    """The catalog when neither ``--catalog`` nor ``DDBLAKE_CATALOG`` names one: the AWS Glue Data
    Catalog for an ``s3://`` lake (a SQLite file cannot live on S3, and Glue is what Athena reads),
    unless ``DDBLAKE_CATALOG_URI`` gives a SQL catalog; SQLite at ``<lake>/catalog.db`` otherwise.
    """
    return "glue" if lake.startswith("s3://") and not catalog_uri else "sql"


NAMESPACE_PATTERN = re.compile(r"[a-z0-9_]{1,255}")
"""What a namespace may be: a Glue database name that Glue keeps as it is (Glue lower-cases
database names, so ``MyNs`` would come back from it as ``myns``; Athena wants them lower-case
too), which the SQL catalog takes as well (a ``.`` would split it into a nested namespace). The
CDK app's ``namespace`` setting has the same rule (infra/ddblake_infra/config_sections.py)."""


CATALOG_FILE: Final = "catalog.db"
"""A local lake's own SQLite catalog, at the lake's root."""


def _namespace(given: str | None) -> str:
    """``--namespace``, then ``DDBLAKE_NAMESPACE``, then ``ddb``.

    Raises:
        ConfigError: not lower-case letters, digits and ``_`` (1 to 255); names where it came from.
    """
    found, where = settings.sourced("namespace", "--namespace", given or None, str)
    namespace = found or DEFAULT_NAMESPACE
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        hint = f" (e.g. {namespace.lower()!r})" if NAMESPACE_PATTERN.fullmatch(namespace.lower()) else ""
        raise ConfigError(
            f"namespace {namespace!r} (from {where}) must be 1 to 255 lower-case letters, digits and "
            f"'_', as a Glue database name and the SQL catalog both take it{hint}; the default is "
            f"{DEFAULT_NAMESPACE!r}"
        )
    return namespace


def _s3_properties(config: LakeConfig) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if config.catalog == "sql" and not config.lake.startswith("s3://"):
        return props  # a local lake needs no AWS settings (and must work with none, or broken ones)
    region = aws_region()
    if region:
        props["s3.region"] = region
    if config.s3_endpoint_url:
        props["s3.endpoint"] = config.s3_endpoint_url
    return props


def open_catalog(
    config: LakeConfig, storage: Storage, *, glue_client: GlueClient | None = None, create: bool = True
) -> Catalog:
    """Open the catalog and make sure the namespace exists (``create=False``: only open it).

    The reading commands (query, dump, status) pass ``create=False``: they must work for a role
    that may read the Glue Data Catalog but not create databases in it, and a namespace that does
    not exist holds no tables (:func:`table_names`), nor do they create a SQLite catalog file
    that ``DDBLAKE_CATALOG_URI`` names and that is not there (a typo).

    Two processes opening a new lake's SQLite catalog at the same instant race on creating its
    tables and the namespace row; the loser sees the database error, retries, and finds what the
    winner created.

    Raises:
        ConfigError: a SQLite catalog file to read that is not there, a URI that is no URL, or one
            whose database driver is not installed; names the setting, never the URI's password.
    """
    if config.catalog_uri:
        parsed_uri(config.catalog_uri)  # a typo in it (a port of letters) said in one line
        if not create:
            _refuse_missing_sqlite(config.catalog_uri)
    for attempt in range(5):
        try:
            return _open(config, storage, glue_client, create)
        except ImportError as e:  # the URI's DB driver (psycopg, MySQLdb) is not installed
            if not config.catalog_uri:
                raise
            scheme = config.catalog_uri.split(":", 1)[0]  # not the rest: it may hold a password
            raise ConfigError(
                f"catalog URI {scheme}:... of {settings.elsewhere('catalog_uri')} needs the "
                f"Python module {e.name or str(e)!r}, which is not installed: install it into ddblake's "
                "environment, or give a URI of an installed driver (sqlite:////path/catalog.db)"
            ) from None
        except Exception as e:  # sqlalchemy's OperationalError/IntegrityError: no public base here
            explained = catalog_error(e, config, storage)
            if explained is None:
                raise
            if attempt == 4 or type(e).__module__.split(".")[0] != "sqlalchemy":
                raise explained from e
            log.debug("catalog of %s busy (%s), retrying", storage.uri(), type(e).__name__)
    raise AssertionError("unreachable")  # pragma: no cover


def parsed_uri(uri: str) -> URL:
    """A catalog URI as SQLAlchemy reads it.

    Raises:
        ConfigError: not a URL SQLAlchemy takes (a port that is not a number, say); names the
            setting and shows the URI without its password.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(uri)
    except (ArgumentError, ValueError) as e:  # SQLAlchemy's words are not shown: they may quote it
        port = " (its port is not a number)" if "int()" in str(e) else ""
        raise ConfigError(
            f"catalog_uri {shown_catalog_uri(uri)!r} ({settings.elsewhere('catalog_uri')}) is not a "
            f"database URL{port}: give one like sqlite:////path/catalog.db or "
            "postgresql://user:password@host:5432/database"
        ) from None


def missing_sqlite_file(uri: str) -> str | None:
    """The file a SQLite catalog URI names when it is not there (SQLite would create it); else None.

    Raises:
        ConfigError: the URI is not a URL (:func:`parsed_uri`).
    """
    url = parsed_uri(uri)
    path = url.database or ""
    if url.get_backend_name() != "sqlite" or path in ("", ":memory:") or path.startswith("file:"):
        return None
    return None if Path(path).exists() else path


def _refuse_missing_sqlite(uri: str) -> None:
    """Refuse, for a command that only reads, a SQLite catalog URI whose file is not there (a typo):
    SQLite would create it, empty, and the lake's tables would read as never applied.

    Raises:
        ConfigError: names the setting and the missing file.
    """
    if (path := missing_sqlite_file(uri)) is not None:
        raise ConfigError(
            f"the SQLite catalog {path} of {settings.elsewhere('catalog_uri')} does not exist; check the "
            "URI (sqlite:////absolute/path/catalog.db), or run apply or sync first, which create it"
        )


_SECRET_QUERY: Final = re.compile(r"(?i)([?&][^=&]*(?:password|passwd|pwd|secret|token)[^=&]*=)[^&]*")


def shown_catalog_uri(uri: str) -> str:
    """A catalog URI as messages and logs may show it: a SQL URL's password masked.

    ``DDBLAKE_CATALOG_URI`` may be a SQLAlchemy URL with credentials
    (``postgresql://user:pw@host/db``); it is shown as SQLAlchemy renders it with the password
    hidden (``user:***@``), and a password given as a query parameter is masked too. Only a URI
    without ``@`` (a SQLite path, say) is shown as it is; one SQLAlchemy cannot parse, or whose
    host part holds more than one ``@`` (an unescaped ``@`` in the password), keeps only its scheme
    and what follows the last ``@``.
    """
    scheme, sep, rest = uri.partition("://")
    authority = rest.split("/", 1)[0] if sep else ""
    if authority.count("@") > 1:  # a password holding an unescaped @: SQLAlchemy ends it at the first
        uri = f"{scheme}://***@{authority.rsplit('@', 1)[1]}{rest[len(authority) :]}"
    elif "@" in uri:
        from sqlalchemy.engine import make_url

        try:
            uri = make_url(uri).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: hide all before the host
            scheme, sep, _ = uri.partition("://")
            uri = f"{scheme}://***@{uri.rsplit('@', 1)[1]}" if sep else "***@" + uri.rsplit("@", 1)[1]
    return _SECRET_QUERY.sub(r"\1***", uri)


GLUE_GRANTS: Final = "glue:GetDatabase, glue:GetTable, glue:GetTables, glue:CreateTable and glue:UpdateTable"
"""What ddblake calls on a Glue database (glue:CreateDatabase too where it creates the database)."""


def _glue_error(
    e: BaseException, operation: str, lake: str, database: str | None, identifier: str | None
) -> DdblakeError:
    """A Glue call's botocore error naming the table or database; access denied says what to grant
    on which Glue resources (not the DynamoDB advice of :func:`ddblake.aws.clients.translate_error`)."""
    from botocore.exceptions import ClientError

    from ddblake.aws.clients import (
        ACCESS_DENIED_CODES,
        CREDENTIAL_CODES,
        GLUE_TRANSIENT_CODES,
        arns_in,
        error_code,
        translate_error,
    )

    code = error_code(e)
    message = str(e.response.get("Error", {}).get("Message", "")) if isinstance(e, ClientError) else ""
    principal, resource = arns_in(message)
    glue_arn = resource if resource and resource[0].split(":")[2:3] == ["glue"] else None
    if identifier is None and glue_arn and glue_arn[3].startswith("table/"):
        identifier = glue_arn[3].removeprefix("table/").replace("/", ".", 1)
    if database is None and glue_arn and glue_arn[3].startswith(("table/", "database/")):
        database = glue_arn[3].split("/")[1]
    subject = f" on table {identifier}" if identifier else ""
    if not lake and database:
        lake = f" (database {database!r})"
    action = f"Glue {operation}{subject}{lake}"
    if code in GLUE_TRANSIENT_CODES:  # a time-out, a concurrent change: the next attempt may pass
        return TransientError(f"{action} failed: {code} {message[:300]}".rstrip())
    denied = code in ACCESS_DENIED_CODES or "not authorized" in message.lower()
    if code in CREDENTIAL_CODES or not denied:
        return translate_error(e, action=action)
    partition = glue_arn[0].split(":")[1] if glue_arn else "aws"
    try:
        here = aws_region()
    except ConfigError:  # a profile that does not exist: the error being explained matters more
        here = None
    region = (glue_arn[1] if glue_arn else None) or here or "<region>"
    account = (glue_arn[2] if glue_arn else None) or (principal[1] if principal else None) or "<account>"
    db = database or "<database>"
    base = f"arn:{partition}:glue:{region}:{account}"
    who = (
        f"{principal[0]} (the principal that made the call)"
        if principal
        else "the role or user this process runs as"
    )
    said = f" (AWS: {message[:300]})" if message else ""
    return TerminalError(
        f"access denied calling {action}: grant {who} {GLUE_GRANTS} (and glue:CreateDatabase if ddblake "
        f"is to create the database) on {base}:catalog, {base}:database/{db} and {base}:table/{db}/*; "
        "when the Data Catalog is another account's, its catalog resource policy (or Lake Formation) "
        f"must grant them too{said}"
    )


def catalog_error(
    e: BaseException,
    config: LakeConfig | None = None,
    storage: Storage | None = None,
    *,
    identifier: str | None = None,
) -> DdblakeError | None:
    """A catalog's library error (botocore from Glue, SQLAlchemy from SQLite) as a ddblake error
    saying what to do, naming the lake and catalog when given; None for any other exception.

    ``identifier``: the Iceberg table (``namespace.table``) the call was about, if known; a Glue
    error names it, else the table its AWS message names, and always the Glue database.
    """
    root = type(e).__module__.split(".")[0]
    lake = (
        f" (catalog of lake {storage.shown()}, database {config.namespace!r})" if config and storage else ""
    )
    if root == "botocore":
        from botocore.exceptions import ClientError

        from ddblake.aws.clients import translate_error

        operation = getattr(e, "operation_name", None)
        message = str(e.response.get("Error", {}).get("Message", "")) if isinstance(e, ClientError) else ""
        if (config is not None and config.catalog == "glue") or "glue:" in message:
            database = config.namespace if config else None
            return _glue_error(e, operation or "call", lake, database, identifier)
        action = f"Glue {operation or 'call'}{lake}" if lake else (operation or "an AWS call")
        return translate_error(e, action=action)
    if root == "sqlalchemy":
        given = shown_catalog_uri(config.catalog_uri) if config and config.catalog_uri else None
        where = given or (storage.shown(CATALOG_FILE) if storage else "")
        catalog = f"the lake's SQL catalog {where}".rstrip()
        first = (str(e).splitlines() or [""])[0][:200]
        if "database is locked" in first or "database is busy" in first:
            return TransientError(f"{catalog} is busy: {first}")
        metadata = (
            f" (the tables' Iceberg metadata under {storage.shown('warehouse')} is untouched)"
            if storage
            else ""
        )
        return TerminalError(
            f"{catalog} cannot be used ({type(e).__name__}: {first}); if another process holds it, retry; "
            f"if the file is damaged, restore it from a backup{metadata}"
        )
    return None


def _sqlite_uri(storage: Storage) -> str:
    """The SQLAlchemy URL of ``<lake>/catalog.db``, its path quoted (SQLAlchemy decodes ``%XX`` in
    a URL and cuts it at ``?``).

    Raises:
        ConfigError: the catalog is not there but where an unquoted URL put it (an older ddblake).
    """
    from sqlalchemy.engine import URL, make_url

    path = f"{storage.root}/{CATALOG_FILE}"
    unquoted = make_url(f"sqlite:///{path}").database  # what ddblake used to give SQLAlchemy
    if unquoted and unquoted != path and Path(unquoted).exists() and not Path(path).exists():
        raise ConfigError(
            f"the lake's SQLite catalog is at {unquoted}, where an older ddblake put it for this lake "
            f"path, not at {path}: move it there (or point DDBLAKE_CATALOG_URI at it)"
        )
    return URL.create("sqlite", database=path).render_as_string(hide_password=False)


def _open(config: LakeConfig, storage: Storage, glue_client: GlueClient | None, create: bool) -> Catalog:
    from ddblake.lake import namelookup, nulllists

    nulllists.install()  # null lists of maps written and read as null, not [] (pyiceberg #3833)
    namelookup.install()  # columns matched to the name mapping by an index, not a search each
    warehouse = storage.uri("warehouse")
    catalog: Catalog
    if config.catalog == "sql":
        from pyiceberg.catalog.sql import SqlCatalog

        uri = config.catalog_uri or _sqlite_uri(storage)
        if not config.catalog_uri and create:
            # SQLite makes catalog.db but not its folder: a new lake's root, which Storage leaves
            # to the first write (a read-only open of a lake that is not there must not make it).
            storage.ensure_root()
        catalog = SqlCatalog("ddblake", uri=uri, warehouse=warehouse, **_s3_properties(config))
    else:
        from pyiceberg.catalog.glue import GlueCatalog

        from ddblake.lake import gluecolumns

        gluecolumns.install()  # names and types Glue refuses, given to it in a form it takes
        props = _s3_properties(config)
        if glue_client is None and props.get("s3.region"):
            props["glue.region"] = props["s3.region"]  # botocore alone ignores AWS_REGION
        catalog = GlueCatalog("ddblake", client=glue_client, warehouse=warehouse, **props)
    if create:
        _ensure_namespace(catalog, config.namespace)
    else:  # one read now, so that missing credentials or access are told here, naming the catalog
        with contextlib.suppress(NoSuchNamespaceError):
            catalog.load_namespace_properties(config.namespace)
    return catalog


def _ensure_namespace(catalog: Catalog, namespace: str) -> None:
    """Create the namespace (Glue database) when it is not there, and only then: a role granted
    what ddblake's advice names, without glue:CreateDatabase (the stack made the database), must not
    be refused for a database that exists (Glue checks the grant before the name)."""
    with contextlib.suppress(NoSuchNamespaceError):
        catalog.load_namespace_properties(namespace)
        return
    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass  # another process made it meanwhile
    except Exception as e:
        from ddblake.aws.clients import ACCESS_DENIED_CODES, error_code  # boto3: only on this path

        if error_code(e) not in ACCESS_DENIED_CODES and "not authorized" not in str(e).lower():
            raise
        try:  # made meanwhile by another process or an administrator: no grant needed then
            catalog.load_namespace_properties(namespace)
        except NoSuchNamespaceError:
            raise e from None


def table_names(catalog: Catalog, namespace: str) -> list[tuple[str, ...]]:
    """The namespace's table identifiers; none when the namespace does not exist (yet)."""
    try:
        return list(catalog.list_tables(namespace))
    except NoSuchNamespaceError:
        return []


def metadata_location(catalog: Catalog, identifier: tuple[str, ...]) -> str | None:
    """Where the catalog says a table's metadata file is, found without reading that file (which may
    be what cannot be read); None when the catalog cannot tell."""
    from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    namespace, name = ".".join(identifier[:-1]), identifier[-1]
    try:
        if isinstance(catalog, SqlCatalog):
            with Session(catalog.engine) as session:
                found = session.scalar(
                    select(IcebergTables.metadata_location).where(
                        IcebergTables.catalog_name == catalog.name,
                        IcebergTables.table_namespace == namespace,
                        IcebergTables.table_name == name,
                    )
                )
            return str(found) if found else None
        glue = getattr(catalog, "glue", None)  # a GlueCatalog's client
        if glue is not None:
            table = glue.get_table(DatabaseName=namespace, Name=name)["Table"]
            return str(table.get("Parameters", {}).get("metadata_location") or "") or None
    except Exception:  # noqa: BLE001 - not known: the caller takes the table as possibly its own
        return None
    return None


def catalog_shown(catalog: Catalog, storage: Storage) -> str:
    """The catalog as messages name it: the lake's catalog.db, a ``DDBLAKE_CATALOG_URI`` without its
    password, or the Glue Data Catalog."""
    from pyiceberg.catalog.sql import SqlCatalog

    if not isinstance(catalog, SqlCatalog):
        return "the Glue Data Catalog"
    if own_catalog_db(catalog, storage, memory=True):  # an in-memory one: no catalog.db (yet)
        return "the lake's catalog.db"
    return shown_catalog_uri(str(catalog.properties.get("uri", "")))


def own_catalog_db(catalog: Catalog, storage: Storage, *, memory: bool = False) -> bool:
    """Whether ``catalog`` is the lake's own ``<lake>/catalog.db`` (or, ``memory``, an in-memory one)."""
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.engine import make_url

    ours = (f"{storage.root}/{CATALOG_FILE}", *([":memory:"] if memory else []))
    with contextlib.suppress(Exception):  # not a URL: not the lake's own
        return isinstance(catalog, SqlCatalog) and make_url(str(catalog.properties["uri"])).database in ours
    return False
