"""The text encoding of a feed or a JSON document: what the bytes say, else strict UTF-8.

In order: a BOM (or the NUL pattern of UTF-16/32 text without one, whose first character is
ASCII); `source.encoding` when the contract names one; what the document declares (a feed's
XML declaration, then the HTTP charset; JSON has no declaration and is UTF-8 by RFC 8259, so
there UTF-8 comes before the HTTP charset); then strict UTF-8. The first that decodes every
byte wins, and a declared one that did not is noted. When none does, the run refuses, naming
the byte, unless `source.encoding: auto`: then charset-normalizer guesses, and the guess is
noted. Text is never decoded with replacement characters: no mojibake in silence.
"""

import codecs
from dataclasses import dataclass
from email.message import Message

from ingest_assets.parsers.base import ParseContext, ParseError

AUTO = "auto"
DEFAULT = "UTF-8, the default"
BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
WIDE = ("utf-16", "utf-32", "utf_16", "utf_32", "ucs-2", "ucs-4", "utf16", "utf32")
DETECT_SAMPLE = 1 << 20  # bytes charset-normalizer looks at


@dataclass(frozen=True)
class Candidate:
    encoding: str  # a name Python knows
    why: str  # where it comes from, for notes and errors: "its BOM", "source.encoding", ...
    certain: bool = False  # a BOM or source.encoding: no other is tried after it


def bom(data: bytes) -> tuple[str, int] | None:
    """The encoding a BOM names, and the BOM's length."""
    return next(((name, len(mark)) for mark, name in BOMS if data.startswith(mark)), None)


def wide_by_nuls(head: bytes) -> str | None:
    """UTF-16 or UTF-32 without a BOM, told by where the NULs of its first (ASCII) character
    are, as RFC 4627 and the XML specification (appendix F) do: no 8-bit text starts with NUL."""
    if len(head) < 4:
        return None
    nul = [b == 0 for b in head[:4]]
    if nul[0] and nul[1] and nul[2] and not nul[3]:
        return "utf-32-be"
    if not nul[0] and nul[1] and nul[2] and nul[3]:
        return "utf-32-le"
    if nul[0] and not nul[1]:
        return "utf-16-be"
    if not nul[0] and nul[1]:
        return "utf-16-le"
    return None


