"""What the event store raises: one base class, and a subclass for each way a publish is refused.

`retryable` says whether running again can succeed as it is (a lost race: yes; a broken chain,
an incompatible schema: not until someone acts)."""

from ingest_resources.errors import StoreError


class EventStoreError(StoreError):
    """Something about the published store of a dataset; the message names the dataset."""


class PublishConflict(EventStoreError):
    """Another writer moved `current` first; this writer's version was withdrawn."""

    retryable = True


class StaleWriter(PublishConflict):
    """This writer's lease was lost or a newer lease holder already published (fencing)."""


class IncompatibleSchema(EventStoreError):
    """A published column or key would change in a way its earlier versions cannot absorb."""


class BrokenChain(EventStoreError):
    """The chain of published versions references a manifest or event file that is missing,
    truncated or unreadable: nothing is published on top of it (`ingest verify` lists all)."""


class CurrentLost(EventStoreError):
    """`current/manifest.json` is missing or unreadable while versions were published:
    publishing a new first version would orphan them (`ingest repair` restores the pointer)."""


class UnknownFormat(EventStoreError):
    """A manifest written by a newer Ingest (a format_version this code does not know)."""
