"""`ingest`: the command line (see `ingest --help`); each command is a thin caller of the stages,
the event store or Dagster."""

from ingest_assets.cli.main import console, main

__all__ = ["console", "main"]
