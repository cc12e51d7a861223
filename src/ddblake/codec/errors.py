"""The codec's errors, placed in ddblake's one hierarchy.

A value that is not valid DynamoDB JSON (or that DynamoDB would refuse) is a bad *record*: the caller
quarantines that record and goes on. A batch that does not fit the schema it was asked to fit is a
mistake of the caller (unify the schemas first), not of the data, so it is terminal instead.

Messages name attributes and type tags, never the values: items can hold personal data, and these
messages end up in logs and in the errors/ prefix of the lake.
"""

from __future__ import annotations

from ddblake.errors import BadRecordError, TerminalError


class BadValueError(BadRecordError):
    """A value is not valid DynamoDB JSON, or cannot be written to DynamoDB as it is."""


class SchemaMismatchError(TerminalError):
    """A batch holds values that the target Arrow schema cannot hold exactly."""
