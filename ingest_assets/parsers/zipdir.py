"""A zip source's directory, opened safely: its size checked before `zipfile` lists it.

zipfile lists every member its central directory holds (about 500 bytes of Python objects
each, whatever the end record claims), so the directory's size is read from the end record
first and a directory over MAX_DIRECTORY is refused (the workbook check does the same for
.xlsx, in memory, with `declared_directory_size`). Member names that leave the archive (zip-slip: an absolute
path, a drive, a `..`) are refused too: nothing is ever written under a member's name, but
an archive built to attack an extractor is not one to read data from.
"""

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ingest_assets.parsers.base import ParseContext

MAX_MEMBERS = 10_000
MAX_DIRECTORY = MAX_MEMBERS * 300  # bytes of central directory: 46 a member, and its name

END_RECORD = b"PK\x05\x06"
END_SEARCH = 65_557  # the end record (22 bytes) and the longest comment (65,535)
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_RECORD = b"PK\x06\x06"
MACOS_FORKS = "__MACOSX/"  # resource forks macOS adds beside each file: not data


def declared_directory_size(read: Callable[[int, int], bytes], total: int) -> int | None:
    """The central directory's size as the end record (or its zip64 record) declares it, in
    an archive of `total` bytes read by `read(offset, count)`; None when there is no end record
    (zipfile then says it is not a zip)."""
    start = max(0, total - END_SEARCH)
    tail = read(start, total - start)
    end = tail.rfind(END_RECORD)
    if end < 0 or end + 22 > len(tail):
        return None
    (size,) = struct.unpack_from("<I", tail, end + 12)
    locator = end - 20
    if size == 0xFFFFFFFF and locator >= 0 and tail[locator : locator + 4] == ZIP64_LOCATOR:
        (record,) = struct.unpack_from("<Q", tail, locator + 8)
        found = read(min(record, total), 56)
        if found[:4] == ZIP64_RECORD and len(found) >= 48:
            (size,) = struct.unpack_from("<Q", found, 40)
    return int(size)


def directory_size(path: Path) -> int | None:
    """`declared_directory_size` of the zip file at `path`."""
    with path.open("rb") as file:

        def read(offset: int, count: int) -> bytes:
            file.seek(offset)
            return file.read(count)

        return declared_directory_size(read, path.stat().st_size)


def leaves_archive(name: str) -> bool:
    """A member name that an extractor would write outside its folder."""
    normal = name.replace("\\", "/")
    parts = PurePosixPath(normal).parts
    drive = len(normal) > 1 and normal[1] == ":"
    return normal.startswith("/") or drive or ".." in parts


def open_zip(path: Path, ctx: ParseContext) -> zipfile.ZipFile:
    """The zip at `path`, its directory listed once checked (a ParseError otherwise)."""
    size = directory_size(path)
    if size is not None and size > MAX_DIRECTORY:
        raise ctx.error(
            f"the zip archive's directory takes {size:,} bytes, over the {MAX_DIRECTORY:,} that "
            f"{MAX_MEMBERS:,} members need; refused before listing it"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ctx.error(f"not a readable zip archive: {exc}") from None
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        archive.close()
        raise ctx.error(f"the zip archive holds {len(members):,} members, over {MAX_MEMBERS:,}")
    hostile = next((info.filename for info in members if leaves_archive(info.filename)), None)
    if hostile is not None:
        archive.close()
        raise ctx.error(
            f"the zip archive has a member named {hostile!r}, a path outside the archive "
            "(zip-slip); refused"
        )
    return archive


def data_files(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The members that are files: not folders, not macOS resource forks."""
    return [
        info
        for info in archive.infolist()
        if not info.is_dir() and not info.filename.startswith(MACOS_FORKS)
    ]


def mimetype(archive: zipfile.ZipFile) -> bytes:
    """The start of an OpenDocument file's `mimetype` member (stored, first), else b''."""
    try:
        info = archive.getinfo("mimetype")
    except KeyError:
        return b""
    if info.file_size > 200 or info.compress_type != zipfile.ZIP_STORED:
        return b""
    try:
        with archive.open(info) as member:
            return member.read(200)
    except (zipfile.BadZipFile, OSError, EOFError):
        return b""
