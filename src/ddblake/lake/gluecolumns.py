"""The Glue Data Catalog's copy of a table's columns, in a form the Glue API takes.

With each CreateTable and UpdateTable, pyiceberg's Glue catalog sends a Glue column for every
column of every schema the table has had (a dropped one with ``iceberg.field.current`` false).
The Glue API refuses a column name longer than 255 characters or holding a control character
(tab aside), and a type longer than 131,072 characters or holding one, which a map key inside a
struct type may. DynamoDB allows all of those in attribute names and map keys, and one such
column in a table made every later commit of it fail: apply stopped for good on Glue, where the
same items applied to a local lake.

So Glue is given a copy made to fit (:func:`glue_columns`), while the Iceberg metadata, which
engines read a table's schema from, keeps every name exactly:

* **a name**: each character Glue refuses is written ``%XX`` (its code point in hex, four digits
  past ``FF``); a name then longer than 255 (UTF-16 code units or UTF-8 bytes, whichever is more:
  Glue's documentation says either) is cut and ended with ``~`` and 16 hex digits of the SHA-1 of
  the whole name, and so is a name that would equal one given before;
* **a type**: characters Glue refuses are written as in names; a type longer than 131,072
  characters is given as ``string``, with a comment that says so;
* **a comment** (an Iceberg field doc): cut to 255;
* **a table parameter** (pyiceberg copies each Iceberg table property into one) that Glue refuses
  is left out of Glue's copy (:func:`glue_parameters`).

Engines that read the schema from the Iceberg metadata (DuckDB, Spark, pyiceberg) see the exact
names. Athena lists a table's columns from Glue, so a column shown under another name there is
read through ``_ddb_item`` instead (docs/deploy.md, "Names Glue cannot hold").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Final

NAME_MAX: Final = 255
TYPE_MAX: Final = 131_072
COMMENT_MAX: Final = 255
PARAMETER_MAX: Final = 512_000
_REFUSED: Final = re.compile(r"[^\t\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""A character outside the Glue API's pattern for names, types and comments."""
_HASH_UNITS: Final = 17  # "~" and 16 hex digits
TYPE_NOT_SHOWN: Final = "the Iceberg type is longer than Glue holds; read it from the Iceberg metadata"


def _units(text: str) -> int:
    """Length as Glue may count it: UTF-16 code units (Java's length: an emoji is two) or UTF-8
    bytes (what some of its documentation says), whichever is more."""
    return max(
        len(text.encode("utf-16-le", "surrogatepass")) // 2, len(text.encode("utf-8", "surrogatepass"))
    )


def _escaped(text: str) -> str:
    return _REFUSED.sub(lambda m: f"%{ord(m.group()):02X}", text)


def _cut(text: str, units: int) -> str:
    """The longest start of ``text`` of at most ``units`` (as :func:`_units` counts)."""
    if _units(text) <= units:
        return text
    out, used = [], 0
    for char in text:
        used += _units(char)
        if used > units:
            break
        out.append(char)
    return "".join(out)


def glue_name(name: str, taken: set[str]) -> str:
    """The name Glue is given for column ``name``, none of ``taken`` (which it joins)."""
    shown = _escaped(name)
    salt = 0
    while _units(shown) > NAME_MAX or shown in taken:
        # A hashed name may itself be taken (an attribute may be named like one): hash again.
        seed = name if salt == 0 else f"{name}\x00{salt}"
        digest = hashlib.sha1(seed.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:16]
        shown = f"{_cut(_escaped(name), NAME_MAX - _HASH_UNITS)}~{digest}"
        salt += 1
    taken.add(shown)
    return shown


def glue_type(type_: str) -> str:
    """The type Glue is given for a column of Glue type ``type_`` (pyiceberg's rendering)."""
    shown = _escaped(type_)
    return shown if _units(shown) <= TYPE_MAX else "string"


def glue_comment(comment: str) -> str:
    """The comment Glue is given for a column's Iceberg doc."""
    shown = _escaped(comment)
    return shown if _units(shown) <= COMMENT_MAX else _cut(shown, COMMENT_MAX - _units("…")) + "…"


def glue_columns(columns: list[Any]) -> list[Any]:
    """pyiceberg's Glue columns (dicts with ``Name``, ``Type``, ``Comment``, ``Parameters``), made
    to fit; a column Glue takes as it is stays as it is, and keeps its name before any other."""
    fits = [c["Name"] == glue_name(c["Name"], set()) for c in columns]
    taken = {c["Name"] for c, ok in zip(columns, fits, strict=True) if ok}
    out = []
    for column, ok in zip(columns, fits, strict=True):
        column = dict(column)
        if not ok:
            column["Name"] = glue_name(column["Name"], taken)
        if "Type" in column:
            shown = glue_type(column["Type"])
            if shown != column["Type"] and shown == "string" and column["Type"] != "string":
                column["Comment"] = TYPE_NOT_SHOWN
            column["Type"] = shown
        if "Comment" in column:
            column["Comment"] = glue_comment(column["Comment"])
        out.append(column)
    return out


def glue_parameters(parameters: dict[str, str]) -> dict[str, str]:
    """A table's Glue parameters without those Glue refuses (a key over 255 characters or with a
    character outside its pattern, a value over 512,000 characters).

    pyiceberg copies every Iceberg table property into them, and reads none back (a table's
    properties are read from its metadata file), so a property Glue cannot hold is left out of
    Glue's copy: ``ddblake.untyped-columns`` of a table with many thousand attributes that never
    held a typed value could pass 512,000 characters.
    """
    return {
        key: value
        for key, value in parameters.items()
        if 1 <= _units(key) <= NAME_MAX and _units(value) <= PARAMETER_MAX and not _REFUSED.search(key)
    }


def install() -> None:
    """Make pyiceberg's Glue catalog send :func:`glue_columns` of the columns it would send, and
    :func:`glue_parameters` of its table parameters.

    pyiceberg builds each table input with the module functions ``_to_columns`` and
    ``_construct_parameters``; each is wrapped once per process. A pyiceberg without them is left
    as it is.
    """
    from pyiceberg.catalog import glue

    columns: Callable[..., list[Any]] | None = getattr(glue, "_to_columns", None)
    if columns is not None and not getattr(columns, "_ddblake", False):

        def fitted_columns(metadata: Any) -> list[Any]:
            return glue_columns(columns(metadata))

        fitted_columns._ddblake = True  # type: ignore[attr-defined]
        glue._to_columns = fitted_columns
    parameters: Callable[..., dict[str, str]] | None = getattr(glue, "_construct_parameters", None)
    if parameters is not None and not getattr(parameters, "_ddblake", False):

        def fitted_parameters(*args: Any, **kwargs: Any) -> dict[str, str]:
            return glue_parameters(parameters(*args, **kwargs))

        fitted_parameters._ddblake = True  # type: ignore[attr-defined]
        glue._construct_parameters = fitted_parameters
