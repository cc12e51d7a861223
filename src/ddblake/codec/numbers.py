"""DynamoDB numbers: exact text in, exact values out, never a float.

DynamoDB sends numbers as text: up to 38 significant digits, magnitudes from 1E-130 to
9.9999999999999999999999999999999999999E+125, positive, negative or zero. DynamoDB itself returns
them in plain notation with leading and trailing zeros trimmed ("12.5", "100000", never "1E+5").

Two halves live here. The Python half turns one text into a :class:`~decimal.Decimal` that gives the
same text back (:class:`NumberText` remembers texts that plain notation would not reproduce, such as
"1E+5" or "007"). The Arrow half works on whole string arrays at once for the typed columns: it
measures every value (digits before and after the point) to choose int64, a decimal or text, and
converts with Arrow's casts only where they are provably exact (Arrow silently wraps around when a
text has more digits than the decimal type holds, so long texts take an exact Python path instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Underflow,
)
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from ddblake.codec.errors import BadValueError
from ddblake.limits import range_problem

INT64_DIGITS: Final = 19

EXACT: Final = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero, Inexact, Overflow, Underflow],
)
"""Arithmetic that raises rather than lose a digit (dropping superfluous zeros is fine)."""

_SYNTAX: Final = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NUMBER_RE: Final = re.compile(_SYNTAX)
"""What DynamoDB accepts as number text (ASCII digits only; no NaN, Infinity, spaces or ``_``)."""
NUMBER_PATTERN: Final = f"^{_SYNTAX}$"
"""The same syntax for Arrow's RE2 matcher."""
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


