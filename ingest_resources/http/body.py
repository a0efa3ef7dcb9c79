"""A response's body, read raw and inflated here, in bounded steps: gzip and deflate, and br
when the installed brotli can bound its output. At most PIECE bytes come out of one inflating
step, counted against the inflated limit as they come: httpx inflates each network chunk
whole, and 64 KB of gzip can inflate to 64 MB."""

import functools
import importlib
import zlib
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Literal, Protocol

import httpx

from ingest_resources import progress
from ingest_resources.http.errors import FetchError
from ingest_resources.http.resilience import Deadline

PIECE = 1 << 16  # the most one inflating step produces, whatever the compression ratio


class _BadBody(Exception):
    """The body is not what its Content-Encoding says."""


class _Undecodable(Exception):
    """A Content-Encoding this client cannot inflate (the exception's text is its name)."""


class _Inflater(Protocol):
    name: str

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class _ZlibInflater:
    """gzip (several members allowed, RFC 1952) or deflate (zlib-wrapped, or raw as some servers
    send it, told apart by the first two bytes), never more than PIECE bytes from one call."""

    def __init__(self, name: Literal["gzip", "deflate"]):
        self.name: str = name
        self._wbits = 16 + zlib.MAX_WBITS if name == "gzip" else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(self._wbits)
        self._fed = False
        self._start: bytes | None = b"" if name == "deflate" else None  # until the flavour is known

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        if self._start is not None:
            data = self._start + data
            if len(data) < 2:
                self._start = data
                return
            self._start = None
            if not _zlib_header(data[:2]):
                self._wbits = -zlib.MAX_WBITS  # raw deflate, without the zlib wrapper
                self._zlib = zlib.decompressobj(self._wbits)
        try:
            yield from self._inflate(data)
        except zlib.error as exc:
            raise _BadBody(str(exc)) from None

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while True:
            piece = self._zlib.decompress(data, PIECE)
            if piece:
                yield piece
            if self._zlib.eof:
                data = self._zlib.unused_data
                if not (self.name == "gzip" and data.startswith(b"\x1f\x8b")):
                    return  # the end; trailing bytes that start no member are ignored, as gzip(1)
                self._zlib = zlib.decompressobj(self._wbits)  # the next gzip member
                continue
            data = self._zlib.unconsumed_tail
            if not data and len(piece) < PIECE:
                return  # all input taken, no output pending: wait for more input

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._zlib.eof:
            raise _BadBody("the body ends before its compressed stream does (cut short)")
        return iter(())


def _zlib_header(first: bytes) -> bool:
    """RFC 1950: deflate method, and the two bytes a multiple of 31."""
    return first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0


class _BrotliInflater:
    """br through brotli >= 1.2, whose Decompressor can bound the output of each call (to the
    limit rounded up to its buffer's block: about 96 KB for PIECE)."""

    def __init__(self, brotli: ModuleType, limit_keyword: str):
        self.name = "br"
        self._error = brotli.error
        self._brotli = brotli.Decompressor()
        self._limit = {limit_keyword: PIECE}
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        try:
            piece = self._brotli.process(data, **self._limit)
            while piece:  # the limit may have held output back: ask until none comes
                yield piece
                piece = self._brotli.process(b"", **self._limit)
        except self._error as exc:
            raise _BadBody(str(exc)) from None

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._brotli.is_finished():
            raise _BadBody("the body ends before its compressed stream does (cut short)")
        return iter(())


@functools.cache
def _bounded_brotli() -> tuple[ModuleType, str] | None:
    """brotli and the name of its output limit, if installed in a version that bounds each
    step's output (1.2+: `output_buffer_limit`; later sources name it `max_output_length`);
    else br is neither asked for nor accepted."""
    try:
        brotli = importlib.import_module("brotli")  # optional, and without type information
    except ImportError:
        return None
    for keyword in ("output_buffer_limit", "max_output_length"):
        try:
            brotli.Decompressor().process(b"", **{keyword: PIECE})
        except TypeError:
            continue
        if hasattr(brotli.Decompressor, "can_accept_more_data"):
            return brotli, keyword
    return None


