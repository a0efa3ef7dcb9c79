"""`ingest`: validate, list, run, export, history and the store's upkeep (docs/operations.md).

This module holds the argument parser and the commands about configs; the others are in
`materialize.py` (run, backfill), `store_commands.py` (export ... gc) and `instance.py`."""

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ingest_assets import settings
from ingest_assets.cli.datasets import all_configs
from ingest_assets.cli.instance import cmd_instance
from ingest_assets.cli.materialize import cmd_backfill, cmd_run
from ingest_assets.cli.store_commands import (
    cmd_export,
    cmd_gc,
    cmd_history,
    cmd_quarantine,
    cmd_repair,
    cmd_verify,
    cmd_warehouse_rebuild,
)
from ingest_assets.contract import (
    BUILTIN_NORMALIZERS,
    BUILTIN_PARSERS,
    DatasetConfig,
    Problem,
    config_files,
    duplicate_ids,
    load_each,
)
from ingest_resources.errors import ConfigError, IngestError

DESCRIPTION = "validate, list, run, export, history and the store's upkeep (docs/operations.md)"


def _plugin_problems(path: str, config: DatasetConfig) -> list[Problem]:
    from ingest_assets.parsers.base import load_plugin

    problems = []
    checks = [("parse.plugin", config.parser, BUILTIN_PARSERS)]
    checks.append(("normalize.plugin", config.normalize.plugin, BUILTIN_NORMALIZERS))
    for field, name, builtins in checks:
        if name not in builtins:
            try:
                load_plugin(name, field.split(".")[0])
            except ImportError as exc:
                problems.append(Problem(path, field, str(exc)))
    return problems


def cmd_validate(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files] or config_files(settings.config_dir())
    loaded, problems = load_each(paths)
    problems += duplicate_ids(loaded)  # what spans files
    for path, config in loaded:
        problems += _plugin_problems(str(path), config)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"ok: {len(loaded)} dataset(s) valid")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for config in all_configs():
        kind = config.partitions.kind
        print(
            f"{config.dataset_id}\tparser={config.parser}\tpartitions={kind}\t"
            f"assets={','.join(f'{config.dataset_id}/{s}' for s in config.stages)}"
        )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of a dataset YAML, for editors (docs/contract.md says how to use it)."""
    from ingest_assets.contract.json_schema import contract_json_schema

    print(json.dumps(contract_json_schema(), indent=2, sort_keys=True))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The read API (ingest_api): the published data, versions, health and stats over HTTP."""
    from ingest_api import serve

    serve(args.host, args.port)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse's errors on one line, as every other `ingest` error (its usage is --help's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ingest: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ingest", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check dataset configs")
    validate.add_argument(
        "files", nargs="*", help="YAML files (default: every file in INGEST_CONFIG_DIR)"
    )
    validate.set_defaults(func=cmd_validate)
    sub.add_parser("list", help="list datasets and their assets").set_defaults(func=cmd_list)
    sub.add_parser(
        "schema", help="print the JSON Schema of a dataset YAML (for editors' completion)"
    ).set_defaults(func=cmd_schema)
    sub.add_parser(
        "instance",
        help="prepare DAGSTER_HOME (SQLite, or PostgreSQL if INGEST_DAGSTER_PG_URL is set)",
    ).set_defaults(func=cmd_instance)
    run = sub.add_parser("run", help="materialize a dataset's assets in-process")
    run.add_argument("dataset", nargs="?")
    run.add_argument(
        "--all", action="store_true", help="every dataset's latest partition, in one process"
    )
    run.add_argument(
        "--if-changed",
        action="store_true",
        help="skip, without a run, a dataset whose local source file and contract are those of "
        "its current version (make demo)",
    )
    run.add_argument("--partition", help="partition key (default: the latest partition)")
    run.add_argument(
        "--log-level",
        default="CRITICAL",
        help="Dagster's console log level, e.g. INFO (default: CRITICAL; ingest prints a summary)",
    )
    run.set_defaults(func=cmd_run)
    backfill = sub.add_parser("backfill", help="run a range of partitions in-process, oldest first")
    backfill.add_argument("dataset")
    backfill.add_argument("--start", required=True, help="first partition key")
    backfill.add_argument("--end", required=True, help="last partition key (inclusive)")
    backfill.add_argument(
        "--log-level", default="CRITICAL", help="Dagster's console log level, e.g. INFO"
    )
    backfill.set_defaults(func=cmd_backfill)
    export = sub.add_parser("export", help="write the published data, latest value per key")
    export.add_argument("dataset")
    export.add_argument("--version", help="as of this version (default: current)")
    export.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv")
    export.add_argument(
        "--out", help="output file (default: standard output; required for parquet)"
    )
    export.set_defaults(func=cmd_export)
    quarantine = sub.add_parser(
        "quarantine", help="rejected rows with their source cell and reason"
    )
    quarantine.add_argument("dataset")
    quarantine.add_argument("--partition", help="one partition (default: every partition)")
    quarantine.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    quarantine.set_defaults(func=cmd_quarantine)
    rebuild = sub.add_parser(
        "warehouse-rebuild", help="reload a dataset's warehouse table from the store"
    )
    rebuild.add_argument("dataset")
    rebuild.set_defaults(func=cmd_warehouse_rebuild)
    history = sub.add_parser("history", help="list published versions with their counts")
    history.add_argument("dataset", nargs="?")
    history.add_argument(
        "--all", action="store_true", help="the current version of every dataset, one line each"
    )
    history.set_defaults(func=cmd_history)
    verify = sub.add_parser(
        "verify", help="check a dataset's published chain, event files and derived files"
    )
    verify.add_argument("dataset", nargs="?")
    verify.add_argument("--all", action="store_true", help="every dataset of INGEST_CONFIG_DIR")
    verify.set_defaults(func=cmd_verify)
    repair = sub.add_parser(
        "repair", help="restore a lost current pointer; rebuild the index and projections"
    )
    repair.add_argument("dataset")
    repair.set_defaults(func=cmd_repair)
    gc_ = sub.add_parser("gc", help="remove orphan event folders and old scratch files")
    gc_.add_argument("dataset")
    gc_.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    gc_.set_defaults(func=cmd_gc)
    serve = sub.add_parser("serve", help="serve the published data over HTTP (README: Read API)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an `IngestError` is printed (its message names the dataset and what
    was expected) and exits 1, anything else is a bug and keeps its traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except IngestError as exc:  # (as the commands' own `SystemExit("ingest: ...")`)
        raise SystemExit(f"ingest: {exc}") from None


def console() -> None:
    """The `ingest` command: `main`, then out of the process without running the interpreter's
    teardown. The work is done and flushed; native thread pools (Arrow's, DuckDB's) torn down
    with the interpreter aborted 2 `ingest verify` runs in 64 ("terminate called without an
    active exception", exit 134) after they had printed their result."""
    try:
        code = main()
    except SystemExit as exc:  # `raise SystemExit("ingest: ...")`, argparse's --help and errors
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:  # `ingest list | head`: the reader had enough
        code = 0
    try:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
        sys.stderr.flush()
    finally:
        logging.shutdown()
        os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    console()
