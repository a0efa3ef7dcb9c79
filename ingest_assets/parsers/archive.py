"""A compressed source (`source.compression`): a gzip file or a member of a zip archive,
inflated to a scratch file before the declared format's parser reads it; and the magic-byte
check of what is read (a workbook declared as CSV is refused, naming it).

`auto` knows gzip (`1f 8b`) and zip (`PK 03 04`) by their first bytes; a zip that is a
workbook (.xlsx, .ods) is the workbook, not an archive, unless `source.member` names a file
in it. The raw file keeps the compressed bytes: this runs at every parse.

Inflating is bounded, never trusting what the file declares: every piece (at most PIECE
bytes) is counted against `source.inflated_limit` as it comes, and more than MAX_RATIO
inflated bytes per compressed byte (past RATIO_FLOOR) is refused as a bomb, as for the
members of a workbook. A zip member is read through `zipfile`, which stops at the size the
directory declares and checks the CRC, so a forged size is refused too; only stored and
deflated members are read (zipfile inflates bzip2 and lzma members unbounded).
"""

import gzip
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from ingest_assets.parsers.base import ParseContext, ParseError, is_builtin
from ingest_assets.parsers.magic import (
    GZIP,
    WORKBOOK_FORMATS,
    Kind,
    looks_like,
    refuse_mismatch,
    sniff,
)
from ingest_assets.parsers.workbook_xlsx import MAX_RATIO, RATIO_FLOOR
from ingest_assets.parsers.zipdir import data_files, open_zip

PIECE = 1 << 20  # inflated bytes handled at a time
ZIPPED = ("zip", "xlsx", "xlsb", "ods", "opendocument")  # kinds whose bytes are a zip
LISTED = 20  # members named in a message


@contextmanager
def unpacked(path: Path, ctx: ParseContext) -> Iterator[Path]:
    """The file the parser reads: `path` itself, or its inflated content in a scratch file
    (removed on exit). Either way checked to be what `source.format` says, for a built-in
    parser (a plugin of the user's reads what it reads: a zip with `compression: none`)."""
    kind = sniff(path, ctx)
    compression = _compression(kind, path, ctx)
    check = is_builtin(ctx.config.parser)
    if compression == "none":
        if check:
            refuse_mismatch(kind, path, ctx)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="ingest-unpacked-") as folder:
        if compression == "gzip":
            target, inside = Path(folder) / "inflated", " once inflated"
            _gunzip(path, target, ctx)
        else:
            target, name = _unzip(path, Path(folder), ctx)
            inside = f" inside the zip ({name!r})"
        if check:
            refuse_mismatch(sniff(target, ctx), target, ctx, inside)
        yield target


def _compression(kind: Kind, path: Path, ctx: ParseContext) -> str:
    """`source.compression`, `auto` resolved by the magic bytes; a declared one the bytes do
    not bear out is refused."""
    source = ctx.config.source
    declared = source.compression
    if declared == "auto":
        if kind == GZIP and source.member is not None:
            raise ctx.error(f"source.member is set but the file is {kind.label}, not a zip")
        if kind == GZIP:
            return "gzip"
        if kind.name == "zip" or (kind.name in ZIPPED and source.member is not None):
            return "zip"
        if source.member is not None:
            raise ctx.error(f"source.member is set but the file is {_what(kind, path)}, not a zip")
        return "none"
    if declared == "gzip" and kind != GZIP:
        raise ctx.error(f"source.compression is gzip but the file is {_what(kind, path)}")
    if declared == "zip":
        if kind.name not in ZIPPED:
            raise ctx.error(f"source.compression is zip but the file is {_what(kind, path)}")
        if kind.name != "zip" and source.member is None:
            fix = f"source.format: {kind.format} and " if kind.format else ""
            raise ctx.error(
                f"source.compression is zip but the file is {kind.label}, not an archive of "
                f"data files: set {fix}source.compression: auto (or source.member to read a "
                "file inside it)"
            )
    return declared


def _what(kind: Kind, path: Path) -> str:
    return kind.label or looks_like(path)[0]


