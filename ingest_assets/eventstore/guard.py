"""Whether this writer may still write: checked before every write after the dataset lock was
taken, derived files included (a writer whose lease was lost writes nothing more)."""

from collections.abc import Callable

from ingest_resources.locks import Lease

Guard = Callable[[], None]  # raises LeaseLost when this writer may no longer write


def unguarded() -> None:
    """No lease to lose (a caller that holds no lock, or a test)."""
    return None


def guard_of(lease: Lease | None) -> Guard:
    return lease.still_held if lease is not None else unguarded
