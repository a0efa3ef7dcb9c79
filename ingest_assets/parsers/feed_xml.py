"""What is wrong with a feed's XML, and whether it can be read anyway, as feedparser reads it.

feedparser reads a feed its strict (SAX) parser refuses with a lenient one, flagging it
`bozo`. Which of those to publish is decided here, by one expat pass over the feed (UTF-8,
its entity declarations refused before): namespace-unaware, so that it reads on past an
undeclared prefix, and with a foreign DTD, so that an undefined entity is reported and
skipped rather than fatal (nothing is fetched: no handler loads external entities).

Recoverable, read and noted: an undeclared namespace prefix (`<media:thumbnail>` without
`xmlns:media`: the element is read by its name), an entity XML does not define (`&nbsp;`:
read as HTML), and a feed that ends with only its containers open (`</channel></rss>`
missing: nothing was cut from an item). Anything else is not well-formed and refused: a
feed that ends inside an item or any other element (cut short), a mismatched tag, a byte
that is not XML.
"""

import html.entities
import xml.parsers.expat as expat
from dataclasses import dataclass, field

ITEMS = ("item", "entry")
CONTAINERS = ("rss", "channel", "feed", "RDF")  # (local names) what may be left open at the end
ENDED_EARLY = (
    expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS],
    expat.errors.codes[expat.errors.XML_ERROR_UNCLOSED_TOKEN],
    expat.errors.codes[expat.errors.XML_ERROR_PARTIAL_CHAR],
    expat.errors.codes[expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION],
)
LISTED = 5  # names quoted in a note


@dataclass
class Findings:
    notes: list[str] = field(default_factory=list)  # recoverable problems, for ctx.note
    error: str | None = None  # not well-formed: why, with the line
    # where it ends with its containers open (19, "</channel></rss>": the line, the closing
    # tags missing): read, but suspect when it has no items
    open_at_end: tuple[int, str] | None = None


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _prefix(name: str) -> str | None:
    prefix, colon, _ = name.partition(":")
    return prefix if colon and prefix not in ("xml", "xmlns") else None


@dataclass
class _Walk:
    """The expat handlers' state: open elements, declared prefixes, what was skipped."""

    parser: "expat.XMLParserType"
    open: list[tuple[str, int]] = field(default_factory=list)  # (name, line)
    scopes: list[set[str]] = field(default_factory=list)
    undeclared: dict[str, int] = field(default_factory=dict)  # prefix -> first line
    entities: dict[str, int] = field(default_factory=dict)  # name -> first line

    def start(self, name: str, attributes: dict[str, str]) -> None:
        line = self.parser.CurrentLineNumber
        self.open.append((name, line))
        self.scopes.append({a[6:] for a in attributes if a.startswith("xmlns:")})
        for used in (name, *attributes):
            prefix = _prefix(used)
            if prefix and not any(prefix in scope for scope in self.scopes):
                self.undeclared.setdefault(prefix, line)

    def end(self, name: str) -> None:
        self.open.pop()
        self.scopes.pop()

    def skipped(self, name: str, is_parameter: bool) -> None:
        self.entities.setdefault(name, self.parser.CurrentLineNumber)


def _listed(found: dict[str, int], form: str) -> str:
    shown = [form.format(name) + f" (line {line})" for name, line in list(found.items())[:LISTED]]
    more = f" and {len(found) - LISTED} more" if len(found) > LISTED else ""
    return ", ".join(shown) + more


def check(data: bytes) -> Findings:
    """The problems of the feed `data` (UTF-8 XML)."""
    parser = expat.ParserCreate()
    walk = _Walk(parser)
    parser.UseForeignDTD(True)
    parser.StartElementHandler = walk.start
    parser.EndElementHandler = walk.end
    parser.SkippedEntityHandler = walk.skipped
    findings = Findings()
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        _ended(findings, walk, exc)
    if walk.undeclared:
        prefixes = _listed(walk.undeclared, "'{}'")
        findings.notes.append(
            f"uses undeclared namespace prefixes: {prefixes}; their elements are read by name"
        )
    html_named = {n: line for n, line in walk.entities.items() if n in html.entities.name2codepoint}
    other = {n: line for n, line in walk.entities.items() if n not in html_named}
    if html_named:
        findings.notes.append(
            f"uses HTML entities XML does not define: {_listed(html_named, '&{};')}; read as HTML"
        )
    if other:
        findings.notes.append(f"uses undefined entities: {_listed(other, '&{};')}; kept as written")
    return findings


def _ended(findings: Findings, walk: _Walk, exc: expat.ExpatError) -> None:
    """An expat error: a feed that ends with only its containers open is recoverable."""
    message = expat.errors.messages[exc.code]
    still_open = list(walk.open)
    inner = [(n, line) for n, line in still_open if _local(n) not in CONTAINERS]
    if exc.code in ENDED_EARLY and still_open and not inner:
        closing = "".join(f"</{name}>" for name, _ in reversed(still_open))
        findings.open_at_end = (exc.lineno, closing)
        findings.notes.append(
            f"ends at line {exc.lineno}, before its closing {closing}: read as if it closed "
            "them (every item was complete)"
        )
        return
    if exc.code in ENDED_EARLY and inner:
        item = next(((n, line) for n, line in inner if _local(n) in ITEMS), inner[-1])
        findings.error = (
            f"line {exc.lineno}: it ends inside <{item[0]}> (opened at line {item[1]}): "
            "it is truncated"
        )
        return
    findings.error = f"line {exc.lineno}, column {exc.offset + 1}: {message}"
