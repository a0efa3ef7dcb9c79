"""The text encoding of a CSV file: the declared one, read strictly, or `source.encoding: auto`,
detected by charset-normalizer from a bounded sample and noted on the run.

A file is read from a path (streamed) or from bytes (whole): `Input` is either, and every pass
over it here reads it in pieces of CHUNK bytes, so memory stays bounded by the piece.
"""

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from ingest_assets.parsers.base import ParseContext, ParseError
from ingest_assets.parsers.charset import guess

Input = Path | bytes
CHUNK = 1 << 20
SAMPLE_BYTES = 1 << 20  # what charset-normalizer is given at most
HEAD_BYTES = 4096  # of which the file's first lines
# a byte order mark decides (UTF-32's first: its little-endian mark starts with UTF-16's)
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
NON_ASCII_LINE = re.compile(rb"[^\n]*[\x80-\xff][^\n]*\n?")
SUGGESTION = "utf-8, utf-8-sig, latin-1, cp1252, ..., or auto to detect it"


def pieces(source: Input, size: int = CHUNK) -> Iterator[bytes]:
    """The input in pieces of at most `size` bytes."""
    if isinstance(source, bytes):
        for start in range(0, len(source), size):
            yield source[start : start + size]
        return
    with source.open("rb") as handle:
        while piece := handle.read(size):
            yield piece


def arrow_encoding(encoding: str) -> str:
    """The name Arrow's CSV reader transcodes from, with Python's strict decoder (UTF-8 too:
    a byte that is not the encoding fails as the bytes are read, never inside a row Arrow
    reports; Arrow skips a UTF-8 byte order mark)."""
    return codecs.lookup(encoding).name


def resolve_encoding(source: Input, ctx: ParseContext) -> str:
    """`source.encoding`, or with `auto` the encoding detected (noted on the run)."""
    declared = ctx.config.source.encoding
    if declared != "auto":
        return declared
    encoding, reason = detect_encoding(source, ctx)
    ctx.note(f"source.encoding auto: read as {encoding} ({reason})")
    return encoding


def _sample(source: Input) -> bytes:
    """The file's first lines (up to HEAD_BYTES, for context) and then its lines that hold a
    non-ASCII byte, up to SAMPLE_BYTES in all (ASCII lines say nothing about the encoding,
    and would drown the lines that do)."""
    sample = bytearray()
    carry = b""
    for piece in pieces(source):
        text = carry + piece
        if not sample:
            cut = text.rfind(b"\n", 0, HEAD_BYTES) + 1 or min(len(text), HEAD_BYTES)
            sample += text[:cut]
            text = text[cut:]
        cut = text.rfind(b"\n") + 1
        if cut == 0 and len(text) < SAMPLE_BYTES:  # one line so far: wait for its end
            carry = text
            continue
        text, carry = (text[:cut], text[cut:]) if cut else (text, b"")
        if text.isascii():
            continue
        for line in NON_ASCII_LINE.finditer(text):
            sample += line.group()
            if len(sample) >= SAMPLE_BYTES:
                return bytes(sample[:SAMPLE_BYTES])
    sample += carry
    return bytes(sample[:SAMPLE_BYTES])


def detect_encoding(source: Input, ctx: ParseContext) -> tuple[str, str]:
    """(encoding, how it was found): a byte order mark; ASCII or valid UTF-8; else
    charset-normalizer's guess from the file's first lines and its lines with non-ASCII bytes.
    Where it finds several encodings equally likely, the most common one is taken."""
    head = next(pieces(source, SAMPLE_BYTES), b"")
    for mark, encoding in BOMS:
        if head.startswith(mark):
            return encoding, "its byte order mark"
    sample = head if b"\x00" in head[:4096] else _sample(source)  # (UTF-16 without a BOM)
    if sample.isascii():
        return "utf-8", "every byte is ASCII"
    try:  # (incremental: a character cut by the sample's end is not an error)
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample)
        return "utf-8", "its non-ASCII bytes are valid UTF-8"
    except UnicodeDecodeError:
        pass
    guessed = guess(sample)
    if guessed is None:
        raise ctx.error(
            "source.encoding auto: charset-normalizer finds no text encoding that reads this "
            f"file (is it text?); set source.encoding ({SUGGESTION})"
        )
    chosen, evidence = guessed
    return chosen, (
        f"charset-normalizer's guess from {len(sample):,} bytes of its first lines and lines "
        f"with non-ASCII bytes, {evidence}"
    )


def decode_failure(source: Input, encoding: str, ctx: ParseContext) -> ParseError | None:
    """Where the input stops being `encoding` (the byte offset and line in the file), as a
    ParseError; None if it all decodes."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = lines = 0
    for piece in pieces(source):
        held = len(decoder.getstate()[0])  # bytes of a character cut by the last piece
        try:
            decoder.decode(piece)
        except UnicodeDecodeError as exc:
            start = max(exc.start - held, 0)
            line = lines + piece.count(b"\n", 0, start) + 1
            return _refusal(ctx, encoding, offset + start, line, piece[start : start + 4])
        offset += len(piece)
        lines += piece.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        held = len(decoder.getstate()[0])
        return _refusal(ctx, encoding, offset - held, lines + 1, b"(the end of the file)")
    return None


def _refusal(ctx: ParseContext, encoding: str, at: int, line: int, bad: bytes) -> ParseError:
    marked = [name for mark, name in BOMS if at == 0 and bad.startswith(mark)]
    if marked:
        return ctx.error(
            f"cannot decode as source.encoding {encoding!r}: the file starts with a {marked[0]} "
            f"byte order mark ({bad[:2]!r}); set source.encoding: {marked[0]} (or auto)"
        )
    if ctx.config.source.encoding == "auto":
        return ctx.error(
            f"source.encoding auto read this file as {encoding!r}, but byte {at} (line {line}) "
            f"is {bad!r}, not {encoding}: the guess was wrong; set source.encoding "
            f"({SUGGESTION})"
        )
    return ctx.error(
        f"cannot decode as source.encoding {encoding!r}: byte {at} (line {line}) is {bad!r}; "
        f"set source.encoding to the file's encoding ({SUGGESTION})"
    )
