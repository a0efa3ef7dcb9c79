"""Numbers written as text, read by the contract's marks (`source.decimal`, `source.thousands`):
each value is checked against the one rule and rewritten as a plain number (`1234.5`), which
`convert` then reads. Vectorised (Arrow's regular expressions), no Python per value. Pure.

The rule: the decimal mark is `source.decimal`; the thousands separator is `source.thousands`,
or `.` when the decimal mark is `,` and no separator is set; a separator stands only between
groups of three digits after a first group of one to three (`1.234.567,8`), or not at all
(`1234567,8`). A value that has a `.` or `,` (or the separator) and does not follow the rule is
not a number (`2.5` with a decimal comma): its row is quarantined as `invalid_number`. With a
decimal point and no separator set, numbers are read as they always were (no rule applied).
"""

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

INVALID_NUMBER = "invalid_number"  # the reason code of a value that breaks the rule
# what each separator also stands for: a space may be a no-break or narrow no-break one, an
# apostrophe a typographic one
VARIANTS = {" ": " \u00a0\u202f", "'": "'\u2019"}


@dataclass(frozen=True)
class NumberRule:
    decimal: str
    thousands: str | None  # None: numbers carry no separator

    @classmethod
    def of(cls, decimal: str, thousands: str | None) -> "NumberRule":
        """The rule of the contract's `source.decimal` and `source.thousands`."""
        if thousands is None and decimal == ",":
            thousands = "."
        return cls(decimal, thousands)

    @property
    def applies(self) -> bool:
        """False for a decimal point without a separator: numbers are read as they always were."""
        return not (self.decimal == "." and self.thousands is None)

    @property
    def separators(self) -> str:
        return VARIANTS.get(self.thousands, self.thousands) if self.thousands else ""

    @property
    def pattern(self) -> str:
        """The whole value, as RE2 (Arrow) reads it."""
        mark = re.escape(self.decimal)
        whole = r"\d+"
        if self.thousands:
            group = f"[{re.escape(self.separators)}]"
            whole = rf"\d{{1,3}}(?:{group}\d{{3}})+|\d+"
        return rf"^[+-]?(?:(?:{whole})(?:{mark}\d+)?|{mark}\d+)(?:[eE][+-]?\d+)?$"

    def describe(self) -> str:
        """The rule in words, for a quarantine reason."""
        mark = f"the decimal mark is {self.decimal!r} (source.decimal)"
        if not self.thousands:
            return f"{mark} and numbers carry no thousands separator (source.thousands)"
        separator = self.thousands
        example = f"1{separator}234{separator}567{self.decimal}8"
        return (
            f"{mark} and {separator!r} (source.thousands) stands only between groups of three "
            f"digits, as in {example!r}"
        )


@dataclass(frozen=True)
class NumberText:
    text: pa.Array  # each value as a plain number (`1234.5`), null where `invalid` or null
    invalid: pa.Array  # bool: the value breaks the rule (null: no value)


def plain_numbers(text: pa.Array, rule: NumberRule) -> NumberText:
    """`text` (trimmed, null for blanks) rewritten as plain numbers under `rule`; values with a
    `.`, `,` or separator that the rule does not read are marked `invalid`."""
    if not rule.applies or len(text) == 0:
        return NumberText(text, pa.array(np.zeros(len(text), dtype=bool)))
    marks = re.escape("." + "," + rule.separators)
    marked = pc.match_substring_regex(text, f"[{marks}]")
    invalid = pc.and_(marked, pc.invert(pc.match_substring_regex(text, rule.pattern)))
    plain = text
    for separator in rule.separators:  # (plain replacements: several times a regex's speed)
        plain = pc.replace_substring(plain, separator, "")
    if rule.decimal != ".":
        plain = pc.replace_substring(plain, rule.decimal, ".")
    plain = pc.if_else(invalid, pa.scalar(None, pa.string()), plain)
    return NumberText(plain, invalid)
