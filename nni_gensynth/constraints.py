"""Declarative value checks: one table of field constraints per configurable object.

A table maps field names to constraints (``Real(0, 3600)``, ``Integer(1, 256)``,
``Choice(BACKENDS)``, ...); ``Record(table)`` checks a mapping against it. Hardware profiles and
evaluation specs (what a user writes) and device answers (what a device sends) are checked this
way, so a value is judged by one rule wherever it enters, and every refusal names the field
(``repeat.min_time_s``, ``samples_ms[3]``) in a ``FieldError``, a ValueError. Checks never raise anything else, whatever
the value (NaN, a 5000-digit integer, a string where a list belongs, deep nesting).
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

MAX_TEXT = 4096   # characters of a checked string (an error message is cut, not refused)
MAX_ITEMS = 4096  # items of a checked list or mapping (longer sample lists set their own max_len)
MAX_DEPTH = 6     # nesting of checked JSON data
_MAX_SAFE_INT = 2 ** 63


class FieldError(ValueError):
    """A value broke its constraint. ``field`` is its dotted path, ``reason`` what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def short_repr(value: Any, limit: int = 60) -> str:
    """A repr for error messages: bounded, and safe for any value (a huge int's repr raises)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 8:
        return f"<a {type(value).__name__} of {len(value)} items>"
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[: 4 * limit]
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a huge int, deep nesting or a hostile __repr__: still one line
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _join(parent: str, key: Any) -> str:
    return f"{parent}.{key}" if parent else str(key)


class Constraint:
    """Checks one value; ``check`` returns the value in its canonical type or raises FieldError."""

    def check(self, value: Any, field: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_items(self, values: Sequence[Any], field: str) -> Tuple[Any, ...]:
        """``check`` on each item, naming a bad one ``field[i]``."""
        return tuple(self.check(v, f"{field}[{i}]") for i, v in enumerate(values))


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number within [low, high] (either end open with low_open / high_open), as float."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise FieldError(field, f"must be a number, got {short_repr(value)}")
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            raise FieldError(field, f"must be a finite number, got {short_repr(value)}") from None
        if not math.isfinite(number):
            raise FieldError(field, f"must be a finite number, got {short_repr(value)}")
        too_low = self.low is not None and (number < self.low or (self.low_open and number == self.low))
        too_high = self.high is not None and (number > self.high or (self.high_open and number == self.high))
        if too_low or too_high:
            raise FieldError(field, f"must be {self.describe()}, got {short_repr(value)}")
        return number

    def check_items(self, values: Sequence[Any], field: str) -> Tuple[float, ...]:
        """Fast for long lists of plain floats and ints (latency samples); the general check
        names the first bad item."""
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        try:
            out = tuple(float(v) for v in values if type(v) is float or type(v) is int)
        except OverflowError:
            out = ()
        low_ok = (lambda v: v > low) if self.low_open else (lambda v: v >= low)
        high_ok = (lambda v: v < high) if self.high_open else (lambda v: v <= high)
        if len(out) == len(values) and all(math.isfinite(v) and low_ok(v) and high_ok(v) for v in out):
            return out
        return super().check_items(values, field)

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}" if self.low is not None else "a finite number"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return (f"within {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool; not a float unless ``whole_floats``, then 3.0 counts as 3) within
    [low, high]."""

    low: int = -_MAX_SAFE_INT
    high: int = _MAX_SAFE_INT
    whole_floats: bool = False

    def check(self, value: Any, field: str) -> int:
        if self.whole_floats and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise FieldError(field, f"must be an integer, got {short_repr(value)}")
        if not self.low <= value <= self.high:
            raise FieldError(field, f"must be within [{self.low}, {self.high}], got {short_repr(value)}")
        return int(value)


@dataclass(frozen=True)
class Text(Constraint):
    """A string of at most max_len characters, non-empty unless allow_empty, matching pattern."""

    max_len: int = MAX_TEXT
    allow_empty: bool = False
    pattern: Optional[str] = None

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise FieldError(field, f"must be a string, got {short_repr(value)}")
        if not value and not self.allow_empty:
            raise FieldError(field, "must be a non-empty string")
        if len(value) > self.max_len:
            raise FieldError(field, f"must be at most {self.max_len} characters, got {len(value)}")
        if "\x00" in value:
            raise FieldError(field, "must not contain NUL characters")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise FieldError(field, f"must match {self.pattern}, got {short_repr(value)}")
        return value


@dataclass(frozen=True)
class Choice(Constraint):
    """One of a few strings."""

    values: Tuple[str, ...]

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise FieldError(field, f"must be one of {', '.join(self.values)}, got {short_repr(value)}")
        return value


