"""An HTTP source's request, as it is sent: `${ENV}` secrets and `{partition_start}`/
`{partition_end}`/`{since}` filled in at run time; the client the source's retry, breaker,
deadline and limits configure; and its errors, masked of every secret they might carry."""

from dataclasses import dataclass

from ingest_assets.contract import DatasetConfig, Secrets
from ingest_assets.sources.windows import Window, fill_window
from ingest_resources.http import FetchError, HttpClient, RetryPolicy, shared_breaker


@dataclass(frozen=True)
class Request:
    url: str  # with its secrets: never shown, `Secrets.mask` it first
    headers: dict[str, str]
    params: dict[str, str | int | float | bool]


def http_request(config: DatasetConfig, secrets: Secrets, window: Window | None) -> Request:
    """URL, headers and params with secrets and `{partition_start}`/`{partition_end}`/`{since}` filled."""
    source, dataset_id = config.source, config.dataset_id
    url = fill_window(
        secrets.expand(source.url or "", dataset_id, "source.url"), window, config, "source.url"
    )
    headers = secrets.expand_mapping(source.headers, dataset_id, "source.headers")
    params = {
        key: fill_window(value, window, config, f"source.params.{key}")
        if isinstance(value, str)
        else value
        for key, value in secrets.expand_mapping(source.params, dataset_id, "source.params").items()
    }
    return Request(url, headers, params)


def http_client(config: DatasetConfig, secrets: Secrets) -> HttpClient:
    source = config.source
    retry = source.retry
    return HttpClient(
        source.timeout_s,
        source.max_bytes,
        RetryPolicy(
            max_attempts=retry.max_attempts,
            backoff_s=retry.backoff_s,
            max_backoff_s=retry.max_backoff_s,
            max_retry_after_s=retry.max_retry_after_s,
        ),
        shared_breaker(source.breaker.failures, source.breaker.cooldown_s),
        deadline_s=source.deadline,
        max_inflated_bytes=source.inflated_limit,
        follow_redirects=source.follow_redirects,
        mask=secrets.mask,
    )


def masked(exc: FetchError, secrets: Secrets) -> FetchError:
    """`exc` with every secret masked out of its message; as retryable as it was."""
    return type(exc)(secrets.mask(str(exc)), retryable=exc.retryable)
