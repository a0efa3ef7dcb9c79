"""One writer per dataset: a lease with a TTL and a fencing token around publish.

`hold(key, ttl_s)` yields a Lease. Its `fence` grows with every acquisition of the key and is
recorded in the manifest; `check()` raises LeaseLost when the lease is no longer this writer's,
so a writer that stalled past its TTL cannot publish over a newer one.

- LocalLocks: an OS file lock (released by the kernel if the holder dies) and a counter file.
- DynamoLocks: DynamoDB conditional writes; the lease is renewed in the background while held.
"""

import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ingest_resources.errors import StoreError
from ingest_resources.local_store import write_atomic


class LockBusy(StoreError):
    """Another writer holds the dataset lock."""

    retryable = True


class LeaseLost(StoreError):
    """This writer's lease expired or was taken over: it must not publish."""

    retryable = True


@dataclass
class Lease:
    key: str
    fence: int
    owner: str
    _lost: threading.Event = field(default_factory=threading.Event)
    # held while the fence changes or the lease is renewed: a renewal never runs between the
    # store's fence moving and this lease's
    _fence_lock: threading.Lock = field(default_factory=threading.Lock)
    _verify: object = None  # callable raising LeaseLost, for stores that can check remotely
    _advance: object = None  # callable(lease, fence) moving this lease to a higher fence
    # time.monotonic() past which the lease may have expired unnoticed (a writer frozen past
    # its TTL finds out here, before it writes anything more)
    valid_until: float = math.inf

    def still_held(self) -> None:
        """Raise LeaseLost if the lease is known lost or may have expired (no round trip:
        checked before every write of derived files)."""
        if self._lost.is_set() or time.monotonic() > self.valid_until:
            self._lost.set()
            raise LeaseLost(f"lock {self.key!r}: lease (fence {self.fence}) was lost or expired")

    def check(self) -> None:
        """`still_held`, then ask the lock's store (DynamoDB) whether the lease is still ours."""
        self.still_held()
        if callable(self._verify):
            self._verify(self)

    def advance(self, fence: int) -> None:
        """Hold this lease under `fence` (higher than its own) from now on: a fence counter that
        was reset or lost starts again above the highest fence already published."""
        if fence <= self.fence:
            return
        with self._fence_lock:
            if callable(self._advance):
                self._advance(self, fence)
            self.fence = fence


def _file_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


class LocalLocks:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    @contextmanager
    def hold(self, key: str, ttl_s: float, wait_s: float | None = None) -> Iterator[Lease]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = _file_name(key)
        lock = FileLock(str(self.directory / f"{name}.lock"))
        try:
            lock.acquire(timeout=ttl_s if wait_s is None else wait_s)
        except Timeout:
            raise LockBusy(f"lock {key!r} is held by another writer") from None
        try:
            counter = self.directory / f"{name}.fence"
            fence = _read_counter(counter) + 1
            _write_counter(counter, fence)
            yield Lease(
                key=key,
                fence=fence,
                owner=uuid.uuid4().hex,
                _advance=lambda lease, to: _write_counter(counter, to),
            )
        finally:
            lock.release()


def _read_counter(path: Path) -> int:
    """The last fence handed out (0 if none, or if the file is unreadable: publish then moves
    the fence above the highest one in the chain)."""
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_counter(path: Path, fence: int) -> None:
    """Written whole or not at all (fsynced, renamed): never a truncated counter."""
    write_atomic(path, str(fence).encode())


