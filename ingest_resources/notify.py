"""After a publish: one message with the manifest summary, to SNS or to the log.

A failed notification is reported (returned and logged), never raised: the data is published,
and the next run sends it again. Every message carries a deduplication id (dataset and
version): a FIFO topic drops a repeat itself, and a subscriber of a standard topic can.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ingest.notify")


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    counts = manifest.get("counts", {})
    return {
        "dataset_id": manifest["dataset_id"],
        "version": manifest["version"],
        "parent_version": manifest.get("parent_version"),
        "partition": manifest.get("partition"),
        "rows_added": counts.get("added", 0),
        "rows_revised": counts.get("revised", 0),
        "rows_rejected": counts.get("rejected", 0),
        "rows_total": manifest.get("rows_total"),
        "high_water_marks": manifest.get("high_water_marks", {}),
        "created_at": manifest.get("created_at"),
        "dedup_id": dedup_id(manifest),
    }


def dedup_id(manifest: dict[str, Any]) -> str:
    return f"{manifest['dataset_id']}:{manifest['version']}"[:128]


class Notifier:
    def __init__(self, sns_client: Callable[[], Any]):
        self._sns_client = sns_client  # created lazily: most datasets never notify

    def notify(self, topic_arn: str | None, manifest: dict[str, Any]) -> str | None:
        """Send the summary; returns None on success, else what went wrong."""
        message = summary(manifest)
        if not topic_arn:
            log.info("published %s", json.dumps(message, sort_keys=True))
            return None
        subject = f"ingest: {message['dataset_id']} {message['version']}"[:100]
        extra: dict[str, Any] = {
            "MessageAttributes": {
                "dedup_id": {"DataType": "String", "StringValue": message["dedup_id"]}
            }
        }
        if topic_arn.endswith(".fifo"):
            extra["MessageGroupId"] = message["dataset_id"]
            extra["MessageDeduplicationId"] = message["dedup_id"]
        try:
            self._sns_client().publish(
                TopicArn=topic_arn,
                Subject=subject,
                Message=json.dumps(message, sort_keys=True),
                **extra,
            )
        except Exception as exc:  # noqa: BLE001 - any failure is reported, none un-publishes
            error = f"notification to {topic_arn} failed: {type(exc).__name__}: {exc}"
            log.warning(
                "dataset %s version %s: %s", message["dataset_id"], message["version"], error
            )
            return error
        return None


def notification_status(topic_arn: str | None, published: bool, errors: list[str]) -> str:
    """What became of a run's notification, in words (the published asset's `notification`):
    never "sent" without a topic to send it to."""
    if not topic_arn:
        return "not configured (no notify.sns_topic_arn; the summary went to the log)"
    if not published:
        return "none: nothing new was published"
    failed = [e for e in errors if "follow-up notify failed" in e]
    if failed:
        return f"failed, the next run sends it again: {failed[0]}"
    return f"sent to {topic_arn}"
