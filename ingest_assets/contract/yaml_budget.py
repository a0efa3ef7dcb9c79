"""Reading a config's YAML within a budget, before anything is built from it.

A YAML document is refused when it nests deeper than `MAX_NESTING` or repeats, through aliases,
more than `MAX_ALIASED_VALUES` values (a "billion laughs" of 600 bytes expands to hundreds of
millions of values), or holds an integer too long to read; the guarded loaders refuse a key
written twice in one mapping, and name the line of a value they cannot read (2026-02-30).
"""

import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from ingest_assets.contract.problems import QUOTED_CHARS, clip, short_repr

if TYPE_CHECKING or yaml.__with_libyaml__:
    from yaml import CSafeLoader as FastBase
else:  # PyYAML built without libyaml: the pure-Python loader, twice
    from yaml import SafeLoader as FastBase

if TYPE_CHECKING:
    from yaml._yaml import Mark as LibyamlMark

MAX_CONFIG_BYTES = 1 << 20  # 1 MB: a large contract is a few kB
MAX_NESTING = 64  # mappings and lists inside one another (a contract needs about 6)
MAX_ALIASED_VALUES = 100_000  # values that aliases (*name) repeat, counted as written out
MAX_ALIASED_CHARS = MAX_CONFIG_BYTES  # text that aliases repeat


class YamlBudgetError(yaml.MarkedYAMLError):
    """A YAML document over a budget: refused before it is built, and never re-parsed."""

    def __init__(self, problem: str, mark: "yaml.Mark | LibyamlMark | None"):
        # (libyaml's own errors carry its Mark too: the stubs know only the pure-Python one)
        super().__init__(problem=problem, problem_mark=mark)  # type: ignore[arg-type]


INT_DIGITS = sys.get_int_max_str_digits() or 4300  # (0: no limit set; quadratic still)
INT_TAG = "tag:yaml.org,2002:int"
_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
# the tag YAML gives a plain scalar (the resolver keeps no state between calls)
_implicit_tag: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = (
    yaml.resolver.Resolver().resolve
)


def _number_too_long(event: yaml.ScalarEvent) -> bool:
    """An integer Python refuses to read (over 4,300 digits) or reads in quadratic time (a
    base-60 `1:11:11:...`)."""
    tag = event.tag
    if tag is None or tag == "!":
        tag = _implicit_tag(yaml.ScalarNode, event.value, event.implicit)
    return tag == INT_TAG


def check_budget(events: Iterable[yaml.Event]) -> None:
    """Refuses a YAML event stream whose aliases repeat more than `MAX_ALIASED_VALUES` values (or
    `MAX_ALIASED_CHARS` of text), that nests deeper than `MAX_NESTING`, or that holds an integer
    too long to read. It runs on the parser's events, before any node or object is built:
    libyaml's parser keeps its own stack, while its composer recurses in C (a few hundred
    thousand `[` crash the process) and PyYAML's constructor shares an aliased object, which
    pydantic, repr() or a JSON dump would then walk once for each time it is repeated.

    Sizes are counted as the document would be written out without aliases: `values` and
    `chars` run over the whole stream; an anchored node's size is what they grew by between
    its start and its end."""
    values = chars = aliased_values = aliased_chars = 0
    open_starts: list[tuple[str | None, int, int]] = []  # (anchor, values, chars) at its start
    sizes: dict[str, tuple[int, int] | None] = {}  # anchor -> its size; None while still open
    for event in events:
        if isinstance(event, yaml.ScalarEvent):
            length = len(event.value)
            if length > INT_DIGITS and _number_too_long(event):
                raise YamlBudgetError(f"an integer of {length:,} characters", event.start_mark)
            values += 1
            chars += length
            if event.anchor:
                sizes[event.anchor] = (1, length)
        elif isinstance(event, _COLLECTION_START):
            if len(open_starts) >= MAX_NESTING:
                raise YamlBudgetError(
                    f"nested deeper than {MAX_NESTING} mappings and lists", event.start_mark
                )
            open_starts.append((event.anchor, values, chars))
            values += 1
            if event.anchor:
                sizes[event.anchor] = None
        elif isinstance(event, _COLLECTION_END):
            anchor, values_before, chars_before = open_starts.pop()
            if anchor:
                sizes[anchor] = (values - values_before, chars - chars_before)
        elif isinstance(event, yaml.AliasEvent) and event.anchor in sizes:
            size = sizes[event.anchor]
            name = clip(event.anchor, QUOTED_CHARS)
            if size is None:
                raise YamlBudgetError(
                    f"alias *{name} is inside the node it names (a recursive structure)",
                    event.start_mark,
                )
            aliased_values += size[0]
            aliased_chars += size[1]
            if aliased_values > MAX_ALIASED_VALUES or aliased_chars > MAX_ALIASED_CHARS:
                raise YamlBudgetError(
                    f"aliases repeat more than {MAX_ALIASED_VALUES:,} values or "
                    f"{MAX_ALIASED_CHARS:,} characters (here *{name} repeats {size[0]:,} "
                    "values); write the values out, or repeat less",
                    event.start_mark,
                )
            values += size[0]
            chars += size[1]
        # an alias to an unknown anchor: the composer reports it, with its line


