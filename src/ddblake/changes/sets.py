"""Sets holding a member twice, which DynamoDB never writes: found in dicts and in JSON text.

DynamoDB keeps each member of a set once (SS by string, NS by value, BS by bytes), so a change whose
image holds a set with a member twice cannot have come from a table: the raw-log reader refuses it
(``ChangeEvent.from_line``, through ``ddblake.changes.parse.check_sets``), and so must its fast
path, which reads the images as text without decoding them (``ddblake.changes.rawline``). It calls
:func:`text_repeats_a_member` on text its grammar accepted: one regular expression clears nearly
every set in C; the few it cannot (escapes, spellings DynamoDB never writes, many members) are
compared member by member in Python. Standard library only.
"""

from __future__ import annotations

import binascii
import json
import re
from decimal import Decimal
from typing import Any


def repeats_a_member(tag: str, members: list[Any]) -> bool:
    """Whether checked set members hold one member twice, as DynamoDB compares them: SS by string,
    NS by value (``1`` and ``1.0``), BS by the decoded bytes. Members are the texts DynamoDB JSON
    holds, as ``str``, or as the UTF-8 ``bytes`` of unescaped JSON strings."""
    if len(members) < 2:
        return False
    if tag == "NS":
        return len({Decimal(m if type(m) is str else m.decode()) for m in members}) != len(members)
    if tag == "BS":
        return len({binascii.a2b_base64(m) for m in members}) != len(members)
    return len(set(members)) != len(members)


def text_repeats_a_member(text: bytes) -> bool:
    """Whether JSON text a fast grammar accepted (``transform.image_pattern``: values as DynamoDB
    writes them, maybe ``", "`` / ``": "`` spaced) holds a set with a member twice.

    A text without ``[`` holds no set, and one regular expression clears most others.
    """
    return 91 in text and (suspect := _SUSPECT.search(text)) is not None and _compared(text, suspect)


_MEMBER = rb'"(?:[^"\\]++|\\.)*+"'
_MEMBERS = re.compile(rb"\[(" + _MEMBER + rb"(?:, ?" + _MEMBER + rb")++)\]")
"""The members' text of a set of two members or more, from its ``[``."""
_UNESCAPED = rb'"[^"\\]*+"'  # a member without escapes
_TWICE = rb'"(?:[^"\\]*+", ?")*?([^"\\]*+)"(?:, ?' + _UNESCAPED + rb")*?, ?\"\1\"[,\]]"
_ODD_NUMBER = rb'(?:[eE+]|\.[0-9]*0"|\."|"-?\.|"-?0[0-9]|"-0")'
_ODD_PADDING = rb'(?:[^AQgw]=="|[^=AEIMQUYcgkosw048]=")'
_SUSPECT = re.compile(
    b"|".join(
        (
            rb"\[(?:(?:" + _UNESCAPED + rb", ?){15}\"",  # 16 members or more (the next test is quadratic)
            _TWICE,  # one member's text twice
            rb"(?:" + _UNESCAPED + rb', ?)*+"[^"\\]*+\\',  # an escape
            rb'(?<=NS":\[)[^\]]*' + _ODD_NUMBER,
            rb'(?<=NS": \[)[^\]]*' + _ODD_NUMBER,
            rb'(?<=BS":\[)[^\]]*' + _ODD_PADDING,
            rb'(?<=BS": \[)[^\]]*' + _ODD_PADDING + rb")",
        )
    )
)
"""A set that may hold a member twice, found in C: one member's text twice (group 1 then holds
it), or what only Python can compare: many members, escapes, numbers or base64 padding DynamoDB
never writes (it writes numbers trimmed in plain notation and pads with zero bits; only then can
two texts be one member, ``1`` and ``1.0``, ``AA==`` and ``AB==``)."""
_ODD_NUMBERS = re.compile(_ODD_NUMBER)
_SET_TAGS = {
    spelling % tag: tag.decode() for tag in (b"SS", b"NS", b"BS") for spelling in (b'"%s":', b'"%s": ')
}
"""What comes before a set's ``[``: a ``["`` elsewhere ends a string (``"x["``), and what follows
it is no set."""
_DECODER = json.JSONDecoder()


def _compared(line: bytes, suspect: re.Match[bytes]) -> bool:
    """:func:`text_repeats_a_member` past :data:`_SUSPECT`'s first find, ``suspect``.

    In text the grammar accepted, a set's tag (``"SS":`` or ``"SS": ``) comes before its ``[`` and
    nowhere else (a quote within a string is escaped). Without escapes, quotes only delimit
    members, and members without escapes or odd spellings are one member exactly when they are one
    text. :data:`_SUSPECT` clears the sets before ``suspect``, its first find in the line; the
    sets from there on are compared here, member by member.
    """
    if suspect.group(1) is not None:  # one text twice, without escapes: one member twice
        return True
    at = suspect.start()
    while at >= 0:
        end = at + 1
        tag = _SET_TAGS.get(line[at - 5 : at]) or _SET_TAGS.get(line[at - 6 : at])
        if tag is not None and (members := _MEMBERS.match(line, at)) is not None:
            end = members.end()
            body = members.group(1)
            if 92 in body:  # escapes (so an SS): equal strings may be spelt apart
                if repeats_a_member(tag, _DECODER.decode("[" + body.decode("utf-8") + "]")):
                    return True
            else:
                texts = body.split(b'"')[1::2]
                if len(set(texts)) != len(texts):
                    return True
                odd = _ODD_NUMBERS.search(body) if tag == "NS" else tag == "BS" and 61 in body
                if odd and repeats_a_member(tag, texts):
                    return True
        at = line.find(b"[", end)
    return False
