"""Change events: one model for DynamoDB Streams, Kinesis and Firehose records, and load rows."""

from ddblake.changes.model import ChangeEvent, DynamoJson
from ddblake.changes.parse import parse_firehose_record, parse_json_record, parse_record, to_micros

__all__ = [
    "ChangeEvent",
    "DynamoJson",
    "parse_firehose_record",
    "parse_json_record",
    "parse_record",
    "to_micros",
]
