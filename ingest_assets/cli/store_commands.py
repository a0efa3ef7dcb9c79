"""Commands that read or mend the published store: export, quarantine, history, verify, repair,
gc, warehouse-rebuild."""

import argparse
import io
import json
import sys

from ingest_assets.cli.datasets import dataset_config, selected_datasets, store_runtime


def cmd_export(args: argparse.Namespace) -> int:
    from ingest_assets.stages.export import export_dataset

    config = dataset_config(args.dataset)
    try:
        rows = export_dataset(store_runtime().store, config, args.version, args.format, args.out)
    except (KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # (no quotes)
        raise SystemExit(f"ingest: {message}") from None
    if args.out:
        print(f"wrote {rows} rows to {args.out}", file=sys.stderr)
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    import pyarrow.csv as pacsv

    from ingest_assets.stages import read_quarantine

    config = dataset_config(args.dataset)
    table = read_quarantine(store_runtime(), config, args.partition)
    where = f"partition {args.partition}" if args.partition else "any partition"
    if table is None or table.num_rows == 0:
        print(f"{config.dataset_id}: no rejected rows in {where}", file=sys.stderr)
        return 0
    if args.format == "jsonl":
        for row in table.to_pylist():
            print(json.dumps(row, ensure_ascii=False, default=str))
    else:
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        sys.stdout.write(buffer.getvalue().decode())
    partitions = len(set(table.column("partition").to_pylist()))
    print(
        f"{config.dataset_id}: {table.num_rows} rejected row(s) in {partitions} partition(s)",
        file=sys.stderr,
    )
    return 0


def cmd_warehouse_rebuild(args: argparse.Namespace) -> int:
    from ingest_assets.stages import rebuild_warehouse

    config = dataset_config(args.dataset)
    outcome = rebuild_warehouse(store_runtime(), config)  # an IngestError: `main` prints it
    print(
        f"{config.dataset_id}: rebuilt {outcome.table} from {len(outcome.versions_loaded)} version(s): "
        f"{outcome.rows_inserted} rows inserted, {outcome.rows_updated} updated"
    )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """A dataset's published versions, newest first; with --all, each dataset's current version
    on a line that begins with its id (the end of `make demo`)."""
    from ingest_assets.eventstore import read_current, version_chain

    store = store_runtime().store
    every = getattr(args, "all", False)
    for config in selected_datasets(args):
        current, _ = read_current(store, config.dataset_id)
        if every:
            chain = [current] if current else []
        else:
            chain = version_chain(store, config.dataset_id, current)
        if not chain:
            print(f"{config.dataset_id}: nothing published yet")
        for manifest in reversed(chain):
            counts = manifest.counts
            marker = f"{config.dataset_id}:" if every else "*" if manifest is chain[-1] else " "
            print(
                f"{marker} {manifest.version}  partition={manifest.partition}  "
                f"added={counts.get('added', 0)} revised={counts.get('revised', 0)} "
                f"repeated={counts.get('repeated', 0)} rejected={counts.get('rejected', 0)}  "
                f"total={manifest.rows_total}"
            )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Walk each chain from `current`; exit 1 naming every problem."""
    from ingest_assets.eventstore import verify

    store, failed = store_runtime().store, 0
    for config in selected_datasets(args):
        report = verify(store, config)
        for problem in report.problems:
            print(f"{config.dataset_id}: {problem}")
        for note in report.notes:
            print(f"{config.dataset_id}: note: {note}", file=sys.stderr)
        state = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        print(
            f"{config.dataset_id}: {state}: {report.versions} version(s), {report.files} event "
            f"file(s), {report.bytes:,} bytes checked, {report.rows:,} rows, "
            f"{report.windows} window(s) ({report.seconds:.2f} s)",
            file=sys.stderr if report.ok else sys.stdout,
        )
        failed += not report.ok
    return 1 if failed else 0


def cmd_repair(args: argparse.Namespace) -> int:
    from ingest_assets.eventstore import repair
    from ingest_assets.stages import notifier

    runtime = store_runtime()
    config = dataset_config(args.dataset)
    report = repair(runtime.store, runtime.locks, config, notifier(runtime, config))
    for action in report.actions:
        print(f"{config.dataset_id}: {action}")
    print(f"{config.dataset_id}: current is {report.version or 'nothing'}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from ingest_assets.eventstore import EventStoreError, collect

    runtime = store_runtime()
    config = dataset_config(args.dataset)
    try:
        report = collect(runtime.store, runtime.locks, config, dry_run=args.dry_run)
    except EventStoreError as exc:
        raise SystemExit(f"ingest: {exc}; nothing was removed") from None
    for prefix in report.removed:
        print(f"{'would remove' if args.dry_run else 'removed'} {prefix}")
    verb = "would free" if args.dry_run else "freed"
    print(f"{config.dataset_id}: {verb} {report.files} file(s), {report.bytes:,} bytes")
    return 0
