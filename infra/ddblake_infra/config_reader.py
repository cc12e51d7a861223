"""Reading one JSON object of the configuration file, with every problem reported as an error.

Each read checks its value and records the key, so :meth:`Section.finish` can reject unknown keys:
a typo never silently falls back to a default. Errors name the file and the dotted key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class InfraConfigError(ValueError):
    """The deployment configuration is missing, unreadable or invalid; the message says where."""


class Section:
    """One JSON object of the file; every read is checked and every key must be read."""

    def __init__(self, file: str, where: str, data: Any) -> None:
        self.file = file
        self.where = where
        if not isinstance(data, dict):
            raise self.error("", f"must be a JSON object (got {type(data).__name__})")
        self.data: dict[str, Any] = data
        self.seen: set[str] = {"$comment"}

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, problem: str) -> InfraConfigError:
        where = self.key(name) if name else (self.where or "(top level)")
        return InfraConfigError(f"{self.file}: {where}: {problem}")

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                # {"Region": ...}: the typo, not the key it hides, is what to fix
                typo = next((k for k in self.data if k.lower() == name.lower() and k != name), None)
                if typo is not None:
                    raise self.error(typo, self._unknown(typo, [name]))
                raise self.error(name, "is required")
            return default
        return self.data[name]

    @staticmethod
    def _unknown(name: str, known: Iterable[str]) -> str:
        """The problem of an unknown key, pointing at a known one that differs only in case."""
        same = [k for k in known if k.lower() == name.lower() and k != name]
        if same:
            return f"unknown key; keys are case-sensitive: write {same[0]!r}"
        return "unknown key (see docs/deploy.md for the keys this section takes)"

    def reject_unknown(self, known: Iterable[str]) -> None:
        """Fail on the first key not in ``known``, before any value is checked: a misspelt key is
        reported as itself, not as the required key it leaves missing."""
        unknown = sorted(set(self.data) - set(known) - {"$comment"})
        if unknown:
            raise self.error(unknown[0], self._unknown(unknown[0], known))

    def text(
        self,
        name: str,
        default: str | None = None,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str:
        value = self._get(name, default, required)
        if isinstance(value, int | float) and not isinstance(value, bool):
            # "producer_account": 111111111111 - JSON numbers lose leading zeros; IDs are strings
            raise self.error(
                name, f'must be a string: write it in quotes, "{value}" (got the number {value})'
            )
        if not isinstance(value, str):
            raise self.error(name, f"must be a string (got {value!r})")
        # fullmatch: a pattern's `$` would also match before a trailing newline
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(name, f"{value!r} is not {what or 'valid'}")
        return value

    def optional_text(
        self, name: str, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str | None:
        if self.data.get(name) is None:
            self.seen.add(name)
            return None
        return self.text(name, pattern=pattern, what=what)

    def integer(self, name: str, default: int | None, lo: int, hi: int, *, required: bool = False) -> int:
        value = self._get(name, default, required or default is None)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(name, f"must be an integer from {lo} to {hi} (got {value!r})")
        return value

    def optional_integer(self, name: str, lo: int, hi: int) -> int | None:
        if self.data.get(name) is None:
            self.seen.add(name)
            return None
        return self.integer(name, None, lo, hi)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self._get(name, default, False)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.error(name, f"must be a number from {lo:g} to {hi:g} (got {value!r})")
        return float(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, default, False)
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false (got {value!r})")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._get(name, default, False)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(repr(c) for c in choices)} (got {value!r})")
        return str(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name, [], False)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, f"must be a list of non-empty strings (got {value!r})")
        return tuple(value)

    def section(self, name: str) -> Section:
        value = self._get(name, {}, False)
        return Section(self.file, self.key(name), value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(unknown[0], self._unknown(unknown[0], self.seen))


def read_section(section: Section, read: Callable[[Section], T]) -> T:
    """``read(section)``, then fail on any key of the section that ``read`` did not take."""
    value = read(section)
    section.finish()
    return value
