"""The object store on local disk: a directory, written through temporary files renamed into
place (`write_atomic`), compare-and-swap under a file lock. The same guarantees as S3's
conditional writes, for one machine."""

import builtins
import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from ingest_resources.object_store import CasConflict, ObjectStore


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file whole or not at all: a temporary file beside it (fsynced if `durable`),
    renamed over it. Readers see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def content_etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalObjectStore(ObjectStore):
    """A directory on local disk. Writes go to a temporary file renamed into place."""

    concurrency = max(2, os.cpu_count() or 2)

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._root_prefix = os.path.join(self._root, "")

    def _path(self, key: str) -> Path:
        """The key's file. Lexical (no `resolve()`, which costs a system call per folder of
        every key): `..` may not climb out of the root; a symlink the user put inside the root
        (a folder on another disk, say) is followed as the file system follows it."""
        path = os.path.normpath(os.path.join(self._root, key))
        if not (path == self._root or path.startswith(self._root_prefix)):
            raise ValueError(f"object key {key!r} escapes the store root")
        return Path(path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"{self.describe()}: no object {key!r}") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, content_etag(data)

    def _put(self, key: str, data: bytes, durable: bool) -> None:
        write_atomic(self._path(key), data, durable)

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def _lock(self, path: Path) -> FileLock:
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path.with_name(f".{path.name}.lock")))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        with self._lock(path):
            if path.exists():
                return False
            write_atomic(path, data)
            return True

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        path = self._path(key)
        with self._lock(path):
            current = self.get_with_etag(key)
            current_etag = current[1] if current else None
            if current_etag != etag:
                raise CasConflict(
                    f"{key}: expected ETag {etag}, found {current_etag}: another writer published first"
                )
            write_atomic(path, data)
        return content_etag(data)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def copy(self, source: str, key: str, durable: bool = True) -> None:
        """A copy of the bytes (the kernel's copy_file_range: no trip through Python), never a
        hard link: `key` may be a derived file that someone truncates or rewrites in place, and
        that must not reach an immutable `source`."""
        origin, target = self._path(source), self._path(key)
        if not origin.is_file():
            raise KeyError(f"{self.describe()}: no object {source!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(origin, tmp)
            if durable:
                _fsync(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(
        self,
        key: str,
        path: Path,
        move: bool = False,
        durable: bool = True,
        immutable: bool = False,
    ) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = Path(path)
        if not move or source.parent != target.parent:  # never move what is not the store's
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            shutil.copyfile(source, tmp)
            if move:
                source.unlink(missing_ok=True)
            path = Path(tmp)
        if durable:
            _fsync(path)
        if not immutable:
            os.replace(path, target)
            return True
        try:  # a link fails where the target exists: no object is ever replaced
            os.link(path, target)
        except FileExistsError:
            return False
        except OSError:  # a file system without links: the check and the rename, locked
            with self._lock(target):
                if target.exists():
                    return False
                os.replace(path, target)
        finally:
            Path(path).unlink(missing_ok=True)
        return True

    def sync(self, keys: Iterable[str]) -> None:
        """fsync the objects on threads at once: the file system commits them together (165
        month files of an event, one after another: 0.26 s on this machine's disk; at once,
        a few hundredths)."""
        paths = [self._path(key) for key in keys]
        if len(paths) <= 1:
            for path in paths:
                _fsync(path)
            return
        with ThreadPoolExecutor(max_workers=min(32, len(paths))) as pool:
            list(pool.map(_fsync, paths))

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise KeyError(f"{self.describe()}: no object {key!r}")
        yield path

    def scratch_folder(self, key: str) -> Path | None:
        return self._path(key).parent

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        if base.is_file():
            return [prefix]
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    def stat_list(self, prefix: str, hidden: bool = False) -> dict[str, tuple[int, float]]:
        base = self._path(prefix)
        if not base.exists():
            return {}
        found = {}
        for path in [base] if base.is_file() else base.rglob("*"):
            if (hidden or not path.name.startswith(".")) and path.is_file():
                with contextlib.suppress(FileNotFoundError):  # (removed meanwhile)
                    info = path.stat()
                    found[path.relative_to(self.root).as_posix()] = (info.st_size, info.st_mtime)
        return dict(sorted(found.items()))

    def list_folders(self, prefix: str) -> builtins.list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def describe(self) -> str:
        return f"local store {self.root}"
