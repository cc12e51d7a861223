"""One line for the errors that reach the command's wrapper untranslated: a file or directory that
cannot be used, and a library's error (botocore, SQLAlchemy, pyarrow, pyiceberg, DuckDB)."""

from __future__ import annotations


def os_error_line(e: OSError) -> str:
    """``cannot use PATH: reason; check that it exists and is accessible`` (or the error itself)."""
    reason = e.strerror or str(e) or e.__class__.__name__
    if e.filename is None:
        return f"{reason} ({e.__class__.__name__})"
    target = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else str(e.filename)
    return f"cannot use {target}: {reason}; check the path exists and is accessible"


def library_error(e: Exception) -> str | None:
    """One line for a botocore or SQLAlchemy error that no adapter translated; None for others.

    pyiceberg calls Glue (and SQLite) itself, so its commits and table loads can raise these; the
    commands that hold a lake explain those naming it (:func:`ddblake.cli.lakes.catalog_errors`),
    this is the backstop for the others.
    """
    from ddblake.lake.catalog import catalog_error
    from ddblake.redact import first_line

    explained = catalog_error(e)
    if explained is not None:
        return str(explained)
    root = type(e).__module__.split(".")[0]
    if root in ("pyarrow", "pyiceberg", "duckdb", "_duckdb"):  # a damaged or missing table file, or metadata
        # Their messages may quote item data (pyarrow: "Could not convert 'alice@example.com' ...",
        # pyiceberg: a filter's key literals), and this line lands in logs when ddblake runs as a
        # job (ECS, cron, CI): values are masked, file paths kept.
        first = first_line(e)
        return (
            f"cannot read the lake's tables: {first} ({type(e).__name__}); if a table's data or metadata "
            "file is damaged or missing: restore it (a backup, S3 versioning); the raw change log "
            "under raw/ still holds every change"
        )
    return None
