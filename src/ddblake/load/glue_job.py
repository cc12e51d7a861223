"""The AWS Glue job script of ddblake's full load: Glue runs this file.

Everything it does is in :mod:`ddblake.gluejob` (its docstring says what, and which job arguments
it takes), which the stack ships beside this script as the job's ``--extra-py-files`` zip: Glue
has no ddblake installed, and the package imports only the standard library at module level.
"""

from ddblake.gluejob.job import main

if __name__ == "__main__":  # pragma: no cover - Glue runs the script as __main__
    main()
