"""Lambda entry point of the apply image: one ``ddblake apply --once`` per scheduled invocation.

Configured by the environment the consumer stack sets: ``DDBLAKE_TABLE`` (the DynamoDB table name),
``DDBLAKE_LAKE`` (``s3://<lake bucket>``), ``DDBLAKE_CATALOG`` (``glue``) and ``DDBLAKE_NAMESPACE``
(the Glue database). One run at a time per table: the function has a reserved concurrency of 1 and
drops (does not queue) a scheduled event that finds the previous run still going.

This file is part of the image only; it imports ddblake, never aws_cdk.
"""

from __future__ import annotations

import os
from typing import Any

from ddblake.cli.main import main


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run ``ddblake apply --once`` for the configured table; raise when it fails.

    Raising marks the invocation failed, which feeds the stack's apply-failure alarm (the Lambda
    ``Errors`` metric); ddblake has already printed the one-line reason to the log.
    """
    table = os.environ["DDBLAKE_TABLE"]
    code = main(
        [
            "apply",
            "--once",
            "--table",
            table,
            "--lake",
            os.environ["DDBLAKE_LAKE"],
            "--catalog",
            os.environ.get("DDBLAKE_CATALOG", "glue"),
            "--namespace",
            os.environ.get("DDBLAKE_NAMESPACE", "ddb"),
        ]
    )
    if code != 0:
        raise RuntimeError(f"ddblake apply --once for table {table} exited with code {code}; see the log above")
    return {"table": table, "exit_code": code}
