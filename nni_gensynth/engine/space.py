"""NNI search-space JSON <-> canonical, hashable Architecture.

Every NNI type is supported: choice (with nested `_name` sub-spaces), randint, uniform,
quniform, loguniform, qloguniform, normal, qnormal, lognormal, qlognormal. Semantics follow
NNI's documentation: randint is [lower, upper); q-types round to a multiple of q, and the
bounded ones clip into [low, high]; log-types are uniform/normal in log space (so a
qlognormal value may round to 0, which is legal for it).

Each decision also has a *unit* coordinate used by the generator and the surrogates: for a
bounded numeric decision u in [0, 1] (in log space for log types), for a normal one the
standard score z (clipped to ±Z_MAX), for a choice the option index.

Parsing rejects what cannot be sampled as a finite value of its type — a lognormal whose
exp overflows or underflows to 0, a normal whose mu ± Z_MAX·sigma overflows, a q so small
that value / q overflows, randint bounds beyond 2**53 (where floats skip integers), options
that are not JSON or appear twice — with a SearchSpaceError that names the parameter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
from scipy.special import ndtr

from .fingerprint import canonical_json, text_hash
from .metrics import finite_float, short_repr

Key = tuple  # path of a decision: ("optimizer", 0, "lr") = "lr" under option 0 of "optimizer"

NUMERIC_TYPES = ("randint", "uniform", "quniform", "loguniform", "qloguniform",
                 "normal", "qnormal", "lognormal", "qlognormal")
ALL_TYPES = ("choice",) + NUMERIC_TYPES

# Standard scores of normal types are clipped to ±Z_MAX (a two-sided tail of 1e-15), so a value
# drawn for them is always within mu ± Z_MAX·sigma, which parsing checks to be finite.
Z_MAX = 8.0
MAX_NESTING = 16  # levels of nested choices
MAX_EXACT_INTEGER = 2.0 ** 53  # randint bounds: every integer up to here is exactly a float


class SearchSpaceError(ValueError):
    """A search space that cannot be parsed; the message names the offending parameter."""


def key_name(key: Key) -> str:
    """Human-readable path of a decision key, e.g. 'optimizer[sgd].lr'."""
    return ".".join(str(k) for k in key)


@dataclass(frozen=True)
class ChoiceDecision:
    """A categorical decision; `subspaces[i]` holds the decisions active when option i is chosen."""

    key: Key
    options: tuple  # the option values as NNI gives them (for nested choices, the `_name`s)
    subspaces: tuple  # tuple[Optional[tuple[Decision, ...]], ...]
    nested: bool = False

    @property
    def size(self) -> int:
        return len(self.options)


@dataclass(frozen=True)
class NumericDecision:
    """An ordered decision of one of the NNI numeric types."""

    key: Key
    type: str
    low: Optional[float] = None  # bounded types: bounds in value space
    high: Optional[float] = None
    mu: Optional[float] = None  # normal types
    sigma: Optional[float] = None
    q: Optional[float] = None
    log: bool = False
    integer: bool = False  # randint

    @property
    def bounded(self) -> bool:
        return self.mu is None

    @property
    def size(self) -> Optional[int]:
        """Number of distinct values, or None when continuous/unbounded."""
        if self.integer:
            return int(self.high - self.low + 1)
        if self.q is not None and self.bounded:
            lo = math.ceil(self.low / self.q - 1e-9)
            hi = math.floor(self.high / self.q + 1e-9)
            extra = int(not _is_multiple(self.low, self.q)) + int(not _is_multiple(self.high, self.q))
            return max(hi - lo + 1, 0) + extra
        return None

    # -- value <-> unit coordinate ------------------------------------------------------
    def _lo_hi(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high)
        if self.integer:  # widen by half a step so every integer gets an equal share of [0, 1]
            return self.low - 0.5, self.high + 0.5
        return self.low, self.high

    def to_unit(self, value: float) -> float:
        """Unit coordinate of a value: u in [0, 1] if bounded, else a standard score."""
        return float(self.to_unit_array(np.array([value], dtype=float))[0])

    def from_unit(self, u: float) -> Union[int, float]:
        """The legal value at unit coordinate u (rounded to q / integers, clipped to bounds)."""
        x = float(self.from_unit_array(np.array([u], dtype=float))[0])
        return int(x) if self.integer else x

    def legalize(self, x: float) -> Union[int, float]:
        """Round and clip a raw value exactly as NNI defines the type."""
        v = float(self.legalize_array(np.array([x], dtype=float))[0])
        return int(v) if self.integer else v

    # Bounded transforms work on halves (lo/2, hi/2): halving is exact, so the results are the
    # same bits as (x - lo) / (hi - lo), and hi - lo cannot overflow for a range like ±1e308.
    def to_unit_array(self, values: np.ndarray) -> np.ndarray:
        """`to_unit` for an array of values."""
        with np.errstate(divide="ignore"):  # log(0) of a qlognormal 0: -inf, clipped below
            x = np.log(values) if self.log else np.asarray(values, dtype=float)
        if self.bounded:
            lo, hi = self._lo_hi()
            if hi == lo:
                return np.full_like(x, 0.5)
            return np.clip((x / 2 - lo / 2) / (hi / 2 - lo / 2), 0.0, 1.0)
        return np.clip((x - self.mu) / self.sigma, -Z_MAX, Z_MAX)

    def from_unit_array(self, units: np.ndarray) -> np.ndarray:
        """`from_unit` for an array of unit coordinates (integers returned as floats)."""
        if self.bounded:
            lo, hi = self._lo_hi()
            x = 2 * (lo / 2 + np.clip(units, 0.0, 1.0) * (hi / 2 - lo / 2))
        else:
            x = self.mu + np.clip(np.asarray(units, dtype=float), -Z_MAX, Z_MAX) * self.sigma
        if self.log:
            with np.errstate(over="ignore", under="ignore"):  # bounded: clipped to the bounds below
                x = np.exp(x)
        return self.legalize_array(x)

    def legalize_array(self, x: np.ndarray) -> np.ndarray:
        """`legalize` for an array (round half to even, as Python's round in NNI)."""
        if self.integer:
            return np.clip(np.round(x), self.low, self.high) + 0.0
        if self.q is not None:
            with np.errstate(over="ignore"):  # a bounded grid's last step may pass max float: clipped
                x = np.round(x / self.q) * self.q
        if self.bounded:
            x = np.clip(x, self.low, self.high)
        return x + 0.0  # no negative zero: rows are compared by their bytes

    @property
    def zero_allowed(self) -> bool:
        """Whether 0 is legal for a log type: only for qlognormal, where exp(x) rounds to 0."""
        return self.log and self.q is not None and not self.bounded

    def validate(self, value: Any) -> Union[int, float]:
        """`value` if it is legal for this decision, else SearchSpaceError naming the key."""
        name = key_name(self.key)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise SearchSpaceError(f"parameter {name!r} must be a number, got {short_repr(value)}")
        value = value.item() if isinstance(value, (np.integer, np.floating)) else value
        if finite_float(value) is None:
            raise SearchSpaceError(f"parameter {name!r} must be a finite float, got {short_repr(value)}")
        if self.integer:
            if int(value) != value:
                raise SearchSpaceError(f"parameter {name!r} (randint) must be an integer, got {value!r}")
            value = int(value)
        if self.bounded and not (self.low - 1e-12 <= value <= self.high + 1e-12):
            raise SearchSpaceError(f"parameter {name!r}={value!r} is outside [{self.low}, {self.high}]")
        if self.log and (value < 0 or (value == 0 and not self.zero_allowed)):
            raise SearchSpaceError(f"parameter {name!r} ({self.type}) must be positive, got {value!r}")
        return value


Decision = Union[ChoiceDecision, NumericDecision]


def _is_multiple(x: float, q: float) -> bool:
    r = x / q
    return abs(r - round(r)) < 1e-9


@dataclass(frozen=True)
class Architecture:
    """A canonical point of a search space: active decisions in space order, hashable.

    `values` holds (key, value) pairs where a choice's value is its option *index* and a
    numeric value is the legal value itself. Two Architectures are equal iff they denote
    the same parameters.
    """

    values: tuple  # tuple[tuple[Key, Union[int, float]], ...]
    _parameters_json: str = field(compare=False, repr=False, default="")

    def as_dict(self) -> dict:
        """Mapping key -> value (choice index or numeric value)."""
        return dict(self.values)

    def encode(self) -> str:
        """Canonical text: the NNI parameters as canonical JSON."""
        return self._parameters_json

    @property
    def hash(self) -> str:
        """16-hex-digit fingerprint of the parameters (shared with caches and reports)."""
        return text_hash(self._parameters_json)


class SearchSpace:
    """A parsed NNI search space; converts between NNI parameters and Architectures."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping):
            raise SearchSpaceError(f"search space must be a JSON object (dict), got {type(spec).__name__}")
        if not spec:
            raise SearchSpaceError("search space is empty: it needs at least one parameter")
        self.spec = spec
        self.decisions: tuple[Decision, ...] = tuple(_parse(spec, ()))
        # every decision, nested ones included, in a fixed depth-first order
        self.all_decisions: tuple[Decision, ...] = tuple(_walk(self.decisions))
        self.index: dict[Key, int] = {d.key: i for i, d in enumerate(self.all_decisions)}
        # for each decision: (column of the parent choice, option index) or None at top level
        self.parent: tuple = tuple(
            (self.index[d.key[:-2]], d.key[-2]) if len(d.key) >= 3 else None for d in self.all_decisions)

    # -- value rows: the numeric form the generator and the surrogates work on ----------------
    # A row has one column per decision in `all_decisions`: the option index of a choice, the
    # value of a numeric decision, NaN where a nested decision is inactive.
    def values_row(self, arch: Architecture) -> np.ndarray:
        """The value row of an Architecture."""
        row = np.full(len(self.all_decisions), np.nan)
        for key, value in arch.values:
            row[self.index[key]] = value
        return row + 0.0  # no negative zero: rows are compared by their bytes

    def architecture(self, row: np.ndarray) -> Architecture:
        """The Architecture of a value row (NaN columns are inactive)."""
        values = []
        for i, d in enumerate(self.all_decisions):
            v = row[i]
            if v == v:  # not NaN
                values.append((d.key, int(v) if isinstance(d, ChoiceDecision) or d.integer else float(v)))
        return self.make(values)

    def features(self, rows: np.ndarray) -> np.ndarray:
        """Surrogate features of value rows: option index for choices, unit coordinate for
        numeric decisions (normal types squashed to (0, 1) by the normal CDF), NaN if inactive."""
        rows = np.atleast_2d(rows)
        out = rows.astype(float, copy=True)
        for i, d in enumerate(self.all_decisions):
            if isinstance(d, NumericDecision):
                col = rows[:, i]
                ok = ~np.isnan(col)
                if ok.any():
                    u = d.to_unit_array(col[ok])
                    out[ok, i] = u if d.bounded else ndtr(u)
        return out

    # -- size -------------------------------------------------------------------------
    def size(self) -> Optional[int]:
        """Number of distinct architectures, or None when the space is infinite."""
        return _size(self.decisions)

    # -- parameters <-> Architecture -------------------------------------------------------
    def from_parameters(self, parameters: Mapping[str, Any]) -> Architecture:
        """The Architecture of an NNI parameter dict; SearchSpaceError names what is wrong."""
        if not isinstance(parameters, Mapping):
            raise SearchSpaceError(f"parameters must be a dict, got {type(parameters).__name__}")
        values: list = []
        _read(self.decisions, parameters, values)
        return self.make(values)

    def make(self, values: Sequence[tuple]) -> Architecture:
        """An Architecture from (key, value) pairs of the active decisions (any order)."""
        order = sorted(values, key=lambda kv: self.index[kv[0]])
        parameters = self._to_parameters(dict(order))
        return Architecture(tuple(order), canonical_json(parameters))

    def to_parameters(self, arch: Architecture) -> dict:
        """The NNI parameter dict of an Architecture (nested choices as {'_name': ..., ...})."""
        return self._to_parameters(arch.as_dict())

    def _to_parameters(self, values: Mapping[Key, Any]) -> dict:
        out: dict = {}
        _write(self.decisions, values, out)
        return out

    def active(self, values: Mapping[Key, Any]) -> Iterator[Decision]:
        """The decisions active under a (partial) assignment, parents before children."""
        return _active(self.decisions, values)

    def parse_decision_value(self, decision: Decision, raw: Any) -> Any:
        """Internal value of an NNI value for one decision (index for choices)."""
        if isinstance(decision, ChoiceDecision):
            return _choice_index(decision, raw)
        return decision.validate(raw)

    def enumerate(self, limit: int = 100_000) -> Optional[list[Architecture]]:
        """Every architecture when the space is finite and has at most `limit`, else None."""
        size = self.size()
        if size is None or size > limit:
            return None
        results: list[Architecture] = []

        def grow(pending: list[Decision], chosen: list) -> None:
            if not pending:
                results.append(self.make(chosen))
                return
            d, rest = pending[0], pending[1:]
            for value, children in _options(d):
                grow(list(children) + rest, chosen + [(d.key, value)])

        grow(list(self.decisions), [])
        return results


# --- parsing -----------------------------------------------------------------------------

def _parse(spec: Mapping[str, Any], prefix: Key) -> list[Decision]:
    decisions: list[Decision] = []
    for name, entry in spec.items():
        if name == "_name":
            continue
        if not isinstance(name, str):
            raise SearchSpaceError(f"parameter names must be strings, got {short_repr(name)}")
        key = prefix + (name,)
        where = key_name(key)
        if len(prefix) >= 2 * MAX_NESTING:
            raise SearchSpaceError(f"parameter {where!r} is nested more than {MAX_NESTING} choices deep")
        if not isinstance(entry, Mapping) or "_type" not in entry or "_value" not in entry:
            raise SearchSpaceError(f"parameter {where!r} must be an object with '_type' and '_value', "
                                   f"got {short_repr(entry)}")
        type_, value = entry["_type"], entry["_value"]
        if not isinstance(type_, str) or type_ not in ALL_TYPES:
            raise SearchSpaceError(f"parameter {where!r} has unknown _type {short_repr(type_)}; "
                                   f"expected one of {list(ALL_TYPES)}")
        if not isinstance(value, (list, tuple)):
            raise SearchSpaceError(f"parameter {where!r}: _value must be a list, got {short_repr(value)}")
        decisions.append(_parse_choice(key, value) if type_ == "choice" else _parse_numeric(key, type_, value))
    return decisions


def _parse_choice(key: Key, options: Sequence[Any]) -> ChoiceDecision:
    where = key_name(key)
    if len(options) == 0:
        raise SearchSpaceError(f"parameter {where!r} (choice) has no options")
    nested_flags = [isinstance(o, Mapping) and "_name" in o for o in options]
    if any(nested_flags) and not all(nested_flags):
        raise SearchSpaceError(f"parameter {where!r}: nested choices need '_name' in every option")
    if all(nested_flags):
        names = [o["_name"] for o in options]
        _check_options(where, names)
        subspaces = tuple(tuple(_parse(o, key + (i,))) for i, o in enumerate(options))
        return ChoiceDecision(key, tuple(names), subspaces, nested=True)
    _check_options(where, options)
    return ChoiceDecision(key, tuple(options), (None,) * len(options))


def _check_options(where: str, options: Sequence[Any]) -> None:
    """Options (or nested-choice names) must be JSON values, each distinct as JSON: an option
    is known by its canonical JSON, so a twin could never be told apart from the first."""
    if _option_key(list(options)) is None:  # one call for the common case, then find the culprit
        for o in options:
            if _option_key(o) is None:
                raise SearchSpaceError(f"parameter {where!r}: option {short_repr(o)} is not a JSON value "
                                       "(or is nested too deeply)")
    try:
        if len(set(options)) == len(options):
            return  # distinct under ==, so distinct as JSON
    except TypeError:
        pass  # unhashable options (lists, dicts): compare their JSON
    seen: dict[str, int] = {}
    for i, o in enumerate(options):
        text = _option_key(o)
        if text in seen:
            raise SearchSpaceError(f"parameter {where!r}: option {short_repr(o)} appears twice "
                                   f"(positions {seen[text]} and {i})")
        seen[text] = i


def _option_key(value: Any) -> Optional[str]:
    """The identity of an option value: its canonical JSON (None when it is not JSON)."""
    try:
        return canonical_json({"v": value})
    except (TypeError, ValueError, RecursionError):
        return None


def _number(where: str, x: Any, what: str) -> float:
    value = finite_float(x)
    if value is None:
        raise SearchSpaceError(f"parameter {where!r}: {what} must be a finite float, got {short_repr(x)}")
    return value


def _parse_numeric(key: Key, type_: str, value: Sequence[Any]) -> NumericDecision:
    where = key_name(key)
    want = 3 if type_.startswith("q") else 2
    if len(value) != want:
        raise SearchSpaceError(f"parameter {where!r} ({type_}) needs {want} values in _value, "
                               f"got {short_repr(list(value))}")
    q = _number(where, value[2], "q") if want == 3 else None
    if q is not None and q <= 0:
        raise SearchSpaceError(f"parameter {where!r} ({type_}): q must be positive, got {q}")
    log = "log" in type_
    if "normal" in type_:
        mu, sigma = _number(where, value[0], "mu"), _number(where, value[1], "sigma")
        if sigma <= 0:
            raise SearchSpaceError(f"parameter {where!r} ({type_}): sigma must be positive, got {sigma}")
        decision = NumericDecision(key, type_, mu=mu, sigma=sigma, q=q, log=log)
    elif type_ == "randint":
        low, high = _number(where, value[0], "lower bound"), _number(where, value[1], "upper bound")
        if max(abs(low), abs(high)) > MAX_EXACT_INTEGER:
            raise SearchSpaceError(f"parameter {where!r} (randint): bounds must lie within ±2**53, where "
                                   f"every integer is a float, got [{value[0]}, {value[1]})")
        lo, hi = math.ceil(low), math.ceil(high) - 1  # NNI: lower inclusive, upper exclusive
        if hi < lo:
            raise SearchSpaceError(f"parameter {where!r} (randint): [{value[0]}, {value[1]}) holds no integer")
        return NumericDecision(key, type_, low=float(lo), high=float(hi), integer=True)
    else:
        low, high = _number(where, value[0], "lower bound"), _number(where, value[1], "upper bound")
        if high < low:
            raise SearchSpaceError(f"parameter {where!r} ({type_}): lower bound {low} exceeds upper bound {high}")
        if log and low <= 0:
            raise SearchSpaceError(f"parameter {where!r} ({type_}): bounds must be positive, got {low}")
        decision = NumericDecision(key, type_, low=low, high=high, q=q, log=log)
    _check_finite_range(where, decision)
    return decision


def _check_finite_range(where: str, d: NumericDecision) -> None:
    """Every value drawn for `d` must be a finite float of its type: the range of a normal type
    (mu ± Z_MAX·sigma, through exp for log types) must not overflow, nor underflow to 0 for log
    types, and value / q must not overflow."""
    with np.errstate(over="ignore", under="ignore"):
        if d.bounded:
            ends = np.array([d.low, d.high])
        else:
            ends = d.mu + np.array([-Z_MAX, Z_MAX]) * d.sigma
            if not np.all(np.isfinite(ends)):
                raise SearchSpaceError(f"parameter {where!r} ({d.type}): mu ± {Z_MAX:g}·sigma overflows a "
                                       f"float (mu {d.mu}, sigma {d.sigma})")
            if d.log:
                ends = np.exp(ends)
                if not (np.isfinite(ends[1]) and ends[0] > 0):
                    raise SearchSpaceError(
                        f"parameter {where!r} ({d.type}): exp(mu ± {Z_MAX:g}·sigma) leaves the positive finite "
                        f"floats (mu {d.mu}, sigma {d.sigma}; mu ± {Z_MAX:g}·sigma must lie within [-745, 709])")
        if d.q is not None:
            steps = np.ceil(np.abs(ends) / d.q)
            if not np.all(np.isfinite(steps)) or not (d.bounded or np.all(np.isfinite(steps * d.q))):
                raise SearchSpaceError(f"parameter {where!r} ({d.type}): q = {d.q} does not fit values up to "
                                       f"{float(np.max(np.abs(ends)))}: value / q or its rounding overflows")


# --- walking -----------------------------------------------------------------------------

def _walk(decisions: Sequence[Decision]) -> Iterator[Decision]:
    for d in decisions:
        yield d
        if isinstance(d, ChoiceDecision):
            for sub in d.subspaces:
                if sub:
                    yield from _walk(sub)


def _active(decisions: Sequence[Decision], values: Mapping[Key, Any]) -> Iterator[Decision]:
    for d in decisions:
        yield d
        if isinstance(d, ChoiceDecision) and d.key in values:
            sub = d.subspaces[values[d.key]]
            if sub:
                yield from _active(sub, values)


def _size(decisions: Sequence[Decision]) -> Optional[int]:
    total = 1
    for d in decisions:
        if isinstance(d, ChoiceDecision):
            n = 0
            for sub in d.subspaces:
                s = _size(sub) if sub else 1
                if s is None:
                    return None
                n += s
        else:
            n = d.size
            if n is None:
                return None
        total *= n
    return total


def _options(d: Decision) -> list[tuple[Any, Sequence[Decision]]]:
    """(value, child decisions) for each value of a finite decision."""
    if isinstance(d, ChoiceDecision):
        return [(i, d.subspaces[i] or ()) for i in range(d.size)]
    if d.integer:
        return [(v, ()) for v in range(int(d.low), int(d.high) + 1)]
    assert d.q is not None and d.bounded
    values = {d.legalize(d.low), d.legalize(d.high)}
    k = math.ceil(d.low / d.q - 1e-9)
    while k * d.q <= d.high + 1e-9:
        values.add(d.legalize(k * d.q))
        k += 1
    return [(v, ()) for v in sorted(values)]


def _choice_index(d: ChoiceDecision, raw: Any) -> int:
    """The index of the option `raw` denotes: the one with the same JSON (1, 1.0 and True are
    three options), else an equal number (3 for 3.0, as JSON may round-trip ints as floats)."""
    where = key_name(d.key)
    if d.nested:
        if not isinstance(raw, Mapping) or "_name" not in raw:
            raise SearchSpaceError(f"parameter {where!r} is a nested choice: expected a dict with '_name', "
                                   f"got {short_repr(raw)}")
        raw = raw["_name"]
    equal = _equal_positions(d.options, raw)
    text = _option_key(raw) if equal else None
    for i in equal:
        if text is not None and _option_key(d.options[i]) == text:
            return i
    for i in equal:
        if not isinstance(raw, bool) and not isinstance(d.options[i], bool):
            return i
    raise SearchSpaceError(f"parameter {where!r}: {short_repr(raw)} is not one of the options "
                           f"{short_repr(list(d.options))}")


def _equal_positions(options: tuple, raw: Any) -> list[int]:
    """Indices of the options == raw, found at C speed (a choice may have a million options)."""
    found: list[int] = []
    try:
        while True:
            found.append(options.index(raw, found[-1] + 1 if found else 0))
    except Exception:  # noqa: BLE001 - ValueError at the end, or an __eq__ that cannot answer
        return found


def _read(decisions: Sequence[Decision], params: Mapping[str, Any], out: list) -> None:
    names = {d.key[-1] for d in decisions}
    extra = set(params) - names - {"_name"}
    if extra:
        raise SearchSpaceError(f"unknown parameter(s) {sorted(extra)}: not in the search space")
    for d in decisions:
        name = d.key[-1]
        if name not in params:
            raise SearchSpaceError(f"parameter {key_name(d.key)!r} is missing")
        raw = params[name]
        if isinstance(d, ChoiceDecision):
            index = _choice_index(d, raw)
            out.append((d.key, index))
            sub = d.subspaces[index]
            if d.nested:
                _read(sub or (), {k: v for k, v in raw.items() if k != "_name"}, out)
        else:
            out.append((d.key, d.validate(raw)))


def _write(decisions: Sequence[Decision], values: Mapping[Key, Any], out: dict) -> None:
    for d in decisions:
        if d.key not in values:
            raise SearchSpaceError(f"parameter {key_name(d.key)!r} has no value")
        v = values[d.key]
        name = d.key[-1]
        if isinstance(d, ChoiceDecision):
            if d.nested:
                sub_out: dict = {"_name": d.options[v]}
                _write(d.subspaces[v] or (), values, sub_out)
                out[name] = sub_out
            else:
                out[name] = d.options[v]
        else:
            out[name] = v
