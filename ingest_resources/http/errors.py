"""The one error the HTTP client raises."""

from ingest_resources.errors import SourceError


class FetchError(SourceError):
    """A download failed; the message names the dataset and the (masked) URL.

    `retryable` is True where a later run may succeed as it is: the retries ran out on 5xx,
    429, timeouts or connection errors, the host's circuit is open, the server asks to wait
    longer than allowed, or the deadline passed. It stays False where nothing changes until
    someone acts: a 4xx, a refused redirect, a header HTTP cannot carry, a body over a cap or
    not what its Content-Encoding says."""


class SourceMissing(FetchError):
    """The file, object or URL is not there (a missing file, S3 NoSuchKey, HTTP 404 or 410):
    what `source.missing: skip` turns into an empty partition."""
