"""EventBridge cron expressions: each field checked as EventBridge checks it, and the times a field takes.

Plain Python (no CDK): the configuration reader refuses a bad ``apply.schedule`` with it before any
construct is built, and the scheduled apply computes its lag alarm's period from the same parsing.
A field EventBridge would refuse at deploy time must fail here, or ``schedule_interval_seconds``
would quietly treat it as "some days only" and stretch the alarm's period to seven days.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class CronField(NamedTuple):
    """One of the six fields: its name, value range, names for values, and what else it takes."""

    name: str
    lo: int
    hi: int
    names: tuple[str, ...]
    allowed: str


FIELDS: Final = (
    CronField("minutes", 0, 59, (), "0-59"),
    CronField("hours", 0, 23, (), "0-23"),
    CronField("day-of-month", 1, 31, (), "1-31, '?', 'L', 'LW' or nW"),
    CronField("month", 1, 12, _MONTHS, "1-12 or JAN-DEC"),
    CronField("day-of-week", 1, 7, _DAYS, "1-7 or SUN-SAT, '?', 'L', nL or n#k"),
    CronField("year", 1970, 2199, (), "1970-2199"),
)
DAY_OF_MONTH: Final = 2
DAY_OF_WEEK: Final = 4

_DAY = r"([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)"
_SPECIAL: Final = {
    DAY_OF_MONTH: re.compile(r"^(L|LW|([1-9]|[12]\d|3[01])W)$"),
    DAY_OF_WEEK: re.compile(rf"^(L|{_DAY}L|{_DAY}#[1-5])$"),
}
_STEP_FIELD: Final = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")


def _value_ok(token: str, spec: CronField) -> bool:
    if token.upper() in spec.names:
        return True
    return token.isdigit() and spec.lo <= int(token) <= spec.hi


def _number(token: str, spec: CronField) -> int:
    """A checked value as a number (a month or day name by its place, from 1)."""
    upper = token.upper()
    return spec.names.index(upper) + 1 if upper in spec.names else int(token)


def _element_ok(part: str, spec: CronField) -> bool:
    """``*``, ``v`` or ``v-w``, each with an optional ``/step`` no larger than the field. In a field
    of numbers ``v`` <= ``w`` (a wrap-around ``50-10`` would leave :func:`cron_values`, and so the
    lag alarm's period, without an answer); month and day ranges may wrap (``FRI-MON``)."""
    base, slash, step = part.partition("/")
    if slash and not (step.isdigit() and 1 <= int(step) <= spec.hi - spec.lo + 1):
        return False
    if base == "*":
        return True
    first, dash, last = base.partition("-")
    if not (_value_ok(first, spec) and (not dash or _value_ok(last, spec))):
        return False
    return not dash or bool(spec.names) or _number(first, spec) <= _number(last, spec)


def field_problem(index: int, field: str) -> str | None:
    """Why EventBridge would refuse ``field`` as the cron field at ``index`` (0-5), or None."""
    spec = FIELDS[index]
    if field == "?":
        return None if index in (DAY_OF_MONTH, DAY_OF_WEEK) else f"{spec.name} field cannot be '?'"
    special = _SPECIAL.get(index)
    if special is not None and special.match(field.upper()):
        return None
    if field and all(_element_ok(part, spec) for part in field.split(",")):
        return None
    return (
        f"{spec.name} field {field!r} is not valid: it takes {spec.allowed}, as values, lists (a,b), "
        "ranges (a-b, a no more than b), '*' and steps (a/n, */n, n no more than the field's span)"
    )


def cron_problem(fields: list[str]) -> str | None:
    """Why EventBridge would refuse the six fields of ``cron(...)``, or None."""
    for index, field in enumerate(fields):
        problem = field_problem(index, field)
        if problem:
            return problem
    if (fields[DAY_OF_MONTH] == "?") == (fields[DAY_OF_WEEK] == "?"):
        return (
            "EventBridge needs '?' in exactly one of day-of-month (3rd field) and day-of-week "
            "(5th field), e.g. cron(0 * * * ? *)"
        )
    return None


def cron_values(field: str, top: int) -> set[int] | None:
    """The values ``0..top`` a cron minutes or hours field takes (``*``, ``a``, ``a-b``, each with an
    optional ``/step``, comma-separated); None for anything else."""
    values: set[int] = set()
    for part in field.split(","):
        m = _STEP_FIELD.match(part)
        if not m:
            return None
        base, step = m.group(1), int(m.group(2) or 1)
        if base == "*":
            start, end = 0, top
        elif "-" in base:
            start, end = (int(v) for v in base.split("-"))
        else:  # "a" alone, or "a/step": from a to the top
            start = int(base)
            end = top if m.group(2) else start
        if not 0 <= start <= end <= top or step < 1:
            return None
        values.update(range(start, end + 1, step))
    return values
