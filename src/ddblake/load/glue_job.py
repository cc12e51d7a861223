"""Placeholder for the Glue full-load job script (AWS Glue 5.0, Spark, Python 3).

Owned by the load work (issue 4), which replaces this file; the infrastructure (infra/, issue 5) only
packages whatever is at this path as the Glue job's script asset. It is created here so that
``make synth`` works before the real script exists.

The job's arguments, set by the consumer stack (docs/deploy.md): ``--ddblake_table``,
``--ddblake_table_arn``, ``--ddblake_region``, ``--ddblake_lake`` (``s3://<lake bucket>``),
``--ddblake_namespace``, ``--ddblake_read_percent`` and, cross-account, ``--ddblake_assume_role``
(the producer's read role) and optionally ``--ddblake_external_id``. ``src/ddblake`` is on the job's
Python path (``--extra-py-files``).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Refuse to run: the real load script has not replaced this placeholder yet."""
    print(
        "ddblake: error: the Glue load script is a placeholder; deploy a ddblake release whose "
        "src/ddblake/load/glue_job.py implements the load (or run `ddblake load` from a machine)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
