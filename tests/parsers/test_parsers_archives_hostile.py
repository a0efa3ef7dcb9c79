"""Hostile compressed sources, built here byte by byte and run through raw -> parsed in a child
process under a 1 GB address-space limit (tests/test_hostile_archives.py: `attack`): each must
end in a ParseError naming the dataset, the file and the limit, with memory bounded."""

import functools
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.test_hostile_archives import assert_refused, attack, child_peak_mb, raw_zip

MIB = 1 << 20
CSV_HEAD = b"name,value\n"


@functools.cache
def zeros_deflated(mib: int) -> tuple[bytes, int]:
    """`mib` MiB of zeros after a CSV header, raw-deflated a block at a time: (data, CRC)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = bytes(MIB)
    parts, crc = [packer.compress(CSV_HEAD)], zlib.crc32(CSV_HEAD)
    for _ in range(mib):
        parts.append(packer.compress(block))
        crc = zlib.crc32(block, crc)
    parts.append(packer.flush())
    return b"".join(parts), crc


def gzip_bomb(path: Path) -> Path:
    """A gzip file of about 1 MB that inflates to 1 GiB (RFC 1952: header, deflate, trailer)."""
    body, crc = zeros_deflated(1024)
    size = (len(CSV_HEAD) + 1024 * MIB) % (1 << 32)
    path.write_bytes(
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + struct.pack("<II", crc, size)
    )
    return path


def zip_bomb(path: Path) -> Path:
    """One member that says what it is: 1 GiB inflated from about 1 MB."""
    body, crc = zeros_deflated(1024)
    return raw_zip(
        path, [("data.csv", body, len(CSV_HEAD) + 1024 * MIB, crc, zipfile.ZIP_DEFLATED)]
    )


def forged_size(path: Path) -> Path:
    """A member declaring 1,000 bytes inflated that holds 64 MiB."""
    body, crc = zeros_deflated(64)
    return raw_zip(path, [("data.csv", body, 1000, crc, zipfile.ZIP_DEFLATED)])


def zip_slip(path: Path) -> Path:
    data = CSV_HEAD + b"a,1\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../../etc/cron.d/data.csv", data)
    return path


def many_members(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for number in range(10_001):
            archive.writestr(f"{number}.csv", b"")
    return path


ATTACKS = {
    "gzip_over_the_limit": (
        gzip_bomb,
        "",
        ["the gzip file inflates past source.max_inflated_bytes 40,000,000 bytes from "],
    ),
    "gzip_ratio": (
        gzip_bomb,
        ", max_inflated_bytes: 4000000000",
        ["the gzip file inflates ", "(over 1000:1): refused as a decompression bomb"],
    ),
    "zip_declared_size": (
        zip_bomb,
        "",
        [
            f"member 'data.csv' of the zip declares {len(CSV_HEAD) + 1024 * MIB:,} bytes "
            "inflated, over source.max_inflated_bytes 40,000,000"
        ],
    ),
    "zip_ratio": (
        zip_bomb,
        ", max_inflated_bytes: 4000000000",
        [
            "member 'data.csv' of the zip inflates ",
            "(over 1000:1): refused as a decompression bomb",
        ],
    ),
    "zip_forged_size": (
        forged_size,
        "",
        ["member 'data.csv' of the zip is damaged or forged: Bad CRC-32 for file 'data.csv'"],
    ),
    "zip_slip": (
        zip_slip,
        "",
        [
            "the zip archive has a member named '../../../etc/cron.d/data.csv', a path outside "
            "the archive (zip-slip); refused"
        ],
    ),
    "many_members": (many_members, "", ["the zip archive holds 10,001 members, over 10,000"]),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_compressed_source_is_refused_with_bounded_memory(tmp_path, name):
    build, limits, expected = ATTACKS[name]
    source = build(tmp_path / ("bomb.csv.gz" if name.startswith("gzip") else "bomb.zip"))
    assert source.stat().st_size < 2_000_000  # (under the attack's source.max_bytes)
    outcome = attack(tmp_path, source, "csv", limits)
    message = assert_refused(outcome, source, *expected)
    assert child_peak_mb(outcome) < 400, (outcome.stdout, message)