class DynamoLocks:
    """Leases in a DynamoDB table whose partition key is `lock_key` (string).

    The lock item holds owner, fence and expires_at; a `<key>#fence` item counts acquisitions.
    Expiry is part of the put condition (DynamoDB's own TTL deletion is lazy).
    """

    def __init__(self, client: Any, table: str, poll_s: float = 0.2) -> None:  # boto3's DynamoDB
        self.client = client
        self.table = table
        self.poll_s = poll_s

    def _next_fence(self, key: str) -> int:
        response = self.client.update_item(
            TableName=self.table,
            Key={"lock_key": {"S": f"{key}#fence"}},
            UpdateExpression="ADD fence :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["fence"]["N"])

    def _try_acquire(self, key: str, owner: str, fence: int, ttl_s: float) -> bool:
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "lock_key": {"S": key},
                    "owner": {"S": owner},
                    "fence": {"N": str(fence)},
                    "expires_at": {"N": f"{now + ttl_s:.6f}"},
                },
                ConditionExpression="attribute_not_exists(lock_key) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": f"{now:.6f}"}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _renew(self, lease: Lease, ttl_s: float) -> bool:
        with lease._fence_lock:
            return self._renew_held(lease, ttl_s)

    def _renew_held(self, lease: Lease, ttl_s: float) -> bool:
        started = time.monotonic()
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"lock_key": {"S": lease.key}},
                UpdateExpression="SET expires_at = :until",
                ConditionExpression="#o = :owner AND fence = :fence AND expires_at >= :now",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":until": {"N": f"{time.time() + ttl_s:.6f}"},
                    ":owner": {"S": lease.owner},
                    ":fence": {"N": str(lease.fence)},
                    ":now": {"N": f"{time.time():.6f}"},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        lease.valid_until = started + ttl_s
        return True

    def advance(self, lease: Lease, fence: int) -> None:
        """Move a held lease to `fence`, and the counter at least there (its item was lost, or
        the table recreated): only the lease's owner can, and only while it holds it."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"lock_key": {"S": lease.key}},
                UpdateExpression="SET fence = :to",
                ConditionExpression="#o = :owner AND fence = :fence AND expires_at >= :now",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={
                    ":to": {"N": str(fence)},
                    ":owner": {"S": lease.owner},
                    ":fence": {"N": str(lease.fence)},
                    ":now": {"N": f"{time.time():.6f}"},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            lease._lost.set()
            raise LeaseLost(
                f"lock {lease.key!r}: lease with fence {lease.fence} expired or was taken over"
            ) from None
        with suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key={"lock_key": {"S": f"{lease.key}#fence"}},
                UpdateExpression="SET fence = :to",
                ConditionExpression="attribute_not_exists(fence) OR fence < :to",
                ExpressionAttributeValues={":to": {"N": str(fence)}},
            )

    def verify(self, lease: Lease) -> None:
        item = self.client.get_item(
            TableName=self.table, Key={"lock_key": {"S": lease.key}}, ConsistentRead=True
        ).get("Item")
        if (
            item is None
            or item["owner"]["S"] != lease.owner
            or int(item["fence"]["N"]) != lease.fence
            or float(item["expires_at"]["N"]) < time.time()
        ):
            lease._lost.set()
            raise LeaseLost(
                f"lock {lease.key!r}: lease with fence {lease.fence} expired or was taken over; "
                "refusing to publish over a newer writer"
            )

    @contextmanager
    def hold(
        self, key: str, ttl_s: float, wait_s: float | None = None, renew: bool = True
    ) -> Iterator[Lease]:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + (ttl_s if wait_s is None else wait_s)
        while True:
            fence = self._next_fence(key)
            started = time.monotonic()
            if self._try_acquire(key, owner, fence, ttl_s):
                break
            if time.monotonic() >= deadline:
                raise LockBusy(
                    f"lock {key!r} in DynamoDB table {self.table} is held by another writer"
                )
            time.sleep(self.poll_s)
        lease = Lease(
            key=key,
            fence=fence,
            owner=owner,
            _verify=self.verify,
            _advance=self.advance,
            valid_until=started + ttl_s,
        )
        stop = threading.Event()

        def keep_alive() -> None:
            while not stop.wait(ttl_s / 3):
                if not self._renew(lease, ttl_s):
                    lease._lost.set()
                    return

        renewer = threading.Thread(target=keep_alive, name=f"lease:{key}", daemon=True)
        if renew:
            renewer.start()
        try:
            yield lease
        finally:
            stop.set()
            if renew:
                renewer.join()
            # a newer writer that took the lock over keeps it: release only our own lease
            with suppress(self.client.exceptions.ConditionalCheckFailedException):
                self.client.delete_item(
                    TableName=self.table,
                    Key={"lock_key": {"S": key}},
                    ConditionExpression="#o = :owner AND fence = :fence",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={
                        ":owner": {"S": owner},
                        ":fence": {"N": str(lease.fence)},
                    },
                )


def create_lock_table(client: Any, table: str) -> None:  # boto3's DynamoDB client
    """Create the lock table (on-demand) if it does not exist; used by tests and set-up docs."""
    try:
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=table)
