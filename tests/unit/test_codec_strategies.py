"""Hypothesis strategies for DynamoDB JSON, shared by the codec tests (no tests of its own).

Numbers cover DynamoDB's whole range (38 significant digits, 1E-130 .. 9.99E+125, signs, zero) and
the many texts one value can have ("12.5", "12.50", "1.25E+1", "+012.5"); strings include ones that
look like dates, which the JSON reader would turn into timestamps if it were let.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ddblake.codec.numbers import canonical_number
from ddblake.limits import MAX_ADJUSTED, MAX_DIGITS, MIN_ADJUSTED

NAMES = st.sampled_from(["a", "b", "pk", "price", "x.y", "ü", "M", "S"])
"""Few names, so items of a batch share attributes (and sometimes conflict)."""

DATE_LIKE = ["2020-01-01", "2024-05-06T10:11:12Z", "2024-05-06 10:11:12", "1970-01-01T00:00:00.123+02:00"]

texts = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=12),
    st.sampled_from(["", " ", "null", "12", '{"S":"x"}', *DATE_LIKE]),
)


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """Any number DynamoDB stores, biased towards the edges of its range."""
    kind = draw(st.sampled_from(["small", "money", "wide", "zero"]))
    if kind == "zero":
        return Decimal(draw(st.sampled_from(["0", "-0", "0.000", "0E+5"])))
    if kind == "small":
        return Decimal(draw(st.integers(-(10**6), 10**6)))
    if kind == "money":
        return Decimal(draw(st.integers(-(10**9), 10**9))).scaleb(-2)
    digits = draw(st.integers(1, MAX_DIGITS))
    coefficient = draw(st.integers(10 ** (digits - 1), 10**digits - 1))
    adjusted = draw(
        st.one_of(
            st.integers(MIN_ADJUSTED, MAX_ADJUSTED),
            st.sampled_from([MIN_ADJUSTED, MAX_ADJUSTED, 0, 17, 18, 19, 37, 38, 75, 76]),
        )
    )
    negative = draw(st.booleans())
    # Built from its parts, exactly: arithmetic would round to the context's 28 digits, and 38 nines
    # times a sign came out as 1E+38, past the edge at the top exponent (1E+126 is out of range).
    return Decimal((int(negative), tuple(int(c) for c in str(coefficient)), adjusted - (digits - 1)))


@st.composite
def number_texts(draw: st.DrawFn, value: Decimal | None = None) -> str:
    """One text of a number, in any notation DynamoDB accepts."""
    d = draw(decimals()) if value is None else value
    form = draw(st.sampled_from(["dynamodb", "plain", "str", "exp", "padded", "zeros"]))
    if form == "dynamodb":
        return canonical_number(d)
    if form == "plain":
        return format(d, "f")
    if form == "str":
        return str(d)
    sign, digits, exponent = d.as_tuple()
    coefficient = "".join(map(str, digits))
    minus = "-" if sign else ""
    if form == "exp":
        e = draw(st.sampled_from(["e", "E"]))
        plus = draw(st.sampled_from(["+", ""])) if int(exponent) >= 0 else ""
        return f"{minus}{coefficient}{e}{plus}{exponent}"
    if form == "padded":
        prefix = "-" if minus else draw(st.sampled_from(["+", ""]))
        return f"{prefix}00{format(d.copy_abs(), 'f')}"
    text = format(d, "f")
    return text + ("0" * draw(st.integers(1, 45)) if "." in text else "." + "0" * draw(st.integers(0, 45)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


scalar_avs = st.one_of(
    texts.map(lambda s: {"S": s}),
    number_texts().map(lambda n: {"N": n}),
    st.binary(max_size=12).map(lambda b: {"B": _b64(b)}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(texts, min_size=1, max_size=4, unique=True).map(lambda m: {"SS": m}),
    st.lists(decimals(), min_size=1, max_size=4, unique=True).flatmap(
        lambda ds: st.tuples(*[number_texts(d) for d in ds]).map(lambda ns: {"NS": list(ns)})
    ),
    st.lists(st.binary(max_size=8), min_size=1, max_size=4, unique=True).map(
        lambda m: {"BS": [_b64(b) for b in m]}
    ),
)

avs = st.recursive(
    scalar_avs,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda v: {"L": v}),
        st.dictionaries(NAMES, children, max_size=4).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)
"""Any attribute value, nested."""

items = st.dictionaries(NAMES, avs, max_size=5)
batches = st.lists(items, max_size=8)


def _kind_values(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Values of one attribute kind, so a batch of them types consistently."""
    ints = st.integers(-(2**63), 2**63 - 1)
    options: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "S": texts.map(lambda s: {"S": s}),
        "int": ints.map(lambda i: {"N": str(i)}),
        "N": number_texts().map(lambda n: {"N": n}),
        "B": st.binary(max_size=8).map(lambda b: {"B": _b64(b)}),
        "BOOL": st.booleans().map(lambda b: {"BOOL": b}),
        "SS": st.lists(texts, min_size=1, max_size=3, unique=True).map(lambda m: {"SS": m}),
        "NS": st.lists(ints, min_size=1, max_size=3, unique=True).map(lambda m: {"NS": [str(i) for i in m]}),
        "L": st.lists(number_texts().map(lambda n: {"N": n}), max_size=3).map(lambda v: {"L": v}),
        "M": st.fixed_dictionaries(
            {},
            optional={"q": texts.map(lambda s: {"S": s}), "r": ints.map(lambda i: {"N": str(i)})},
        ).map(lambda v: {"M": v}),
    }
    return st.one_of(options[kind], st.just({"NULL": True}))


@st.composite
def typed_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A batch whose attributes each keep one kind (with NULLs and gaps), as most tables do."""
    kinds = draw(
        st.dictionaries(
            NAMES, st.sampled_from(["S", "int", "N", "B", "BOOL", "SS", "NS", "L", "M"]), max_size=5
        )
    )
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        present = draw(st.lists(st.sampled_from(sorted(kinds)), unique=True)) if kinds else []
        rows.append({name: draw(_kind_values(kinds[name])) for name in present})
    return rows


def jsonl(rows: list[Any]) -> bytes:
    """JSON Lines as ``json.dumps`` writes them (spaces after separators, unlike the raw log)."""
    return "".join(json.dumps(r) + "\n" for r in rows).encode()
