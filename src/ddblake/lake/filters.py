"""Row filters for Iceberg scans and overwrites.

pyiceberg's expression classes are typed in a way mypy cannot follow (their constructors are
generated), so the few filters apply needs are built here, in one place, without type noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from pyiceberg import expressions as ex
from pyiceberg.expressions import BooleanExpression


def is_in(column: str, values: Iterable[Any]) -> BooleanExpression:
    """``column IN (values)`` — one term, whatever the number of values."""
    return cast(BooleanExpression, cast(Any, ex.In)(column, list(values)))


def equals(column: str, value: Any) -> BooleanExpression:
    """``column = value``."""
    return cast(BooleanExpression, cast(Any, ex.EqualTo)(column, value))


def at_least(column: str, value: Any) -> BooleanExpression:
    """``column >= value``."""
    return cast(BooleanExpression, cast(Any, ex.GreaterThanOrEqual)(column, value))


def between(column: str, lo: Any, hi: Any) -> BooleanExpression:
    """``lo <= column <= hi``."""
    upper = cast(BooleanExpression, cast(Any, ex.LessThanOrEqual)(column, hi))
    return cast(BooleanExpression, ex.And(at_least(column, lo), upper))
