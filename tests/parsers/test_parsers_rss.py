"""`rss` on real feeds: Atom (Reddit, GitHub), RSS 2.0 (BBC), RSS 0.91 in ISO-8859-1, and a
truncated server response."""

import datetime as dt
import re

import pyarrow as pa
import pytest

from ingest_assets.parsers import ParseError

REDDIT = "rss/reddit_atom_mediarss_25_entries.xml"
GITHUB = "rss/github_releases_feed-rs.atom.xml"
BBC = "rss/bbc_in_our_time_podcast.rss.xml"
DIVAL = "rss/dival_rss091_iso8859_missing_fields.xml"
REUTERS = "malformed/reuters_rss_truncated_invalid.xml"

RSS_COLUMNS = [
    "_row",
    "id",
    "title",
    "link",
    "summary",
    "content",
    "author",
    "categories",
    "published",
    "updated",
    "feed_title",
]
UTC = dt.UTC


def _entries(xml: str) -> list[str]:
    return re.findall(r"<entry>(.*?)</entry>", xml, flags=re.S)


def _iso_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture(scope="module")
def reddit(parse, fixture_file) -> pa.Table:
    return parse(fixture_file(REDDIT), {"format": "rss"})


def test_reddit_atom_25_entries(reddit):
    assert reddit.column_names == RSS_COLUMNS
    assert reddit.num_rows == 25
    assert reddit.schema.field("published").type == pa.timestamp("us", tz="UTC")
    assert reddit.schema.field("updated").type == pa.timestamp("us", tz="UTC")
    first = reddit.slice(0, 1).to_pylist()[0]
    assert first["_row"] == 1
    assert first["id"] == "t3_157kyrd"
    assert first["title"] == "Any reason to keep 1G connections to my servers?"
    assert first["link"] == (
        "https://ud.reddit.com/r/homelab/comments/157kyrd/"
        "any_reason_to_keep_1g_connections_to_my_servers/"
    )
    assert first["author"] == "/u/Remarkable_Housing61"
    assert first["categories"] == "homelab"
    assert first["published"] == dt.datetime(2023, 7, 23, 17, 38, 30, tzinfo=UTC)
    assert first["feed_title"] == "newest submissions : homelab"
    assert "I recently acquired a 40G switch" in first["content"]
    last = reddit.slice(24, 1).to_pylist()[0]
    assert last["id"] == "t3_157awnr"
    assert last["published"] == dt.datetime(2023, 7, 23, 10, 4, 53, tzinfo=UTC)


def test_reddit_ids_and_times_match_the_feed(reddit, fixture_file):
    entries = _entries(fixture_file(REDDIT).read_text(encoding="utf-8"))
    assert len(entries) == 25
    ids = [re.search(r"<id>([^<]+)</id>", e).group(1) for e in entries]
    published = [_iso_utc(re.search(r"<published>([^<]+)<", e).group(1)) for e in entries]
    updated = [_iso_utc(re.search(r"<updated>([^<]+)<", e).group(1)) for e in entries]
    assert all(i.startswith("t3_") for i in ids)
    assert reddit.column("id").to_pylist() == ids
    assert len(set(ids)) == 25
    assert reddit.column("published").to_pylist() == published
    assert reddit.column("updated").to_pylist() == updated


def test_github_releases_offsets_converted_to_utc(parse, fixture_file):
    path = fixture_file(GITHUB)
    table = parse(path, {"format": "rss"})
    assert table.num_rows == 4
    rows = table.to_pylist()
    assert rows[0]["id"] == "tag:github.com,2008:Repository/90976281/v0.2.0"
    assert rows[0]["title"] == "0.2.0"
    assert rows[0]["link"] == "https://github.com/feed-rs/feed-rs/releases/tag/v0.2.0"
    assert rows[0]["author"] == "markpritchard"
    assert rows[0]["feed_title"] == "Release notes from feed-rs"
    # <updated>2020-01-19T16:08:59+11:00</updated>
    assert rows[0]["updated"] == dt.datetime(2020, 1, 19, 5, 8, 59, tzinfo=UTC)
    # <updated>2017-07-07T21:47:46+10:00</updated>
    assert rows[1]["updated"] == dt.datetime(2017, 7, 7, 11, 47, 46, tzinfo=UTC)
    # the html content is unescaped
    assert rows[0]["content"].startswith("<p>A range of maintenance work, including:</p>")
    entries = _entries(path.read_text(encoding="utf-8"))
    assert [r["updated"] for r in rows] == [
        _iso_utc(re.search(r"<updated>([^<]+)<", e).group(1)) for e in entries
    ]
    assert [r["id"] for r in rows] == [re.search(r"<id>([^<]+)<", e).group(1) for e in entries]
    assert all(r["published"] is None for r in rows)  # the feed has no <published>