class NumberText(Decimal):
    """A Decimal that remembers the exact text it was read from.

    ``deserialize_value`` returns one only when plain notation of the value would not give the text
    back (``"1E+5"``, ``"007"``, ``"+1"``, ``".5"``); DynamoDB's own output never needs it. It is a
    Decimal in every way (arithmetic gives plain Decimals), and ``str()`` and serialisation give the
    original text.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> NumberText:
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"NumberText({self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (NumberText, (self.text,))


def parse_number(text: Any, where: str) -> Decimal:
    """Read DynamoDB number text into a Decimal that serialises back to the same text.

    Args:
        text: the text of an ``N`` value (or an element of an ``NS``).
        where: the attribute path, for the error message.

    Raises:
        BadValueError: not number syntax, or outside DynamoDB's range.
    """
    if type(text) is not str or NUMBER_RE.fullmatch(text) is None:
        raise BadValueError(f"attribute {where}: N value is not DynamoDB number text")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError, OverflowError) as e:  # exponent beyond Decimal's limits
        raise BadValueError(f"attribute {where}: N value is out of DynamoDB's range") from e
    problem = range_problem(value)
    if problem is not None:
        raise BadValueError(f"attribute {where}: N value {problem}")
    return value if format(value, "f") == text else NumberText(text)


def number_text(value: Decimal | int) -> str:
    """The text to send for a number: the remembered text, else plain notation (never exponents).

    Plain notation keeps the Decimal's own trailing zeros (``Decimal("12.50")`` gives ``"12.50"``),
    so a value read from DynamoDB, or from any plain text, goes back unchanged.
    """
    if isinstance(value, NumberText):
        return value.text
    if isinstance(value, int):
        return str(value)
    return format(value, "f")


def canonical_number(value: Decimal | int) -> str:
    """The text DynamoDB itself returns for a number: plain notation, no superfluous zeros."""
    if isinstance(value, int):
        return str(value)
    if value.is_zero():
        return "0"
    sign, digits, exponent = value.as_tuple()
    exponent = int(exponent)  # finite: the exponent is a number, not "n" or "F"
    end = len(digits)
    while digits[end - 1] == 0:
        end -= 1
    return format(Decimal((sign, digits[:end], exponent + len(digits) - end)), "f")


def digits_of(value: Decimal) -> tuple[int, int]:
    """(digits before the point, digits after it) of a value, ignoring superfluous zeros."""
    if value.is_zero():
        return 0, 0
    _, digits, exponent = value.as_tuple()
    exponent = int(exponent)
    end = len(digits)
    while digits[end - 1] == 0:
        end -= 1
    exponent += len(digits) - end
    return max(0, end + exponent), max(0, -exponent)


# --- Arrow: whole columns of number text -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumStats:
    """What a column of numbers needs: the facts that decide int64, a decimal, or text.

    Attributes:
        count: non-null values measured.
        all_int64: every value is an integer in int64's range.
        int_digits: most digits before the point (leading zeros not counted).
        scale: most digits after the point (trailing zeros not counted).
    """

    count: int
    all_int64: bool
    int_digits: int
    scale: int


def _max(values: pa.Array) -> int:
    result = pc.max(values).as_py()
    return 0 if result is None else int(result)


def _unsigned(values: pa.Array) -> pa.Array:
    """The texts without one leading sign (ASCII kernels: callers check the characters)."""
    signed = pc.or_(pc.starts_with(values, "-"), pc.starts_with(values, "+"))
    return pc.if_else(signed, pc.utf8_slice_codeunits(values, 1), values)


def _int_stats(values: pa.Array) -> NumStats | None:
    """Stats when every text is a plain integer that fits int64 (the common case), else None."""
    body = pc.if_else(pc.starts_with(values, "-"), pc.utf8_slice_codeunits(values, 1), values)
    if not pc.all(pc.ascii_is_decimal(body)).as_py() or _max(pc.binary_length(body)) > INT64_DIGITS:
        return None  # checked first: a failing cast costs far more than these kernels
    try:
        ints = pc.cast(values, pa.int64())
    except pa.ArrowInvalid:  # 19 digits beyond int64
        return None
    extremes = pc.min_max(ints).as_py()
    widest = max(abs(extremes["min"]), abs(extremes["max"]))
    return NumStats(len(values), True, len(str(widest)) if widest else 0, 0)


def number_stats(texts: pa.Array, where: str) -> NumStats:
    """Measure a string array of number texts (nulls ignored), checking the syntax of each.

    Plain notation ("-12.50") is measured with simple string kernels (trim zeros, find the point);
    the rare texts with an exponent are checked against the full syntax and measured in Python.

    Raises:
        BadValueError: a text is not DynamoDB number syntax.
    """
    values = pc.drop_null(texts)
    if len(values) == 0:
        return NumStats(0, True, 0, 0)
    ints = _int_stats(values)
    if ints is not None:
        return ints
    body = _unsigned(values)
    plain = pc.ascii_is_decimal(pc.replace_substring(body, ".", "", max_replacements=1))
    others = pc.filter(values, pc.invert(plain))
    if len(others) and not pc.all(pc.match_substring_regex(others, NUMBER_PATTERN)).as_py():
        raise BadValueError(f"attribute {where}: N value is not DynamoDB number text")
    body = pc.filter(body, plain)
    has_point = pc.greater_equal(pc.find_substring(body, "."), 0)
    digits = pc.ascii_ltrim(pc.if_else(has_point, pc.ascii_rtrim(body, "0"), body), "0")
    point = pc.find_substring(digits, ".")
    length = pc.binary_length(digits)
    has_point = pc.greater_equal(point, 0)
    int_lengths = pc.if_else(has_point, point, length)
    int_digits = _max(int_lengths)
    scale = _max(pc.if_else(has_point, pc.subtract(pc.subtract(length, point), 1), 0))
    all_int64 = scale == 0
    if all_int64 and int_digits >= INT64_DIGITS:  # 19 digits may fit int64, 20 never do
        big = pc.filter(pc.filter(values, plain), pc.equal(int_lengths, INT64_DIGITS))
        all_int64 = int_digits == INT64_DIGITS and all(_fits_int64(Decimal(t)) for t in big.to_pylist())
    for text in others.to_pylist():
        try:
            value = Decimal(text)
        except (InvalidOperation, ValueError, OverflowError) as e:
            raise BadValueError(f"attribute {where}: N value is out of DynamoDB's range") from e
        before, after = digits_of(value)
        int_digits, scale = max(int_digits, before), max(scale, after)
        all_int64 = all_int64 and after == 0 and before <= INT64_DIGITS and _fits_int64(value)
    return NumStats(len(values), all_int64, int_digits, scale)


def _fits_int64(value: Decimal) -> bool:
    return _INT64_MIN <= int(value) <= _INT64_MAX


def to_int64(texts: pa.Array) -> pa.Array:
    """Number texts known (checked by :func:`number_stats`) to be integers in int64's range."""
    try:
        return pc.cast(texts, pa.int64())  # plain integers
    except pa.ArrowInvalid:
        return pa.array([None if t is None else int(Decimal(t)) for t in texts.to_pylist()], pa.int64())


def to_decimal(texts: pa.Array, type_: pa.DataType) -> pa.Array:
    """Number texts known to fit ``type_``, as that decimal type (exactly).

    Arrow's string-to-decimal cast is exact when the text's digits fit the type's storage; a longer
    text (many superfluous zeros, say) overflows silently, so those columns are converted in Python.
    """
    room = 38 if pa.types.is_decimal128(type_) else 76
    values = pc.drop_null(texts)
    if len(values) == 0:
        return pa.nulls(len(texts), type_)
    if _max(pc.utf8_length(values)) <= room:
        try:
            return pc.cast(texts, type_)
        except pa.ArrowInvalid:  # e.g. "0E+55": exact in Python below, refused by Arrow's cast
            pass
    quantum = Decimal(1).scaleb(-type_.scale)
    converted = [
        None if t is None else Decimal(t).quantize(quantum, context=EXACT) for t in texts.to_pylist()
    ]
    return pa.array(converted, type_)
