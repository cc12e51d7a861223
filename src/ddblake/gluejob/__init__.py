"""ddblake's full load as an AWS Glue (Spark) job, for tables too big for one machine.

It writes the *same* raw change log ``ddblake load`` writes — gzip JSON Lines of load rows under
``<lake>/raw/<table>/YYYY/MM/DD/HH/``, with the same version rule and deterministic event IDs (see
``ddblake.load.rows``) — so ``ddblake apply`` continues from it as from any load. Two sources:

* ``--SOURCE export-files`` (lossless; the default): an existing export folder
  (``--EXPORT_PATH s3://.../AWSDynamoDB/<export id>/``, e.g. made by ``ddblake load --export-to`` or
  by the table owner). Data files are found relative to that folder as ``ddblake load
  --from-export`` finds them (``manifest.data_file_key``), so a copied export loads too. Every data file
  is checked against the manifests first (MD5, item counts) and each of its lines converted
  without being written (an item lacking a ``--KEYS`` attribute, a line without ``Metadata``): one
  problem and the job writes nothing. Then each Spark task converts one data file's lines.
* ``--SOURCE connector``: Glue's DynamoDB export connector (``dynamodb.export`` = ``ddb``) reads the
  table through the cross-account role ``--ROLE_ARN`` (``dynamodb.sts.roleArn``). Spark infers one
  struct type over all items, so absent type tags come back as nulls; ``rules.rebuild_value`` drops
  them and rebuilds an empty map whose tag Spark dropped (Spark keeps no empty structs) as
  ``{"M": {}}``. An attribute that holds an empty map in *every* item is dropped from the schema
  altogether and comes back absent: use ``export-files`` where that matters. Before any row is
  written, the rows are counted for a missing ``--KEYS`` attribute (a pass over the frame, cached so
  the conversion does not read the export again).

The job is two pieces: the script Glue runs (``src/ddblake/load/glue_job.py``, two lines that
call :func:`ddblake.gluejob.job.main`) and this package, which the stack ships beside it as a zip
of ``ddblake/__init__.py`` and ``ddblake/gluejob/`` (the job's ``--extra-py-files``). Neither
imports anything but the standard library at module level (``pyspark``/``awsglue``/``boto3`` only
inside :func:`ddblake.gluejob.job.main`), since Glue has no ddblake installed: the package's
modules are ``rules`` (keys, event IDs, versions, raw lines: tests check they equal the ones in
the ``ddblake`` package), ``manifest`` (an export's manifests and data-file checks), ``errors``,
``exportfiles`` (the export-files source) and ``job`` (arguments, the connector, the entry point).
Its transformation logic is plain functions that the unit tests run without Spark.

Job arguments: ``--TABLE`` (DynamoDB table name), ``--LAKE`` (``s3://bucket/prefix``), ``--SOURCE``,
``--EXPORT_PATH`` (export-files), ``--TABLE_ARN`` / ``--ROLE_ARN`` / ``--EXPORT_BUCKET`` /
``--EXPORT_PREFIX`` / ``--EXPORT_BUCKET_OWNER`` (connector), ``--KEYS`` (hash[,range],
required by the connector and by full exports; only an incremental export does without),
``--LOAD_ID`` (connector only, default: the job run ID; export rows take the export's ID). Every
refusal is one line naming the table, the argument or S3 object and what to do
(``errors.LoadRefused``; a Spark task's failure: ``errors.DataFileError``). Glue 4.0 runs Python 3.10,
so the package uses nothing newer.

A connector run records its load ID and start in ``<lake>/state/load/<table>/glue-connector.json``
and marks it finished at the end; a rerun after a failure goes on with them (``job.connector_run``),
so the rows it writes again repeat the first run's event IDs and times and apply drops them. An
explicit ``--LOAD_ID`` equal to the finished record's is refused.

The job writes no load state ``ddblake sync`` or ``capture`` read: docs/load.md (*Glue job*) says
what the operator must do instead (start capture first).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
SCRIPT = _HERE.parent / "load" / "glue_job.py"
"""The script Glue runs (the stack's default ``load.script``)."""


def library_files() -> dict[str, Path]:
    """The files the stack zips as the job's ``--extra-py-files``, by their path in the zip.

    ``ddblake/__init__.py`` (no imports) and this package: not ``ddblake.load``, whose imports
    (pyarrow, boto3's types) Glue does not have. The stack and the tests both take the list from
    here, so what the tests run in isolation is what is deployed.
    """
    files = {"ddblake/__init__.py": _HERE.parent / "__init__.py"}
    files.update({f"ddblake/gluejob/{path.name}": path for path in sorted(_HERE.glob("*.py"))})
    return files