@dataclass(frozen=True)
class Flag(Constraint):
    """True or False."""

    def check(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise FieldError(field, f"must be true or false, got {short_repr(value)}")
        return value


@dataclass(frozen=True)
class Nullable(Constraint):
    """None, or a value ``inner`` accepts."""

    inner: Constraint

    def check(self, value: Any, field: str) -> Any:
        return None if value is None else self.inner.check(value, field)


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value the first accepting option accepts. The error is the complaint about an item when
    an option took the value's shape (``cpu_affinity[1]``), else every option's complaint."""

    options: Tuple[Constraint, ...]

    def check(self, value: Any, field: str) -> Any:
        errors = []
        for option in self.options:
            try:
                return option.check(value, field)
            except FieldError as exc:
                errors.append(exc)
        nested = [e for e in errors if e.field != field]  # right shape, a bad item: say which
        if nested:
            raise nested[0]
        raise FieldError(field, " or ".join(dict.fromkeys(e.reason for e in errors)))


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list (or tuple) of min_len..max_len items, each checked by ``item``; returned as a tuple."""

    item: Constraint
    min_len: int = 0
    max_len: int = MAX_ITEMS

    def check(self, value: Any, field: str) -> Tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise FieldError(field, f"must be a list, got {short_repr(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise FieldError(field, f"must have {self.min_len} to {self.max_len} items, got {len(value)}")
        return self.item.check_items(value, field)


@dataclass(frozen=True)
class Json(Constraint):
    """Plain JSON data within limits: None, bools, finite numbers, strings of at most MAX_TEXT
    characters, lists and string-keyed mappings of at most MAX_ITEMS items, nested at most
    ``depth`` levels. For the parts of an answer that are only kept and shown."""

    depth: int = MAX_DEPTH

    def check(self, value: Any, field: str) -> Any:
        return self._check(value, field, self.depth)

    def _check(self, value: Any, field: str, depth: int) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return Text(allow_empty=True).check(value, field) if isinstance(value, str) else value
        if isinstance(value, numbers.Integral):
            return Integer().check(value, field)
        if isinstance(value, numbers.Real):
            return Real().check(value, field)
        if isinstance(value, (list, tuple, Mapping)):
            if depth <= 0:
                raise FieldError(field, f"is nested too deeply (at most {self.depth} levels)")
            if len(value) > MAX_ITEMS:
                raise FieldError(field, f"must have at most {MAX_ITEMS} items, got {len(value)}")
            if isinstance(value, Mapping):
                out = {}
                for key, item in value.items():
                    Text(allow_empty=True).check(key, f"{field} key")
                    out[key] = self._check(item, _join(field, key), depth - 1)
                return out
            return [self._check(v, f"{field}[{i}]", depth - 1) for i, v in enumerate(value)]
        raise FieldError(field, f"must be plain JSON data, got a {type(value).__name__}")


@dataclass(frozen=True)
class Record(Constraint):
    """A mapping checked field by field against ``table``: ``required`` fields must be present;
    other keys are refused, or checked by ``extra`` when given. Returns a dict of checked values
    (absent optional fields stay absent)."""

    table: Mapping[str, Constraint]
    required: Tuple[str, ...] = ()
    extra: Optional[Constraint] = None
    max_items: int = MAX_ITEMS

    def check(self, value: Any, field: str) -> Dict[str, Any]:
        if not isinstance(value, Mapping):
            raise FieldError(field or "<top>", f"must be a mapping, got {short_repr(value)}")
        if len(value) > self.max_items:
            raise FieldError(field or "<top>", f"must have at most {self.max_items} fields, got {len(value)}")
        for name in self.required:
            if name not in value:
                raise FieldError(_join(field, name), "missing required field")
        out: Dict[str, Any] = {}
        for key, item in value.items():
            where = _join(field, short_repr(key) if not isinstance(key, str) else key)
            constraint = self.table.get(key) if isinstance(key, str) else None
            if constraint is None:
                if self.extra is None:
                    raise FieldError(where, f"unknown field (allowed: {', '.join(self.table)})")
                Text(allow_empty=True).check(key, where)
                constraint = self.extra
            out[key] = constraint.check(item, where)
        return out


def checked_fields(table: Mapping[str, Constraint], names: Sequence[str]) -> None:
    """Assert at import time that a table names exactly the fields of its object (a typo in a
    table would otherwise leave a field unchecked)."""
    if set(table) != set(names):
        raise AssertionError(f"constraint table {sorted(table)} does not match fields {sorted(names)}")


__all__ = ["AnyOf", "Choice", "Constraint", "FieldError", "Flag", "Integer", "Json", "ListOf",
           "Nullable", "Real", "Record", "Text", "checked_fields", "short_repr"]
