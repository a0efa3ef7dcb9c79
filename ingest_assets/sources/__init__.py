"""Sources: getting a dataset's bytes (`source:` of the contract) and asking whether they changed.

Modules:
    fetch    fetch(): a local file (inside INGEST_SOURCE_ROOTS), an HTTP URL or an S3 object,
             as `Fetched`; the file's sha256
    request  an HTTP source's request with secrets and window filled, its client (retries,
             breaker, deadline, limits), errors masked of secrets
    pages    every page of a paginated JSON API
    probe    probe(): the source's version (`SourceVersion`), asked cheaply, for the sensors
    windows  `{partition_start}`, `{partition_end}`, `{since}` (with a strftime spec) in a URL,
             params, path, key or glob
    listing  a landing zone's files (`source.glob`): a local folder walked, or S3
             ListObjectsV2, with each file's size and change stamp
    dated    every partition's files of a time-partitioned zone, each file's time read
             back from its path (for the sensor)

May import: `ingest_assets.contract`, `ingest_assets.settings` (the project root) and the
clients of `ingest_resources` (http; runtime and s3_store for S3, imported when an S3 source is
read). Never Dagster, the event store or the stages: the published state a window needs comes
in as a `windows.Published`.

Nothing is imported here: `windows` is light, while `fetch` and `probe` bring in the HTTP
client, which the code location imports only when a sensor ticks or a run fetches.
"""
