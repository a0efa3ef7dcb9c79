"""`rss`: RSS 0.91/1.0/2.0 and Atom feeds, one row per item, keyed by guid/id, link, or a hash."""

import calendar
import datetime as dt
import hashlib
import xml.sax

import feedparser
import pandas as pd

from ingest_assets.parsers.base import ROW_COLUMN, ParseContext


def _timestamp(entry: dict, field: str) -> str | None:
    parsed = entry.get(f"{field}_parsed")
    if not parsed:
        return None
    return dt.datetime.fromtimestamp(calendar.timegm(parsed), tz=dt.UTC).isoformat()


def _item_id(entry: dict) -> str:
    if entry.get("id"):
        return entry["id"]
    if entry.get("link"):
        return entry["link"]
    text = f"{entry.get('title', '')}\x1f{entry.get('summary', '')}"
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def parse_rss(data: bytes, ctx: ParseContext) -> pd.DataFrame:
    feed = feedparser.parse(data)
    problem = feed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException) or (feed.bozo and not feed.entries):
        line = getattr(problem, "getLineNumber", lambda: None)()
        where = f" at line {line}" if line else ""
        raise ctx.error(
            f"feed is not well-formed XML{where}: {problem}; it may be truncated "
            f"({len(feed.entries)} items read), so nothing from it is used"
        )
    if not feed.version:
        raise ctx.error("not an RSS or Atom feed (no <rss>, <rdf:RDF> or <feed> root)")
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
