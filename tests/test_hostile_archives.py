"""Hostile workbooks and feeds, built here byte by byte: each goes through the real raw -> parsed
path in a child process under a 1 GB address-space limit and a 30 s timeout (tests/bounded.py),
and must end in a clear error (a ParseError naming the dataset, the file, the part and the
limit), never in an abort, an exhausted machine or a message about truncation.

Before the guard: the huge-grid .xlsx and .xls, the shared-strings count and the deflate bomb
aborted the process ("memory allocation of ... bytes failed"); the feeds were refused as
"not well-formed XML ... it may be truncated".
"""

import io
import random
import struct
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import pytest

from ingest_assets.parsers.workbook_budget import Budget
from ingest_assets.parsers.workbook_xlsx_cells import SheetScan
from tests.bounded import Outcome, run_bounded

MEMORY_MB, TIMEOUT_S = 1024, 30
MAX_BYTES = 2_000_000  # the compressed file; source.inflated_limit is then 40,000,000 bytes
LIMIT_TEXT = "source.max_inflated_bytes (40,000,000 bytes; default 20 x source.max_bytes)"

# raw -> parsed, as a run does it; a ParseError exits 3 with its message. The child reports its
# own peak RSS (VmHWM: since exec, unlike the rusage of a child forked from a large pytest)
CHILD = textwrap.dedent(
    """
    import sys
    from ingest_assets import stages
    from ingest_resources.runtime import local_runtime
    from ingest_assets.contract import load_configs
    from ingest_assets.parsers import ParseError

    def peak_mb():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) // 1024 for l in status if l.startswith("VmHWM:"))

    config = load_configs([sys.argv[1]])[0]
    rt = local_runtime(sys.argv[2])
    stages.run_raw(rt, config, "all")
    try:
        staged, _ = stages.run_parse(rt, config, "all")
    except ParseError as exc:
        print("peak_mb", peak_mb())
        print(exc, file=sys.stderr)
        sys.exit(3)
    print("peak_mb", peak_mb())
    print("rows", staged.num_rows)
    """
)


def child_peak_mb(outcome: Outcome) -> int:
    return int(outcome.stdout.split("peak_mb")[1].split()[0])


# --- workbook parts --------------------------------------------------------------------------

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>"
    ),
}
SHEET_HEAD = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>'
SHEET_TAIL = "</sheetData></worksheet>"
HEADER_ROW = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>value</t></is></c></row>'
)


def sheet(rows: str) -> str:
    return SHEET_HEAD + HEADER_ROW + rows + SHEET_TAIL


def xlsx(path: Path, sheet_xml: str, **extra: str) -> Path:
    """A workbook of one sheet (and any other parts), as zipfile writes it."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in {**PACKAGE_PARTS, "xl/worksheets/sheet1.xml": sheet_xml, **extra}.items():
            archive.writestr(name, text)
    return path


def raw_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip written field by field, so that a member can declare any size and CRC:
    members are (name, deflated bytes, declared size, declared CRC, method)."""
    local, directory = bytearray(), bytearray()
    for name, body, size, crc, method in members:
        encoded = name.encode()
        fields = struct.pack(
            "<HHHHHIIIHH", 20, 0, method, 0, 0, crc, len(body), size, len(encoded), 0
        )
        directory += (
            b"PK\x01\x02"
            + struct.pack("<H", 20)
            + fields
            + struct.pack("<HHHII", 0, 0, 0, 0, len(local))
            + encoded
        )
        local += b"PK\x03\x04" + fields + encoded + body
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(directory), len(local), 0)  # fmt: skip
    path.write_bytes(bytes(local + directory + end))
    return path


def deflated(text: str) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(text.encode()) + packer.flush()


def package_members() -> list[tuple[str, bytes, int, int, int]]:
    return [
        (name, deflated(text), len(text.encode()), zlib.crc32(text.encode()), zipfile.ZIP_DEFLATED)
        for name, text in PACKAGE_PARTS.items()
    ]


