"""`rss`: RSS 0.91/1.0/2.0 and Atom feeds, one row per item, keyed by guid/id, link, or a hash.

Before feedparser sees a feed: its entity declarations are refused (XXE, entity expansion);
it is decoded here (charset: its BOM, `source.encoding` when set, its XML declaration, the
HTTP charset, strict UTF-8, `auto`'s guess) and handed over as UTF-8 saying so, so that
feedparser's own guessing (which reads a Shift_JIS feed without a declaration as
iso-8859-2) never runs; and its XML is checked (feed_xml): what feedparser's lenient parser
reads of a feed with a recoverable problem is published with the problem noted, anything
else is refused.
"""

import calendar
import codecs
import datetime as dt
import hashlib
import re
import xml.sax
from collections.abc import Mapping
from typing import Any

import feedparser
import pandas as pd

from ingest_assets.parsers.base import ROW_COLUMN, ParseContext
from ingest_assets.parsers.charset import decode
from ingest_assets.parsers.feed_xml import check

# an item as feedparser gives it (a FeedParserDict: no type information)
Entry = Mapping[str, Any]


def _timestamp(entry: Entry, field: str) -> str | None:
    parsed = entry.get(f"{field}_parsed")
    if not parsed:
        return None
    return dt.datetime.fromtimestamp(calendar.timegm(parsed), tz=dt.UTC).isoformat()


def _item_id(entry: Entry) -> str:
    given: str | None = entry.get("id") or entry.get("link")
    if given:
        return given
    text = f"{entry.get('title', '')}\x1f{entry.get('summary', '')}"
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


ROOT_START = re.compile(r"<[^!?/]")  # the first tag that is not a declaration, PI or comment
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
ENTITY_DECLARATION = re.compile(r"<!ENTITY\s+(?:%\s*)?([^\s>]*)", re.IGNORECASE)
INTERNAL_SUBSET = re.compile(r"<!DOCTYPE[^\[>]*\[", re.IGNORECASE)
PROLOG_BYTES = 1 << 20  # a feed's root element comes long before
DECLARED_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']"""
)
ENCODING_ATTRIBUTE = re.compile(r"""^(\s*<\?xml\b[^>]*?)\s+encoding\s*=\s*(["'])[^"']*\2""")
AS_UTF8 = {"content-type": "application/xml; charset=utf-8"}  # what feedparser is told
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _prolog(data: bytes) -> str:
    """What comes before the root element, as text, comments blanked (a DOCTYPE can only be
    there). UTF-16 and UTF-32 by their BOM or their `<` (no BOM); every other encoding a
    feed uses is ASCII in its markup, so latin-1 reads the declarations whatever it is."""
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    if encoding is None and data[:4] in (b"<\0?\0", b"\0<\0?"):
        encoding = "utf-16-le" if data[0] == 0x3C else "utf-16-be"
    text = data[:PROLOG_BYTES].decode(encoding or "latin-1", errors="replace")
    text = COMMENT.sub(lambda comment: re.sub(r"[^\n]", " ", comment.group()), text)
    root = ROOT_START.search(text)
    return text[: root.start()] if root else text


def _refuse_entity_declarations(data: bytes, ctx: ParseContext) -> None:
    """An entity declaration is how XXE (`SYSTEM "file:///etc/passwd"`) and entity expansion
    (billion laughs) work, and a feed never needs one: refused by name before any parser
    sees the feed (feedparser would drop the declarations and then fail on the undefined
    references, which reads like a truncated download). A DOCTYPE naming an external DTD
    only, as RSS 0.91 does, is kept: nothing fetches it."""
    prolog = _prolog(data)
    declared = ENTITY_DECLARATION.search(prolog)
    subset = INTERNAL_SUBSET.search(prolog)
    where = declared or subset
    if where is None:
        return
    line = prolog.count("\n", 0, where.start()) + 1
    if declared:
        found = f"declares the entity {declared.group(1)!r} in its DOCTYPE (line {line})"
        refused = "entity declarations are refused"
    else:
        found = f"has an internal DTD subset ([...]) in its DOCTYPE (line {line})"
        refused = "DTD declarations, where entities are declared, are refused"
    raise ctx.error(f"feed {found}: {refused} (XXE / entity expansion), so nothing from it is used")


def _utf8(data: bytes, ctx: ParseContext) -> bytes:
    """The feed as UTF-8, its XML declaration no longer naming another encoding."""
    declared = DECLARED_ENCODING.match(data[:1024])
    text = decode(data, ctx, "feed", declared.group(1).decode("ascii") if declared else None)
    return ENCODING_ATTRIBUTE.sub(r"\1", text, count=1).encode("utf-8")


def _read(data: bytes, ctx: ParseContext) -> Any:
    """feedparser's reading of the feed, if it is one to publish."""
    findings = check(data)
    if findings.error:
        raise ctx.error(
            f"feed is not well-formed XML at {findings.error}, so nothing from it is used"
        )
    feed = feedparser.parse(data, response_headers=AS_UTF8)
    problem = feed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException) and not findings.notes:  # (expat passed it)
        line = getattr(problem, "getLineNumber", lambda: None)()
        where = f" at line {line}" if line else ""
        raise ctx.error(f"feed is not well-formed XML{where}: {problem}; nothing from it is used")
    if findings.open_at_end and not feed.entries:
        line, closing = findings.open_at_end
        raise ctx.error(
            f"feed is not well-formed XML at line {line}: it ends before its closing {closing} "
            "and has no items: it may be truncated, so nothing from it is used"
        )
    if not feed.version:
        raise ctx.error("not an RSS or Atom feed (no <rss>, <rdf:RDF> or <feed> root)")
    for note in findings.notes:
        ctx.note(f"the feed {note}")
    if feed.bozo and not isinstance(problem, xml.sax.SAXException):
        ctx.note(f"feedparser flagged the feed: {type(problem).__name__}: {problem}")
    return feed


def parse_rss(data: bytes, ctx: ParseContext) -> pd.DataFrame:
    _refuse_entity_declarations(data, ctx)
    feed = _read(_utf8(data, ctx), ctx)
    feed_title = feed.feed.get("title")
    rows = []
    for number, entry in enumerate(feed.entries, start=1):
        content = entry.get("content")
        rows.append(
            {
                ROW_COLUMN: number,
                "id": _item_id(entry),
                "title": entry.get("title"),
                "link": entry.get("link"),
                "summary": entry.get("summary"),
                "content": content[0].get("value") if content else None,
                "author": entry.get("author"),
                "categories": ",".join(t.get("term", "") for t in entry.get("tags", [])) or None,
                "published": _timestamp(entry, "published"),
                "updated": _timestamp(entry, "updated"),
                "feed_title": feed_title,
            }
        )
    columns = [ROW_COLUMN, "id", "title", "link", "summary", "content", "author", "categories"]
    columns += ["published", "updated", "feed_title"]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for name in ("published", "updated"):
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601").astype(
            "datetime64[us, UTC]"
        )
    return frame
