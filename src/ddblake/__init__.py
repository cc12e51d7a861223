"""ddblake: Amazon DynamoDB tables into an S3 data lake, kept current.

The package is split by what each part does: ``codec`` (DynamoDB JSON and Arrow), ``changes``
(one change-event model for every input shape), ``aws`` (Lambda handlers and client factories),
``capture`` (DynamoDB Streams consumer), ``load`` (Scan and export loads), ``gluejob`` (the
same load as a Glue job), ``lake`` (storage, the raw change log, the Iceberg tables), ``local``
(DynamoDB Local) and ``cli``.

This module imports nothing: the Glue job ships it beside ``gluejob`` and runs without the rest.
"""

__version__ = "0.1.0"
