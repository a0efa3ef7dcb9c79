"""An .xlsx checked as calamine will read it: the zip archive, each member inflated here, in
pieces, never trusting the sizes it declares, and its cells scanned as it inflates. An .ods
is the same kind of archive: its content.xml is scanned by `workbook_ods`."""

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator

from ingest_assets.parsers.workbook_budget import Budget, Refused
from ingest_assets.parsers.workbook_ods import OdsScan, is_ods
from ingest_assets.parsers.workbook_xlsx_cells import SHARED_STRINGS, SheetScan
from ingest_assets.parsers.zipdir import MAX_DIRECTORY, MAX_MEMBERS, declared_directory_size

MAX_RATIO = 1000  # deflate's best is about 1032:1: nothing real comes near it
RATIO_FLOOR = 1 << 20  # a member under 1 MB inflated is never refused for its ratio
PIECE = 1 << 20  # inflated bytes handled at a time


def check_xlsx(data: bytes, budget: Budget, embedded: bool = False) -> None:
    """`embedded`: the zip lies inside an .xls (Excel 2007 and later keep the workbook's theme
    in one): calamine reads the .xls, and tries the zip only if that fails; a zip it cannot
    read, or that holds no workbook, is then no workbook it could open, so it passes."""
    _refuse_many_members(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        if embedded:
            return
        raise Refused(f"the workbook is not a readable zip archive: {exc}") from None
    with archive:
        members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise Refused(f"the workbook archive holds {len(members):,} members, over {MAX_MEMBERS:,}")
    names = {info.filename.lower() for info in members}
    if embedded and not names & {"xl/workbook.xml", "xl/workbook.bin", "content.xml"}:
        return
    ods = is_ods(names)
    if not ods:
        _refuse_other_kinds(names)
    _refuse_declared_sizes(members, budget)
    for info in members:  # no member inflates past its declared size: the sum stays bounded
        _refuse_unreadable(info)
        if ods:
            scan = OdsScan(info.filename, budget)
            _scan_member(data, info, scan)
            scan.finish()
        else:
            _check_member(data, info, budget)


def _refuse_many_members(data: bytes) -> None:
    """zipfile lists every member its central directory holds (about 500 bytes each, however
    many the end record claims): the directory's size is checked before it is listed."""
    size = declared_directory_size(lambda offset, count: data[offset : offset + count], len(data))
    if size is not None and size > MAX_DIRECTORY:
        raise Refused(
            f"the workbook archive's directory takes {size:,} bytes, over the {MAX_DIRECTORY:,} "
            f"that {MAX_MEMBERS:,} members need"
        )


def _refuse_other_kinds(names: set[str]) -> None:
    """calamine reads a zip as .xlsx, else as .xlsb, else as OpenDocument (finding members by
    name in any case): only .xlsx and .ods are checked (and documented), so .xlsb is refused
    rather than read unchecked."""
    if "xl/workbook.bin" in names:
        raise Refused(
            "the archive holds 'xl/workbook.bin': an .xlsb workbook; only .xlsx (Office Open "
            "XML), .xls and .ods (OpenDocument) workbooks are read"
        )
    if "xl/workbook.xml" not in names:
        raise Refused("the zip archive has no xl/workbook.xml: it is not an .xlsx workbook")


def _refuse_declared_sizes(members: list[zipfile.ZipInfo], budget: Budget) -> None:
    declared = sum(info.file_size for info in members)
    if declared > budget.inflated:
        largest = max(members, key=lambda info: info.file_size)
        raise Refused(
            f"the workbook's members declare {declared:,} bytes inflated (the largest, "
            f"{largest.filename!r}, {largest.file_size:,} bytes), over {budget.describe()}"
        )
    for info in members:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise Refused(
                f"member {info.filename!r} inflates {info.compress_size:,} bytes to "
                f"{info.file_size:,} (over {MAX_RATIO}:1): a decompression bomb"
            )


def _refuse_unreadable(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise Refused(f"member {info.filename!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Refused(
            f"member {info.filename!r} uses compression method {info.compress_type}; only "
            "stored and deflated members are read"
        )


def _check_member(data: bytes, info: zipfile.ZipInfo, budget: Budget) -> None:
    """Inflate the member, checking its declared size and CRC, and scan its cells. A member
    that may hold more cell tags than the budget (4 bytes each at least) is first counted
    alone, which is cheap, so that a bomb of cells is refused before the references are read;
    a sheet the fast scan cannot vouch for is then scanned exactly."""
    strings = info.filename.lower() == SHARED_STRINGS
    if info.file_size // 4 > budget.cells:
        _scan_member(data, info, SheetScan(info.filename, budget, strings, positions=False))
    scan = SheetScan(info.filename, budget, strings)
    _scan_member(data, info, scan)
    if scan.finish():
        exact = SheetScan(info.filename, budget, strings, exact=True)
        _scan_member(data, info, exact)
        exact.finish()


def _scan_member(data: bytes, info: zipfile.ZipInfo, scan: SheetScan) -> None:
    """Feed the member to `scan` as it inflates, stopping as soon as it holds more than it
    declares; then its size and CRC must be the declared ones."""
    size = 0
    crc = 0
    for piece in _inflated(data, info):
        size += len(piece)
        if size > info.file_size:
            raise Refused(
                f"member {info.filename!r} inflates past the {info.file_size:,} bytes it "
                "declares: its sizes are forged"
            )
        crc = zlib.crc32(piece, crc)
        scan.feed(piece)
    if size != info.file_size or crc != info.CRC:
        raise Refused(
            f"member {info.filename!r} holds {size:,} bytes (CRC {crc:08x}), not the "
            f"{info.file_size:,} (CRC {info.CRC:08x}) it declares: it is damaged or forged"
        )


def _inflated(data: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes in pieces of at most PIECE, inflated from its own local entry
    (zipfile would stop at the declared size; calamine's reader need not)."""
    view = _compressed(data, info)
    if info.compress_type == zipfile.ZIP_STORED or not view:
        for start in range(0, len(view), PIECE):
            yield bytes(view[start : start + PIECE])
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for start in range(0, len(view), PIECE):
            yield inflater.decompress(view[start : start + PIECE], PIECE)
            while inflater.unconsumed_tail and not inflater.eof:
                yield inflater.decompress(inflater.unconsumed_tail, PIECE)
            if inflater.eof:
                break
        rest = inflater.flush()
    except zlib.error as exc:
        raise Refused(f"member {info.filename!r} is not valid deflate data: {exc}") from None
    if rest:
        yield rest
    if not inflater.eof:
        raise Refused(f"member {info.filename!r} is truncated (its deflate stream does not end)")


def _compressed(data: bytes, info: zipfile.ZipInfo) -> memoryview:
    offset = info.header_offset
    if data[offset : offset + 4] != b"PK\x03\x04" or offset + 30 > len(data):
        raise Refused(f"member {info.filename!r} has no local entry where the directory says")
    name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
    start = offset + 30 + name_length + extra_length
    if start + info.compress_size > len(data):
        raise Refused(f"member {info.filename!r} runs past the end of the archive")
    return memoryview(data)[start : start + info.compress_size]