def http_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header."""
    if not content_type:
        return None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return charset.strip() or None if isinstance(charset, str) else None


def known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def is_wide(name: str) -> bool:
    return codecs.lookup(name).name.replace("_", "-").startswith(("utf-16", "utf-32"))


def explicit_encoding(ctx: ParseContext) -> str | None:
    """`source.encoding` when the contract sets it to a name (not `auto`, not left unset)."""
    source = ctx.config.source
    if "encoding" not in source.model_fields_set or source.encoding == AUTO:
        return None
    return source.encoding


def candidates(
    head: bytes, ctx: ParseContext, declared: str | None = None, utf8_first: bool = False
) -> list[Candidate]:
    """The encodings to try, in order, for a document starting with `head` (its BOM
    included). `declared`: what the document says of itself (a feed's XML declaration).
    `utf8_first`: UTF-8 before the HTTP charset (JSON, which must be UTF-8)."""
    found = bom(head)
    if found:
        return [Candidate("utf-8-sig" if found[0] == "utf-8" else found[0], "its BOM", True)]
    wide = wide_by_nuls(head)
    if wide:
        return [Candidate(wide, "the NUL bytes of its first character", True)]
    explicit = explicit_encoding(ctx)
    if explicit:
        return [Candidate(explicit, "source.encoding", True)]
    listed: list[Candidate] = []
    if declared and not known(declared):
        ctx.note(f"the feed declares the encoding {declared!r}, which is not known: ignored")
    elif declared:  # (UTF-16/32 cannot declare itself in ASCII bytes)
        if is_wide(declared):
            ctx.note(f"the feed declares the encoding {declared!r} in 8-bit bytes: ignored")
        else:
            listed.append(Candidate(declared, "its XML declaration"))
    http = http_charset(ctx.content_type)
    if http and not known(http):
        ctx.note(f"the HTTP charset {http!r} is not a known encoding: ignored")
        http = None
    elif http and is_wide(http):
        ctx.note(f"the HTTP charset {http!r} does not fit the file's 8-bit bytes: ignored")
        http = None
    utf8 = Candidate("utf-8", DEFAULT)
    ordered = [utf8, *listed] if utf8_first else [*listed]
    if http:
        ordered.append(Candidate(http, "the HTTP charset"))
    ordered += [] if utf8_first else [utf8]
    return distinct(ordered)


def distinct(listed: list[Candidate]) -> list[Candidate]:
    """Each encoding once, where it first comes (a feed declaring utf-8 is tried once)."""
    seen: dict[str, Candidate] = {}
    for candidate in listed:
        seen.setdefault(codecs.lookup(candidate.encoding).name, candidate)
    return list(seen.values())


def describe_failure(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where `data` stops being the encoding: "byte 1,234 (line 5) is b'\\x93\\x8c'"."""
    line = data.count(b"\n", 0, exc.start) + 1
    return f"byte {exc.start:,} (line {line}) is {data[exc.start : exc.start + 4]!r}"


def refusal(ctx: ParseContext, what: str, tried: list[Candidate], failure: str) -> ParseError:
    if len(tried) == 1 and tried[0].why == DEFAULT:
        where = "a BOM, its XML declaration or" if what == "feed" else "a BOM or"
        found = f"the {what} names no encoding ({where} the HTTP charset) and is not UTF-8"
    else:
        found = "cannot read the {} as {}".format(
            what, ", nor as ".join(f"{c.encoding} ({c.why})" for c in tried)
        )
    return ctx.error(
        f"{found}: {failure}. Set source.encoding to its encoding (shift_jis, koi8-r, "
        "cp1252, ...) or to auto to detect it"
    )


# where charset-normalizer finds several encodings equally likely (cp1250 and cp1252 read
# Spanish text alike but for a few letters), the more common one is taken
COMMON = (
    *("utf_8", "cp1252", "latin_1", "iso8859_15", "cp1251", "koi8_r", "shift_jis", "cp932"),
    *("euc_jp", "gb18030", "big5", "euc_kr", "cp1250", "iso8859_2", "cp1253", "cp1254"),
)


def guess(sample: bytes) -> tuple[str, str] | None:
    """charset-normalizer's guess for `sample` (at most DETECT_SAMPLE bytes of it): (the
    encoding, the evidence in words), or None when it has none. Of encodings it finds equally
    likely, the most common is taken."""
    import charset_normalizer  # (only when asked for)

    results = list(charset_normalizer.from_bytes(sample[:DETECT_SAMPLE]))
    if not results:
        return None
    best = results[0]
    tied = [r for r in results if (r.chaos, r.coherence) == (best.chaos, best.coherence)]
    alike = [name for r in tied for name in [r.encoding, *r.could_be_from_charset]]
    common = [name for name in COMMON if name in alike]
    evidence = f"{best.language} text" if best.coherence else "a weak guess: no language recognised"
    return (common[0] if common else str(best.encoding)), evidence


def detect(sample: bytes, ctx: ParseContext, what: str) -> str | None:
    """charset-normalizer's guess for `sample` (noted), or None when it has none."""
    guessed = guess(sample)
    if guessed is None:
        return None
    encoding, evidence = guessed
    ctx.note(
        f"the {what} declares no encoding that reads it and is not UTF-8: its encoding was "
        f"detected as {encoding} (charset-normalizer), {evidence}; set source.encoding: "
        f"{encoding} to make it certain"
    )
    return encoding


def noted_fallback(ctx: ParseContext, what: str, failed: list[Candidate], used: Candidate) -> None:
    for candidate in failed:
        if candidate.why != DEFAULT:
            ctx.note(
                f"the {what} is not valid {candidate.encoding} ({candidate.why}): read as "
                f"{used.encoding} ({used.why})"
            )


def decode(
    data: bytes, ctx: ParseContext, what: str, declared: str | None = None, utf8_first: bool = False
) -> str:
    """`data` as text, by the rules above (a BOM is dropped)."""
    tried = candidates(data[:4], ctx, declared, utf8_first)
    failures: list[str] = []
    for index, candidate in enumerate(tried):
        try:
            text = codecs.decode(data, candidate.encoding)
        except UnicodeDecodeError as exc:
            failures.append(describe_failure(data, exc))
            continue
        noted_fallback(ctx, what, tried[:index], candidate)
        return text.removeprefix("\ufeff")
    guessed = detect(data, ctx, what) if auto(ctx, tried) else None
    if guessed is not None:
        try:
            return codecs.decode(data, guessed).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            failures.append(describe_failure(data, exc))
            tried.append(Candidate(guessed, "charset-normalizer's guess"))
    raise refusal(ctx, what, tried, failures[0])


def auto(ctx: ParseContext, tried: list[Candidate]) -> bool:
    """Whether to guess once the candidates failed: `source.encoding: auto`, and nothing
    certain (a BOM) said what the bytes are."""
    return ctx.config.source.encoding == AUTO and not tried[0].certain
