"""Feeds with a recoverable XML problem are read as feedparser reads them, the problem noted
(it shows as a warning on the parsed materialization); a feed cut short inside an item, or
otherwise not XML, is still refused, and so are entity declarations (tests/test_hostile_archives).

The feeds are the real Reddit Atom and BBC RSS feeds with one mutation each; the expected
items come from the feed text by regular expressions. Before: every one of them was refused
as "not well-formed XML ... it may be truncated"."""

import re

import pytest

from ingest_assets.parsers import ParseError
from tests.parsers.batches import read_file

REDDIT = "rss/reddit_atom_mediarss_25_entries.xml"
BBC = "rss/bbc_in_our_time_podcast.rss.xml"
MEDIA = ' xmlns:media="http://search.yahoo.com/mrss/"'
ITUNES = '\n     xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'


def entry_ids(text: str) -> list[str]:
    entries = re.findall(r"<entry>(.*?)</entry>", text, flags=re.S)
    return [re.search(r"<id>([^<]+)</id>", entry).group(1) for entry in entries]


def mutated(tmp_path, fixture_file, name: str, old: str, new: str) -> tuple[str, object]:
    text = fixture_file(name).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "mutated.xml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text, path


def test_an_undeclared_namespace_prefix_is_read_and_noted(tmp_path, fixture_file):
    text, path = mutated(tmp_path, fixture_file, REDDIT, MEDIA, "")
    table, notes = read_file(path, {"format": "rss"})
    assert table.column("id").to_pylist() == entry_ids(text)
    assert table.num_rows == 25
    line = text[: text.index("<media:thumbnail")].count("\n") + 1
    assert notes == [
        f"{path}: the feed uses undeclared namespace prefixes: 'media' (line {line}); "
        "their elements are read by name"
    ]


def test_an_undeclared_itunes_prefix_still_gives_the_author(tmp_path, fixture_file):
    _, path = mutated(tmp_path, fixture_file, BBC, ITUNES, "")
    table, notes = read_file(path, {"format": "rss"})
    item = table.to_pylist()[0]
    assert (item["id"], item["title"]) == ("urn:bbc:podcast:m000sjxt", "Marcus Aurelius")
    assert item["author"] == "BBC Radio 4"  # <itunes:author>BBC Radio 4</itunes:author>
    text = path.read_text(encoding="utf-8")
    line = text[: text.index("<itunes:")].count("\n") + 1
    assert len(notes) == 1 and f"'itunes' (line {line})" in notes[0]


def test_a_feed_missing_its_closing_tag_is_read_and_noted(tmp_path, fixture_file):
    text, path = mutated(tmp_path, fixture_file, REDDIT, "</feed>", "")
    table, notes = read_file(path, {"format": "rss"})
    assert table.column("id").to_pylist() == entry_ids(text)
    last_line = path.read_text(encoding="utf-8").count("\n") + 1  # where the file ends
    assert notes == [
        f"{path}: the feed ends at line {last_line}, before its closing </feed>: read as if it "
        "closed them (every item was complete)"
    ]


def test_an_rss_feed_missing_channel_and_rss_is_read(tmp_path, fixture_file):
    _, path = mutated(tmp_path, fixture_file, BBC, "    </channel>\n</rss>", "")
    table, notes = read_file(path, {"format": "rss"})
    assert table.column("title").to_pylist() == ["Marcus Aurelius"]
    assert len(notes) == 1 and "before its closing </channel></rss>" in notes[0]


def test_a_feed_cut_inside_an_entry_is_refused(tmp_path, fixture_file):
    text = fixture_file(REDDIT).read_text(encoding="utf-8")
    last = text.rindex("<entry>")
    cut = text[: text.index("<published>", last)]
    path = tmp_path / "cut.xml"
    path.write_text(cut, encoding="utf-8")
    with pytest.raises(ParseError) as info:
        read_file(path, {"format": "rss"})
    line = text[:last].count("\n") + 1
    message = str(info.value)
    assert f"it ends inside <entry> (opened at line {line}): it is truncated" in message
    assert "nothing from it is used" in message


def test_an_html_entity_is_read_as_html_and_noted(tmp_path, fixture_file):
    _, path = mutated(
        tmp_path,
        fixture_file,
        BBC,
        "<title>Marcus Aurelius</title>",
        "<title>Marcus&nbsp;Aurelius</title>",
    )
    table, notes = read_file(path, {"format": "rss"})
    assert table.column("title").to_pylist() == ["Marcus\u00a0Aurelius"]
    assert len(notes) == 1 and "HTML entities XML does not define: &nbsp;" in notes[0]


def test_a_mismatched_tag_in_the_middle_is_still_refused(tmp_path, fixture_file):
    _, path = mutated(
        tmp_path,
        fixture_file,
        BBC,
        "<title>Marcus Aurelius</title>",
        "<title>Marcus Aurelius</titel>",
    )
    with pytest.raises(ParseError, match="not well-formed XML at line .*: mismatched tag"):
        read_file(path, {"format": "rss"})
