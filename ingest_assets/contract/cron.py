"""Checking a 5-field cron expression (`schedule`), with a message saying what is wrong."""

CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
CRON_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


def cron_problem(expression: str) -> str | None:
    """What is wrong with a 5-field cron expression, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for position, (text, (name, low, high)) in enumerate(zip(fields, CRON_FIELDS, strict=True)):
        names = CRON_NAMES.get(position, [])
        for item in text.split(","):
            base, _, step = item.partition("/")
            if step and not step.isdigit():
                return f"{name} field {text!r}: step {step!r} is not a number"
            if base == "*":
                continue
            for bound in base.split("-", 1):
                value = (
                    names.index(bound.lower()) + (1 if position == 3 else 0)
                    if bound.lower() in names
                    else None
                )
                if value is None and not bound.isdigit():
                    return f"{name} field {text!r}: {bound!r} is not a number"
                value = int(bound) if value is None else value
                if not low <= value <= high:
                    return f"{name} field {text!r}: {value} is outside {low}-{high}"
    return None