def _bomb(ctx: ParseContext, what: str, inflated: int, compressed: int) -> ParseError:
    return ctx.error(
        f"{what} inflates {compressed:,} bytes to over {inflated:,} (over {MAX_RATIO}:1): "
        "refused as a decompression bomb"
    )


def _over_limit(ctx: ParseContext, what: str, compressed: int) -> ParseError:
    limit = ctx.config.source.inflated_limit
    return ctx.error(
        f"{what} inflates past source.max_inflated_bytes {limit:,} bytes from {compressed:,} "
        "bytes (default 20 x source.max_bytes); refused as a likely decompression bomb"
    )


class Inflating(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _copy(
    reader: Inflating, target: Path, ctx: ParseContext, what: str, consumed: "Consumed"
) -> None:
    """Copy the inflating `reader` to `target` in pieces, each counted against the limits."""
    limit = ctx.config.source.inflated_limit
    written = 0
    with target.open("wb") as out:
        while piece := reader.read(PIECE):
            written += len(piece)
            if written > limit:
                raise _over_limit(ctx, what, consumed())
            if written > RATIO_FLOOR and written > MAX_RATIO * max(consumed(), 1):
                raise _bomb(ctx, what, written, consumed())
            out.write(piece)


class Consumed:
    """How many compressed bytes the inflater has read so far."""

    def __init__(self, file: BinaryIO | None, fixed: int = 0):
        self.file, self.fixed = file, fixed

    def __call__(self) -> int:
        return self.file.tell() if self.file is not None else self.fixed


def _gunzip(path: Path, target: Path, ctx: ParseContext) -> None:
    """Every gzip member of the file, one after another, as gzip(1) reads them."""
    with path.open("rb") as raw:
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as inflating:
                _copy(inflating, target, ctx, "the gzip file", Consumed(raw))
        except (OSError, EOFError, zlib.error) as exc:  # (gzip.BadGzipFile is an OSError)
            raise ctx.error(f"the gzip file is damaged or cut short: {exc}") from None


def _unzip(path: Path, folder: Path, ctx: ParseContext) -> tuple[Path, str]:
    with open_zip(path, ctx) as archive:
        info = _member(archive, ctx)
        what = f"member {info.filename!r} of the zip"
        _refuse_unreadable(info, what, ctx)
        limit = ctx.config.source.inflated_limit
        if info.file_size > limit:
            raise ctx.error(
                f"{what} declares {info.file_size:,} bytes inflated, over "
                f"source.max_inflated_bytes {limit:,} (default 20 x source.max_bytes)"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _bomb(ctx, what, info.file_size, info.compress_size)
        suffix = re.sub(r"[^A-Za-z0-9.]", "", PurePosixPath(info.filename).suffix)[:12]
        target = folder / f"member{suffix}"
        try:
            with archive.open(info) as member:
                _copy(member, target, ctx, what, Consumed(None, info.compress_size))
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ctx.error(f"{what} is damaged or forged: {exc}") from None
    return target, info.filename


def _member(archive: zipfile.ZipFile, ctx: ParseContext) -> zipfile.ZipInfo:
    """`source.member`, else the one file the zip holds."""
    files = data_files(archive)
    wanted = ctx.config.source.member
    names = [info.filename for info in files]
    listing = ", ".join(repr(n) for n in names[:LISTED])
    listing += f" and {len(names) - LISTED:,} more" if len(names) > LISTED else ""
    if wanted is not None:
        found = [info for info in files if info.filename in (wanted, wanted.removeprefix("./"))]
        if not found:
            raise ctx.error(f"source.member {wanted!r} is not in the zip, which holds {listing}")
        return found[0]
    if len(files) == 1:
        return files[0]
    if not files:
        raise ctx.error("the zip archive holds no file")
    workbook = ctx.config.source.format in WORKBOOK_FORMATS
    raise ctx.error(
        f"the zip archive holds {len(files):,} files ({listing}): set source.member to the one "
        "to read" + (" (the workbook)" if workbook else "")
    )


def _refuse_unreadable(info: zipfile.ZipInfo, what: str, ctx: ParseContext) -> None:
    if info.flag_bits & 0x1:
        raise ctx.error(f"{what} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ctx.error(
            f"{what} uses compression method {info.compress_type}; only stored and deflated "
            "members are read"
        )