def repeated_sheet(unit: bytes, repeats: int) -> tuple[bytes, int, int, bytes]:
    """A sheet of `unit` x (repeats x 1 MiB), deflated a block at a time (a full flush makes
    every block's bytes the same): its deflate data, size, CRC and first 64 KiB inflated."""
    head, tail = (SHEET_HEAD + HEADER_ROW + '<row r="2">').encode(), b"</row>" + SHEET_TAIL.encode()
    block = unit * ((1 << 20) // len(unit))
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    packed_head = packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)
    packed_block = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    body = packed_head + packed_block * repeats + packer.compress(tail) + packer.flush()
    crc = zlib.crc32(head)
    for _ in range(repeats):
        crc = zlib.crc32(block, crc)
    return body, len(head) + len(block) * repeats + len(tail), zlib.crc32(tail, crc), head + block


def deflate_bomb(path: Path) -> Path:
    """512 MiB of cells (at A2, over and over) in about 0.5 MB, declared honestly."""
    body, size, crc, _ = repeated_sheet(b'<c r="A2"><v>1</v></c>', 512)
    sheet_member = ("xl/worksheets/sheet1.xml", body, size, crc, zipfile.ZIP_DEFLATED)
    return raw_zip(path, [*package_members(), sheet_member])


def forged_size(path: Path) -> Path:
    """64 MiB of cells declared as 100,000 bytes, with the CRC of those first 100,000 bytes:
    zipfile reads 100,000 bytes and finds nothing wrong."""
    body, _, _, start = repeated_sheet(b'<c r="A2"><v>1</v></c>', 64)
    forged = zlib.crc32(start[:100_000])
    sheet_member = ("xl/worksheets/sheet1.xml", body, 100_000, forged, zipfile.ZIP_DEFLATED)
    return raw_zip(path, [*package_members(), sheet_member])


def ratio_bomb(path: Path) -> Path:
    """A 64 MiB member of spaces in 64 KB (over 1000:1)."""
    body, size, crc, _ = repeated_sheet(b" ", 64)
    member = ("xl/media/padding.bin", body, size, crc, zipfile.ZIP_DEFLATED)
    sheet_text = sheet("")
    sheet_member = (
        "xl/worksheets/sheet1.xml",
        deflated(sheet_text),
        len(sheet_text),
        zlib.crc32(sheet_text.encode()),
        zipfile.ZIP_DEFLATED,
    )
    return raw_zip(path, [*package_members(), sheet_member, member])


def huge_grid(path: Path) -> Path:
    """1.6 KB: a value in A2 and one in XFD1048576, a grid of 2^34 cells (512 GiB in Rust)."""
    rows = '<row r="2"><c r="A2"><v>1</v></c></row><row r="1048576"><c r="XFD1048576"><v>2</v></c></row>'
    return xlsx(path, sheet(rows))


def implicit_positions(path: Path) -> Path:
    """Cells without `r` take the next column: 16,384 of them in row 1048576 reach XFD, in
    about 2 KB (calamine's rules, not the references, decide where they land)."""
    cells = "<c><v>1</v></c>" * 16_384
    return xlsx(path, SHEET_HEAD + f'<row r="1048576">{cells}</row>' + SHEET_TAIL)


def many_cells(path: Path) -> Path:
    """32 MiB of cells at one position, within the inflated limit: 1.5 million cells for
    calamine's cell list (at 1.3 GB, 59 million: 2.5 GB)."""
    body, size, crc, _ = repeated_sheet(b'<c r="A2"><v>1</v></c>', 32)
    sheet_member = ("xl/worksheets/sheet1.xml", body, size, crc, zipfile.ZIP_DEFLATED)
    return raw_zip(path, [*package_members(), sheet_member])


def shared_strings_count(path: Path) -> Path:
    """Shared strings declaring uniqueCount=4,000,000,000: calamine reserves 96 GB for them."""
    strings = f'<sst xmlns="{MAIN_NS}" count="1" uniqueCount="4000000000"><si><t>a</t></si></sst>'
    return xlsx(
        path,
        sheet('<row r="2"><c r="A2" t="s"><v>0</v></c></row>'),
        **{"xl/sharedStrings.xml": strings},
    )


def fine_workbook(path: Path) -> Path:
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>s{n}</t></is></c><c r="B{n}"><v>{n}.5</v></c></row>'
        for n in range(2, 12)
    )
    return xlsx(path, sheet(rows))


# --- an .xls: an OLE compound file holding a BIFF8 workbook stream ---------------------------

END_OF_CHAIN, FREE, FAT_SECTOR, NO_STREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def _record(kind: int, body: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(body)) + body