MERGE_TAG = "tag:yaml.org,2002:merge"


class _Guarded(SafeConstructor):
    """Refuses a key written twice in one mapping (YAML itself would keep the last; a key that a
    merge `<<` brings may be overridden, as YAML means)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *defaults`: SafeConstructor merges it below
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConstructorError(
                    None,
                    None,
                    f"key {short_repr(key)} appears twice in one mapping",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _PureLoader(_Guarded, yaml.SafeLoader):
    pass


# libyaml's parser when PyYAML was built with it: about 6x faster than the pure-Python one.
class _FastLoader(_Guarded, FastBase):
    pass


GuardedLoader = _PureLoader | _FastLoader
ScalarConstructor = Callable[[GuardedLoader, yaml.ScalarNode], object]


def _naming_the_line(construct: ScalarConstructor) -> ScalarConstructor:
    """A scalar constructor whose ValueError (a date such as 2026-02-30, `!!float abc`) becomes
    a YAML error at the value's line, as the parser's own errors are."""

    def construct_or_refuse(loader: GuardedLoader, node: yaml.ScalarNode) -> object:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(
                None,
                None,
                f"cannot read {short_repr(node.value)}: {clip(str(exc))}",
                node.start_mark,
            ) from None

    return construct_or_refuse


def _name_the_line_of_unreadable_values() -> None:
    for loader in (_PureLoader, _FastLoader):
        for kind in ("int", "float", "timestamp"):
            tag = f"tag:yaml.org,2002:{kind}"
            loader.add_constructor(tag, _naming_the_line(loader.yaml_constructors[tag]))


_name_the_line_of_unreadable_values()

Loader = type[GuardedLoader]


def _events(text: str, loader: Loader) -> Iterator[yaml.Event]:
    """The parser's events (`yaml.parse`, with one call an event instead of two)."""
    parser = loader(text)
    next_event: Callable[[], yaml.Event | None] = parser.get_event
    try:
        while (event := next_event()) is not None:
            yield event
            if type(event) is yaml.StreamEndEvent:
                return
    finally:
        parser.dispose()


def _load_within_budget(text: str, loader: Loader) -> object:
    """The document, once its events passed `check_budget` (a second, cheap pass of the parser:
    about a third of the time of building the document)."""
    check_budget(_events(text, loader))
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader


def parse_yaml(text: str) -> object:
    try:
        return _load_within_budget(text, _FastLoader)
    except YamlBudgetError:
        raise
    except yaml.YAMLError:
        # libyaml words some errors differently: report the pure-Python parser's own message
        return _load_within_budget(text, _PureLoader)