ACCEPT_ENCODING = "gzip, deflate" + (", br" if _bounded_brotli() else "")
# compressions this client cannot inflate: refused rather than handed on as if they were data
UNDECODED = frozenset({"br", "zstd", "compress", "x-compress"})


class _Inflation:
    """The inflaters for a Content-Encoding list, the last applied first (RFC 9110 8.4)."""

    def __init__(self, header: str):
        self.header = header
        self.stages: list[_Inflater] = []
        for token in reversed([t.strip().lower() for t in header.split(",")]):
            if token in ("gzip", "x-gzip", "deflate"):
                self.stages.append(_ZlibInflater("deflate" if token == "deflate" else "gzip"))
            elif token == "br" and (brotli := _bounded_brotli()) is not None:
                self.stages.append(_BrotliInflater(*brotli))
            elif token in UNDECODED:
                raise _Undecodable(token)
            # identity, or a misconfigured server's `utf-8`: the bytes are read as they are,
            # as httpx does

    @property
    def inflates(self) -> bool:
        return bool(self.stages)

    @property
    def name(self) -> str:
        return "/".join(stage.name for stage in reversed(self.stages)) or "identity"

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, [data])

    def finish(self) -> Iterator[bytes]:
        for index, stage in enumerate(self.stages):
            yield from self._through(index + 1, stage.finish())

    def _through(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if index == len(self.stages):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(index + 1, self.stages[index].feed(piece))


def read_body(
    response: httpx.Response,
    *,
    max_bytes: int,
    inflated_limit: int,
    label: str,
    deadline: Deadline,
) -> bytes:
    """The body, raw bytes counted against max_bytes, inflated bytes against the inflated
    limit as each bounded piece comes out; the deadline checked after every chunk."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"{label}: response is {int(declared):,} bytes, over source.max_bytes {max_bytes:,}"
        )
    encoding = response.headers.get("content-encoding", "")
    try:
        inflation = _Inflation(encoding)
    except _Undecodable as exc:
        raise FetchError(
            f"{label}: the body is {exc}-encoded, which this client does not inflate (it "
            f"asks for {ACCEPT_ENCODING}); not retried"
        ) from None
    pieces: list[bytes] = []
    received = inflated = 0
    progress.expect_bytes(int(declared) if declared and declared.isdigit() else None)
    try:
        for chunk in response.iter_raw():
            received += len(chunk)
            progress.add(bytes_=len(chunk))
            if received > max_bytes:
                raise FetchError(
                    f"{label}: response exceeded source.max_bytes {max_bytes:,} bytes; refused"
                )
            for piece in inflation.feed(chunk):
                inflated += len(piece)
                _within_inflated_limit(
                    inflation, inflated, received, max_bytes, inflated_limit, label
                )
                pieces.append(piece)
            if deadline.left() <= 0:
                raise deadline.passed(label, f"; {received:,} bytes had arrived")
        for piece in inflation.finish():
            inflated += len(piece)
            _within_inflated_limit(inflation, inflated, received, max_bytes, inflated_limit, label)
            pieces.append(piece)
    except _BadBody as exc:
        raise FetchError(
            f"{label}: the body is not valid {inflation.name}: {exc} (Content-Encoding: "
            f"{encoding}); not retried"
        ) from None
    return b"".join(pieces)


def _within_inflated_limit(
    inflation: _Inflation, inflated: int, received: int, max_bytes: int, limit: int, label: str
) -> None:
    if inflation.inflates and inflated > limit:
        raise FetchError(
            f"{label}: the {inflation.name} body inflates past source.max_inflated_bytes "
            f"{limit:,} bytes from {received:,} bytes received "
            f"(source.max_bytes {max_bytes:,}); refused as a likely decompression bomb"
        )