def _bof(kind: int) -> bytes:
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0x0DBB, 0x07CC, 0, 0x0206))


def _sheet_entry(offset: int, name: bytes = b"Sheet1") -> bytes:
    return _record(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(name), 0) + name)


def _workbook_stream(cells: list[tuple[int, int, float]]) -> bytes:
    """Globals (BOF, one BoundSheet, EOF), then the sheet: BOF, NUMBER records, EOF."""
    globals_length = len(_bof(5) + _sheet_entry(0) + _record(0x000A))
    numbers = b"".join(_record(0x0203, struct.pack("<HHHd", r, c, 0, v)) for r, c, v in cells)
    return (
        _bof(5)
        + _sheet_entry(globals_length)
        + _record(0x000A)
        + _bof(0x10)
        + numbers
        + _record(0x000A)
    )


def _directory_entry(name: str, kind: int, start: int, size: int, child: int = NO_STREAM) -> bytes:
    encoded = (name + "\0").encode("utf-16-le") if name else b""
    return (
        encoded.ljust(64, b"\0")
        + struct.pack("<HBBIII", len(encoded), kind, 1, NO_STREAM, NO_STREAM, child)
        + bytes(20)
        + bytes(16)
        + struct.pack("<IQ", start, size)
    )


def xls(path: Path, cells: list[tuple[int, int, float]]) -> Path:
    """Sector 0 the allocation table, 1 the directory, 2.. the Workbook stream (4 KiB at least,
    so it is not in the mini stream)."""
    stream = _workbook_stream(cells).ljust(4096, b"\0")
    stream += bytes(-len(stream) % 512)
    sectors = len(stream) // 512
    fat = [FAT_SECTOR, END_OF_CHAIN] + list(range(3, 2 + sectors)) + [END_OF_CHAIN]
    fat += [FREE] * (128 - len(fat))
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<9I", 0, 1, 1, 0, 4096, END_OF_CHAIN, 0, END_OF_CHAIN, 0)
        + struct.pack("<109I", 0, *[FREE] * 108)
    )
    directory = (
        _directory_entry("Root Entry", 5, END_OF_CHAIN, 0, child=1)
        + _directory_entry("Workbook", 2, 2, len(stream))
        + _directory_entry("", 0, 0, 0) * 2
    )
    path.write_bytes(header + struct.pack("<128I", *fat) + directory + stream)
    return path


# --- feeds -----------------------------------------------------------------------------------

FEED_BODY = (
    '<rss version="2.0"><channel><title>t</title><item><title>{title}</title>'
    "<link>https://example.org/1</link></item></channel></rss>"
)
XXE_FEED = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    + FEED_BODY.format(title="&xxe;")
)
LAUGHS_FEED = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
    + "]>\n"
    + FEED_BODY.format(title="&lol9;")
)


# --- running an attack -----------------------------------------------------------------------


def dataset(tmp_path: Path, source: Path, fmt: str, limits: str = "", extra: str = "") -> Path:
    config = tmp_path / "hostile.yaml"
    config.write_text(
        "dataset_id: HOSTILE\n"
        f"source: {{kind: file, path: {source}, format: {fmt}, max_bytes: {MAX_BYTES}{limits}}}\n"
        "normalize: {primary_keys: [name]}\n" + extra
    )
    return config


def attack(tmp_path: Path, source: Path, fmt: str, limits: str = "", extra: str = "") -> Outcome:
    config = dataset(tmp_path, source, fmt, limits, extra)
    return run_bounded(
        [sys.executable, "-c", CHILD, str(config), str(tmp_path / "store")],
        memory_mb=MEMORY_MB,
        timeout_s=TIMEOUT_S,
    )


def assert_refused(outcome: Outcome, source: Path, *expected: str) -> str:
    message = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
    assert outcome.returncode == 3, (outcome.returncode, outcome.output[-3000:])
    assert message.startswith(f"dataset HOSTILE: {source}: "), message
    for text in expected:
        assert text in message, (text, message)
    assert "truncated" not in message
    return message


