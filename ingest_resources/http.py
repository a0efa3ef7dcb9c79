"""HTTP downloads with httpx: timeout, headers and params, and a hard cap on size."""

from dataclasses import dataclass

import httpx


class FetchError(Exception):
    """A download failed; the message names the dataset and the (masked) URL."""


@dataclass(frozen=True)
class Download:
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None


def download(
    url: str,
    *,
    headers: dict[str, str],
    params: dict[str, object],
    timeout_s: float,
    max_bytes: int,
    label: str,
) -> Download:
    """GET `url`, streaming, refusing bodies over `max_bytes`. `label` names the request in errors
    (dataset and URL with secrets masked), so no error message carries a credential."""
    try:
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=True) as client,
            client.stream("GET", url, headers=headers, params=params) as response,
        ):
            if response.status_code >= 400:
                raise FetchError(f"{label}: HTTP {response.status_code} {response.reason_phrase}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    f"{label}: response is {int(declared):,} bytes, over source.max_bytes {max_bytes:,}"
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        f"{label}: response exceeded source.max_bytes {max_bytes:,} bytes; refused"
                    )
                chunks.append(chunk)
            return Download(
                content=b"".join(chunks),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                content_type=response.headers.get("content-type"),
            )
    except httpx.TimeoutException:
        raise FetchError(f"{label}: timed out after source.timeout_s={timeout_s}s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{label}: {type(exc).__name__}") from None
