"""A time-partitioned landing zone seen whole: every partition's files in one listing, each
file's time read back from its path (`dt={partition_start}/*.csv` -> `dt=2026-12-05/a.csv` is
2026-12-05), so that a sensor finds new files of any partition, late ones included. Pure."""

import datetime as dt
import re

from ingest_assets.contract import DatasetConfig
from ingest_assets.contract.source import PLACEHOLDER
from ingest_assets.sources.listing import (
    WILDCARDS,
    Zone,
    glob_regex,
    glob_template,
    make_zone,
    split_glob,
)

# what each strftime directive writes (the others: any text of one path segment)
DIGITS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "j": 3, "y": 2, "G": 4, "V": 2, "u": 1}
ISO = r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?"  # a placeholder without a spec


def _spec_regex(spec: str) -> str:
    out, i = [], 0
    while i < len(spec):
        if spec[i] == "%" and i + 1 < len(spec):
            letter = spec[i + 1]
            out.append(
                rf"\d{{{DIGITS[letter]}}}"
                if letter in DIGITS
                else ("%" if letter == "%" else "[^/]+?")
            )
            i += 2
        else:
            out.append(re.escape(spec[i]))
            i += 1
    return "".join(out)


def every_partition(config: DatasetConfig) -> tuple[Zone, re.Pattern[str]]:
    """The zone of every partition's files (each placeholder matching any value), and the
    pattern whose groups `p0`, `p1`... capture the placeholders' text in a name."""
    bucket, template = glob_template(config.source)
    prefix, _ = split_glob(template, WILDCARDS + "{")
    rest = template[len(prefix) :]
    parts, last = [], 0
    for n, match in enumerate(PLACEHOLDER.finditer(rest)):
        parts.append(glob_regex(rest[last : match.start()]))
        spec = match.group(2)
        parts.append(f"(?P<p{n}>{_spec_regex(spec) if spec else ISO})")
        last = match.end()
    parts.append(glob_regex(rest[last:]))
    pattern = re.compile("".join(parts) + r"\Z")
    wildcard = prefix + PLACEHOLDER.sub("*", rest)
    return make_zone(bucket, prefix, pattern, wildcard), pattern


def file_time(config: DatasetConfig, pattern: re.Pattern[str], name: str) -> dt.datetime | None:
    """The time a file's path names, read from its `{partition_start...}` placeholders together
    (`{partition_start:%Y}/{partition_start:%m}`), else its `{partition_end...}` ones (read as
    the instant before that end); None when it does not read as one."""
    _, template = glob_template(config.source)
    found = pattern.match(name)
    if found is None:
        return None
    placed = list(PLACEHOLDER.finditer(template[len(split_glob(template, WILDCARDS + "{")[0]) :]))
    for which in ("partition_start", "partition_end"):
        chosen = [(n, m.group(2)) for n, m in enumerate(placed) if m.group(1) == which]
        if chosen:
            break
    texts = [found.group(f"p{n}") for n, _ in chosen]
    try:
        if all(spec is None for _, spec in chosen):
            when = dt.datetime.fromisoformat(texts[0])
        else:
            specs = "|".join(spec or "%Y-%m-%d" for _, spec in chosen)
            when = dt.datetime.strptime("|".join(texts), specs)
    except (ValueError, IndexError):
        return None
    if which == "partition_end":
        when -= dt.timedelta(microseconds=1)
    return when.replace(tzinfo=dt.UTC)