WORKBOOK_ATTACKS = {
    "huge_grid": (
        huge_grid,
        "xlsx",
        [
            "sheet part 'xl/worksheets/sheet1.xml' has a value at XFD1048576",
            "17,179,869,184 cells (1,048,576 rows x 16,384 columns), over the 400,000 cells that "
            + LIMIT_TEXT,
        ],
    ),
    "deflate_bomb": (
        deflate_bomb,
        "xlsx",
        [
            "the workbook's members declare 536,866,401 bytes inflated (the largest, "
            "'xl/worksheets/sheet1.xml', 536,865,049 bytes), over " + LIMIT_TEXT,
        ],
    ),
    "forged_size": (
        forged_size,
        "xlsx",
        [
            "member 'xl/worksheets/sheet1.xml' inflates past the 100,000 bytes it declares: its sizes are forged"
        ],
    ),
    "ratio_bomb": (
        ratio_bomb,
        "xlsx",
        ["member 'xl/media/padding.bin' inflates", "(over 1000:1): a decompression bomb"],
    ),
    "implicit_positions": (
        implicit_positions,
        "xlsx",
        ["sheet part 'xl/worksheets/sheet1.xml' has a value at XFD1048576"],
    ),
    "many_cells": (
        many_cells,
        "xlsx",
        ["member 'xl/worksheets/sheet1.xml' holds ", " cells with values or more (counted so far)"],
    ),
    "shared_strings_count": (
        shared_strings_count,
        "xlsx",
        ["member 'xl/sharedStrings.xml' declares uniqueCount=4,000,000,000 shared strings"],
    ),
    "xls_huge_grid": (
        lambda path: xls(path, [(0, 0, 1.0), (65535, 65535, 2.0)]),
        "xls",
        [
            ".xls sheet 'Sheet1' has a value at CRXP65536",
            "over the 400,000 cells that " + LIMIT_TEXT,
        ],
    ),
}


@pytest.mark.parametrize("name", list(WORKBOOK_ATTACKS))
def test_hostile_workbook_is_refused_with_bounded_memory(tmp_path, name):
    build, fmt, expected = WORKBOOK_ATTACKS[name]
    source = build(tmp_path / f"{name}.{fmt}")
    # the ratio bomb's limit is raised so that only its ratio refuses it
    limits = ", max_inflated_bytes: 200000000" if name == "ratio_bomb" else ""
    outcome = attack(tmp_path, source, fmt, limits)
    message = assert_refused(outcome, source, *expected, "refused before reading")
    assert child_peak_mb(outcome) < 400, (outcome.stdout, message)


def test_series_map_refuses_the_huge_grid_too(tmp_path):
    source = huge_grid(tmp_path / "grid.xlsx")
    series = (
        "parse: {plugin: series_map}\n"
        "parse_config:\n  series_map:\n"
        "    - {internal_series_code: S, date_col: A, value_col: B}\n"
    )
    config = dataset(tmp_path, source, "xlsx", extra=series).read_text()
    (tmp_path / "hostile.yaml").write_text(config.replace("[name]", "[obs_time]"))
    outcome = run_bounded(
        [sys.executable, "-c", CHILD, str(tmp_path / "hostile.yaml"), str(tmp_path / "store")],
        memory_mb=MEMORY_MB,
        timeout_s=TIMEOUT_S,
    )
    assert_refused(outcome, source, "has a value at XFD1048576")


def test_a_fine_workbook_is_still_read(tmp_path):
    source = fine_workbook(tmp_path / "fine.xlsx")
    outcome = attack(tmp_path, source, "xlsx")
    assert outcome.returncode == 0, outcome.output[-3000:]
    assert outcome.stdout.split()[-2:] == ["rows", "10"]


@pytest.mark.parametrize(
    ("name", "feed", "entity", "line"),
    [("xxe", XXE_FEED, "xxe", 2), ("billion_laughs", LAUGHS_FEED, "lol0", 3)],
)
def test_entity_declarations_in_a_feed_are_refused_by_name(tmp_path, name, feed, entity, line):
    source = tmp_path / f"{name}.xml"
    source.write_text(feed)
    outcome = attack(tmp_path, source, "rss")
    assert_refused(
        outcome,
        source,
        f"feed declares the entity '{entity}' in its DOCTYPE (line {line})",
        "entity declarations are refused (XXE / entity expansion)",
    )


