"""Every error Ingest raises on purpose, by kind, under one base: `IngestError`.

The base lives here, in the lowest layer, so that the resources (which import nothing from
`ingest_assets`) and the pure packages above them share it. Each message names the dataset, the
file or field and what was expected; the Dagster layer shows the message alone.

    IngestError
    ├── ConfigError        a dataset's YAML, or the environment it names, is wrong
    ├── SourceError        the input could not be fetched (retryable when a later try may work)
    ├── DataError          the input's content cannot be read or does not meet the contract
    ├── StoreError         the object store, a lock or the disk
    │   └── EventStoreError (ingest_assets.eventstore.errors): a publish refused
    └── WarehouseError     a PostgreSQL load failed

`retryable` says whether running again, unchanged, can succeed: a lost race or a server that
gave up for now, yes; a wrong contract, bad data or a broken chain, not until someone acts. The
Dagster layer hands retryable errors to the asset's retry policy and fails the rest at once.
"""

from collections.abc import Sequence


class IngestError(Exception):
    """Something Ingest refuses to do, and says why."""

    retryable: bool = False

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(IngestError):
    """A dataset's configuration (its YAML, a plugin it names, an environment variable it
    reads) is wrong: one problem per line, each naming its file and field."""

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SourceError(IngestError):
    """The input could not be fetched: the message names the dataset and the (masked) source."""


class DataError(IngestError):
    """The input's content cannot be read, or does not meet the contract."""


class StoreError(IngestError):
    """The object store, a lock or the disk did not do what was asked."""


class WarehouseError(IngestError):
    """A load (or a ledger read) failed: the message names the dataset, the table and the
    version, says whether the version was loaded, and carries PostgreSQL's own message."""
