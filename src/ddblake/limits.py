"""DynamoDB's limits on numbers, in the standard library only.

The change parser (which the Firehose transform Lambda imports, without pyarrow) and the codec
both hold input to these: a number DynamoDB would refuse on write cannot have come from a table.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

__all__ = ["MAX_ADJUSTED", "MAX_DIGITS", "MIN_ADJUSTED", "range_problem"]

MAX_DIGITS: Final = 38
"""Significant digits DynamoDB keeps."""
MAX_ADJUSTED: Final = 125
"""Largest power of ten of a DynamoDB number's leading digit (9.99...E+125)."""
MIN_ADJUSTED: Final = -130
"""Smallest power of ten of a non-zero DynamoDB number's leading digit (1E-130)."""


def range_problem(value: Decimal) -> str | None:
    """Why DynamoDB would refuse this number, or None when it accepts it.

    Leading and trailing zeros do not count as digits: DynamoDB trims them, so ``1E+100`` (one
    digit) is fine while a 39-digit integer is not.
    """
    if not value.is_finite():
        return "is not finite (NaN and Infinity are not DynamoDB numbers)"
    if value.is_zero():
        return None
    digits = value.as_tuple().digits
    significant = len(digits)
    while digits[significant - 1] == 0:
        significant -= 1
    if significant > MAX_DIGITS:
        return f"has more than {MAX_DIGITS} significant digits"
    adjusted = value.adjusted()
    if adjusted > MAX_ADJUSTED:
        return "is larger in magnitude than 9.9999999999999999999999999999999999999E+125"
    if adjusted < MIN_ADJUSTED:
        return "is smaller in magnitude than 1E-130"
    return None
