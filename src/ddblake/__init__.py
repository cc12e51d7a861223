"""ddblake: Amazon DynamoDB tables into an S3 data lake, kept current.

The package is split by what each part does: ``codec`` (DynamoDB JSON and Arrow), ``changes``
(one change-event model for every input shape), ``aws`` (Lambda handlers and client factories),
``capture`` (DynamoDB Streams consumer), ``lake`` (storage and the raw change log), ``local``
(DynamoDB Local) and ``cli``.
"""

__version__ = "0.1.0"