def test_ingest_run_names_the_refusal(tmp_path):
    """The command line (Dagster underneath): exit 1 and the step's message, not an abort."""
    source = huge_grid(tmp_path / "grid.xlsx")
    configs = tmp_path / "configs"
    configs.mkdir()
    dataset(tmp_path, source, "xlsx").rename(configs / "hostile.yaml")
    outcome = run_bounded(
        ["ingest", "run", "HOSTILE"],
        memory_mb=MEMORY_MB,
        timeout_s=TIMEOUT_S,
        env={
            "INGEST_CONFIG_DIR": str(configs),
            "INGEST_STORE_ROOT": str(tmp_path / "store"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        },
    )
    assert outcome.returncode == 1, outcome.output[-3000:]
    assert f"HOSTILE__parsed: dataset HOSTILE: {source}: sheet part" in outcome.stderr
    assert "has a value at XFD1048576" in outcome.stderr


# --- the scan agrees with calamine -----------------------------------------------------------


def _letters(column: int) -> str:
    text = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        text = chr(65 + rest) + text
    return text


def _random_attribute(rng: random.Random, name: str, value: object) -> str:
    quote = rng.choice(['"', '"', "'"])
    space = rng.choice([" ", "\n", "\t"])
    return f"{space}{name}{rng.choice(['=', ' = '])}{quote}{value}{quote}"


def _random_cell(rng: random.Random) -> str:
    prefix = "x:" if rng.random() < 0.15 else ""
    attributes = ""
    if rng.random() < 0.7:
        reference = f"{_letters(rng.randint(0, 30))}{rng.randint(1, 40)}"
        attributes = _random_attribute(
            rng, "r", reference.lower() if rng.random() < 0.1 else reference
        )
    if rng.random() < 0.3:
        attributes += _random_attribute(rng, "s", 1)
    if rng.random() < 0.08:  # a second `r`, which calamine takes
        attributes += (
            rng.choice([" ", ""]) + f'r="{_letters(rng.randint(0, 30))}{rng.randint(1, 40)}"'
        )
    kind = rng.random()
    if kind < 0.2:
        return f"<{prefix}c{attributes}/>"
    if kind < 0.3:
        return f"<{prefix}c{attributes} t='inlineStr'><{prefix}is><{prefix}t>x</{prefix}t></{prefix}is></{prefix}c>"
    return f"<{prefix}c{attributes}><{prefix}v>{rng.randint(0, 9)}</{prefix}v></{prefix}c>"


def _random_sheet(rng: random.Random) -> str:
    rows = []
    for _ in range(rng.randint(1, 6)):
        prefix = "x:" if rng.random() < 0.15 else ""
        number = _random_attribute(rng, "r", rng.randint(1, 40)) if rng.random() < 0.6 else ""
        if rng.random() < 0.12:
            rows.append(f"<{prefix}row{number}/>")
            continue
        cells = "".join(_random_cell(rng) for _ in range(rng.randint(0, 5)))
        rows.append(f"<{prefix}row{number}>{cells}</{prefix}row>")
    return f'<worksheet xmlns="{MAIN_NS}" xmlns:x="{MAIN_NS}"><sheetData>{"".join(rows)}</sheetData></worksheet>'


def test_the_scan_never_finds_less_than_calamine_reads():
    """Small random sheets (implicit positions, prefixes, lowercase and repeated references,
    empty cells, odd spacing), fed in random pieces: the last row and column the scan finds
    are never before calamine's (small grids: calamine reads them safely in-process)."""
    from python_calamine import CalamineWorkbook

    rng = random.Random(16)
    compared = 0
    for _ in range(300):
        text = _random_sheet(rng)
        book = io.BytesIO()
        with zipfile.ZipFile(book, "w") as archive:
            for name, part in {**PACKAGE_PARTS, "xl/worksheets/sheet1.xml": text}.items():
                archive.writestr(name, part)
        end = CalamineWorkbook.from_filelike(io.BytesIO(book.getvalue())).get_sheet_by_index(0).end
        for exact in (False, True):
            scan = SheetScan("sheet", Budget(10**12), exact=exact)
            data = text.encode()
            cuts = sorted(rng.sample(range(1, len(data)), min(20, len(data) - 1)))
            for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
                scan.feed(data[start:stop])
            if scan.finish() and not exact:
                continue  # the fast scan handed the sheet to the exact one
            compared += 1
            if end is not None:
                assert scan.last_row >= end[0] and scan.last_column >= end[1], (end, text)
    assert compared > 300
