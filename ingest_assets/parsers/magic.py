"""What a file is by its magic bytes, and the refusal of a file that is not `source.format`.

A workbook declared as CSV used to fail with a message about encodings, a gzip'd CSV as
garbage: the first bytes (and, for a zip, its member names) say what the file is, and a
mismatch is refused naming it and the `source.format` that reads it.
"""

from dataclasses import dataclass
from pathlib import Path

from ingest_assets.parsers.base import ParseContext
from ingest_assets.parsers.workbook_xls import OLE_MAGIC
from ingest_assets.parsers.zipdir import mimetype, open_zip

HEAD = 10
EXCERPT = 20  # characters of a text file quoted
BZIP2_BLOCK = bytes.fromhex("314159265359")
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
WORKBOOK_FORMATS = ("xlsx", "xls", "ods")


@dataclass(frozen=True)
class Kind:
    name: str  # gzip, zip, xlsx, ods, xlsb, opendocument, xls, parquet, bzip2, xz, zstd, 7z, other
    label: str  # what the file is, for messages
    format: str | None = None  # the source.format that reads it

    @property
    def workbook(self) -> bool:
        return self.name in ("xlsx", "ods", "xlsb", "xls")

    @property
    def archive(self) -> bool:
        return self.name in ("gzip", "zip")


GZIP = Kind("gzip", "gzip-compressed")
ZIP = Kind("zip", "a zip archive")
XLSX = Kind("xlsx", "an XLSX workbook (zip with xl/workbook.xml)", "xlsx")
XLSB = Kind("xlsb", "an XLSB workbook (zip with xl/workbook.bin), which is not read")
ODS = Kind("ods", f"an ODS workbook (zip with mimetype {ODS_MIMETYPE.decode()})", "ods")
ODF = Kind("opendocument", "an OpenDocument file that is not a spreadsheet")
XLS = Kind("xls", "an XLS workbook (OLE2 file, D0 CF 11 E0)", "xls")
PARQUET = Kind("parquet", "a Parquet file (PAR1)", "parquet")
OTHER = Kind("other", "")
COMPRESSED = {  # compressions that are not read: named rather than read as garbage
    # (bzip2: "BZh", the block size 1-9, then the first block's magic, so text is never taken)
    b"BZh": Kind("bzip2", "bzip2-compressed (only gzip and zip are read)"),
    b"\xfd7zXZ\x00": Kind("xz", "xz-compressed (only gzip and zip are read)"),
    b"\x28\xb5\x2f\xfd": Kind("zstd", "zstd-compressed (only gzip and zip are read)"),
    b"7z\xbc\xaf\x27\x1c": Kind("7z", "a 7-Zip archive (only gzip and zip are read)"),
}


def sniff(path: Path, ctx: ParseContext) -> Kind:
    """What the file at `path` is (a zip's directory is read, checked, to tell a workbook
    from an archive)."""
    with path.open("rb") as file:
        head = file.read(HEAD)
        file.seek(max(0, path.stat().st_size - 4))
        tail = file.read(4)
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):  # (empty: 05 06)
        with open_zip(path, ctx) as archive:
            return zip_kind(archive.namelist(), mimetype(archive))
    if head.startswith(OLE_MAGIC):
        return XLS
    if head.startswith(b"PAR1") and tail == b"PAR1":  # (a Parquet file ends as it starts)
        return PARQUET
    if head.startswith(b"BZh") and not (head[3:4].isdigit() and head[4:10] == BZIP2_BLOCK):
        return OTHER
    return next((kind for magic, kind in COMPRESSED.items() if head.startswith(magic)), OTHER)


def zip_kind(names: list[str], mimetype: bytes) -> Kind:
    lowered = {name.lower() for name in names}
    if "xl/workbook.xml" in lowered:
        return XLSX
    if "xl/workbook.bin" in lowered:
        return XLSB
    if mimetype.startswith(ODS_MIMETYPE):
        return ODS
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        return ODF
    return ZIP


def looks_like(path: Path) -> tuple[str, bool]:
    """A file of no known kind: ('text (it starts ...)', True) or ('binary bytes ...', False)."""
    with path.open("rb") as file:
        head = file.read(64)
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    unprintable = sum(not (c.isprintable() or c in "\r\n\t") for c in text)
    if "\0" in text or unprintable > len(text) // 8:
        return f"binary ({head[:8].hex(' ')} ...)", False
    first = text.splitlines()[0] if text.strip() else text
    return f"text (it starts {first[:EXCERPT]!r})", True


def refuse_mismatch(kind: Kind, path: Path, ctx: ParseContext, inside: str = "") -> None:
    """A ParseError if the file (`inside`: ' inside the zip', after inflating) is not what
    `source.format` reads, naming what it is and the format that reads it."""
    declared = ctx.config.source.format
    the_file = f"the file{inside}"
    if kind.archive:
        if inside:
            raise ctx.error(f"{the_file} is {kind.label} too: an archive in an archive is not read")
        raise ctx.error(  # (source.compression: none)
            f"source.format is {declared} but {the_file} is {kind.label}, and "
            "source.compression is none: set source.compression: auto"
        )
    if kind.name == "other":
        if declared in (*WORKBOOK_FORMATS, "parquet"):
            found, text = looks_like(path)
            hint = "; set source.format: csv, json, jsonl or rss" if text else ""
            raise ctx.error(f"source.format is {declared} but {the_file} is {found}{hint}")
        return  # text: its parser judges it
    if kind.name == declared:
        return
    if kind.workbook and declared in WORKBOOK_FORMATS:  # the workbook reader reads every kind
        ctx.note(f"source.format is {declared} but {the_file} is {kind.label}: read as such")
        return
    hint = f": set source.format: {kind.format}" if kind.format else ""
    raise ctx.error(f"source.format is {declared} but {the_file} is {kind.label}{hint}")