def test_timestamp_columns_keep_their_type_when_a_feed_has_none(parse, fixture_file):
    """`published`/`updated` are UTC timestamps; a feed without them (GitHub has no
    <published>, the RSS 0.91 feed has no dates at all) must not turn them into another type,
    or the same dataset's parsed schema changes from one fetch to the next."""
    expected = pa.timestamp("us", tz="UTC")
    for name in (GITHUB, DIVAL):
        table = parse(fixture_file(name), {"format": "rss"})
        assert table.schema.field("published").type == expected, (name, table.schema)
        assert table.schema.field("updated").type == expected, (name, table.schema)


def test_bbc_rss2_guid_and_rfc822_pubdate(parse, fixture_file):
    table = parse(fixture_file(BBC), {"format": "rss"})
    assert table.num_rows == 1
    item = table.to_pylist()[0]
    assert item["id"] == "urn:bbc:podcast:m000sjxt"  # <guid isPermaLink="false">
    assert item["title"] == "Marcus Aurelius"
    assert item["link"] == "http://www.bbc.co.uk/programmes/m000sjxt"
    # <pubDate>Thu, 25 Feb 2021 10:15:00 +0000</pubDate>
    assert item["published"] == dt.datetime(2021, 2, 25, 10, 15, tzinfo=UTC)
    assert item["feed_title"] == "In Our Time"
    assert item["summary"] == "Melvyn Bragg and guests discuss..."
    assert item["author"] == "BBC Radio 4"


def test_rss091_latin1_without_guid_or_link_gets_a_content_hash(parse, fixture_file):
    path = fixture_file(DIVAL)
    data = path.read_bytes()
    assert b"Diputaci\xf3n" in data  # stored as ISO-8859-1
    table = parse(path, {"format": "rss"})
    assert table.num_rows == 1
    item = table.to_pylist()[0]
    assert re.fullmatch(r"sha1:[0-9a-f]{40}", item["id"])
    assert item["title"] == (
        "Oferta de Empleo Público // 3 PROFESOR/A TÉCNICO/A (INGENIE. TÉC. FORESTAL) 17/17"
    )
    assert item["feed_title"] == "Servicio de Personal - Ingreso - Diputación de valencia"
    assert item["summary"].startswith("Publicado el <b>14-05-2021</b> resultado de")
    assert "Descárguelo aquí" in item["summary"]
    assert item["link"] is None
    assert item["published"] is None
    assert item["updated"] is None


def test_rss091_content_hash_is_stable_and_follows_the_content(parse, config, run, fixture_file):
    path = fixture_file(DIVAL)
    data = path.read_bytes()
    first = parse(path, {"format": "rss"}).column("id").to_pylist()[0]
    again = parse(path, {"format": "rss"}).column("id").to_pylist()[0]
    assert first == again
    cfg = config({"format": "rss"})
    changed_description = data.replace(b"14-05-2021", b"15-05-2021")
    changed_title = data.replace(b"17/17</title>", b"18/17</title>")
    assert changed_description != data and changed_title != data
    other_description = run(changed_description, cfg, "x").column("id").to_pylist()[0]
    other_title = run(changed_title, cfg, "x").column("id").to_pylist()[0]
    assert len({first, other_description, other_title}) == 3


def test_truncated_feed_is_a_clear_error(config, run, fixture_file):
    path = fixture_file(REUTERS)
    cfg = config({"format": "rss"}, dataset_id="REUTERS_MOST_READ")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    message = str(info.value)
    assert message.startswith(f"dataset REUTERS_MOST_READ: {path}: ")
    assert "not well-formed" in message
    assert "line 19" in message
    assert "truncated" in message


def test_not_a_feed_is_a_clear_error(config, run, fixture_file):
    path = fixture_file("json/banxico_sie_data.json")
    cfg = config({"format": "rss"}, dataset_id="NOT_A_FEED")
    with pytest.raises(ParseError) as info:
        run(path.read_bytes(), cfg, str(path))
    assert str(info.value).startswith(f"dataset NOT_A_FEED: {path}: ")
