"""Reported metrics, validated where they enter the engine.

Whatever a trial reports, a device's profiler returns or a state file holds reaches GenSynth
through `clean_metrics`: any JSON-ish value in, a flat dict of finite numbers, bools and short
strings out (plus the parsed probe `responses`), or None when nothing is usable. What cannot
be used is dropped with one logged warning that names the keys, so a huge integer, a NaN, a
deeply nested list or a megabyte of text is a logged failure of one result, never an
exception in a tuner callback (which would kill NNI's dispatcher thread) and never a value
that poisons the surrogates or the saved state.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
from itertools import chain, islice
from typing import Any, Collection, Mapping, Optional

import numpy as np

from ..constraints import short_repr

_logger = logging.getLogger("nni_gensynth.engine")

# A trial's probe responses travel in its metric dict under this key, as a dict or a JSON
# string: {decision name: {"target": value in the decision's domain, "weight": 0..1}}.
RESPONSES_KEY = "responses"
# A profiler's answer and a trial's result name what training the network would be under this
# key (text): equal keys train identically, so the engine trains each key once (see GenSynth).
TRAINING_KEY = "training_key"

MAX_EXACT_INTEGER = 2 ** 53  # integers up to here are kept as integers: each is exactly a float
MAX_METRICS = 256  # metric keys kept per result (the ones U and 1_r read always come first)
MAX_KEY_LENGTH = 128  # characters in a metric or decision name
MAX_TEXT_LENGTH = 1024  # characters in a text metric ("rapl", "model", a network's architecture string)
MAX_JSON_TEXT = 1_000_000  # characters of JSON text parsed (a report as text, or responses)
MAX_RESPONSES = 1024  # probed decisions per result
MAX_TARGET_DEPTH = 6  # nesting of a response target (a choice option may be a list or dict)
MAX_TARGET_ITEMS = 64  # items per list or dict inside a response target

_INVALID = object()  # marks a value `bounded_json` cannot keep
def finite_float(value: Any) -> Optional[float]:
    """`value` as a float when it is a real number with a finite float value, else None.

    Bools are not numbers here; an integer too large for a float (10**400) is None, not an
    OverflowError."""
    if type(value) is float:  # the common case, without the abstract-class checks below
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_json_text(text: str, what: str) -> Any:
    """The value of a JSON text, or None (with a warning) when it is too long, invalid or
    nested beyond what the parser can recurse into."""
    if len(text) > MAX_JSON_TEXT:
        _logger.warning("%s: JSON text of %d characters (more than %d) ignored", what, len(text), MAX_JSON_TEXT)
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        _logger.warning("%s: not valid JSON (%s); ignored", what, short_repr(str(exc)))
        return None


def bounded_json(value: Any, depth: int = MAX_TARGET_DEPTH) -> Any:
    """A copy of a JSON value with finite numbers, short text, at most `depth` levels and
    MAX_TARGET_ITEMS items per container; `_INVALID` when any part falls outside."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real):
        if finite_float(value) is None:
            return _INVALID
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT_LENGTH else _INVALID
    if depth <= 0:
        return _INVALID
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_TARGET_ITEMS:
            return _INVALID
        items = [bounded_json(v, depth - 1) for v in value]
        return _INVALID if any(v is _INVALID for v in items) else items
    if isinstance(value, Mapping):
        if len(value) > MAX_TARGET_ITEMS or not all(isinstance(k, str) for k in value):
            return _INVALID
        out = {k: bounded_json(v, depth - 1) for k, v in value.items()}
        return _INVALID if any(v is _INVALID for v in out.values()) else out
    return _INVALID


def parse_responses(raw: Any) -> Optional[dict]:
    """Probe responses {decision name: {"target": value, "weight": w}} from a dict or JSON text;
    None when absent or unusable. Entries without a usable target or a finite weight are dropped;
    at most MAX_RESPONSES entries are read."""
    if isinstance(raw, str):
        raw = parse_json_text(raw, "probe responses")
    if not isinstance(raw, Mapping) or not raw:
        return None
    out: dict = {}
    for name, response in islice(raw.items(), MAX_RESPONSES):
        if not isinstance(name, str) or len(name) > MAX_KEY_LENGTH:
            continue
        if not isinstance(response, Mapping) or "target" not in response:
            continue
        target = bounded_json(response["target"])
        weight = finite_float(response.get("weight", 1.0))
        if target is _INVALID or weight is None:
            continue
        out[name] = {"target": target, "weight": weight}
    if len(raw) > MAX_RESPONSES:
        _logger.warning("probe responses: %d entries, only the first %d read", len(raw), MAX_RESPONSES)
    if not out:
        _logger.warning("probe responses carry no usable entry; ignored")
    return out or None


def clean_metrics(raw: Any, keep: Collection[str] = (), max_keys: int = MAX_METRICS) -> Optional[dict]:
    """The usable part of a reported result, or None when it carries nothing usable.

    `raw` is what a trial reported: a dict of metrics, a bare number (read as {"default": x})
    or either as JSON text. Kept: string keys of at most MAX_KEY_LENGTH characters whose value
    is a finite number (a float; an integer up to 2**53 stays an int), a bool or a text of at
    most MAX_TEXT_LENGTH characters;
    `responses` parsed by `parse_responses`. At most `max_keys` keys, the ones named in `keep`
    (what U and 1_r read) first. Everything else is dropped, with one warning naming the keys;
    None values are dropped silently (a metric the trial could not compute)."""
    try:
        return _clean(raw, keep, max_keys)
    except Exception as exc:  # noqa: BLE001 - a hostile Mapping (items() raising...) is a failed result
        _logger.warning("reported metrics could not be read (%s: %s); treated as a failure",
                        type(exc).__name__, short_repr(str(exc)))
        return None


def _clean(raw: Any, keep: Collection[str], max_keys: int) -> Optional[dict]:
    if isinstance(raw, str):
        raw = parse_json_text(raw, "reported metrics")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        number = finite_float(raw)
        if number is None:
            _logger.warning("reported value %s is neither a finite number nor a dict of metrics; "
                            "treated as a failure", short_repr(raw))
            return None
        return {"default": number}
    out: dict = {}
    dropped: list[str] = []
    first = [k for k in dict.fromkeys(keep) if isinstance(k, str) and k in raw]
    rest = (k for k in raw if k not in first)
    for key in islice(chain(first, rest), max_keys):
        value, reason = _clean_value(key, raw[key])
        if reason:
            dropped.append(f"{short_repr(key)} ({reason})")
        elif value is not None:
            out[key] = value
    if len(raw) > max_keys:
        dropped.append(f"{len(raw) - max_keys} keys beyond the first {max_keys}")
    if dropped:
        _logger.warning("reported metrics: ignored %s%s", ", ".join(dropped[:10]),
                        f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
    return out


def _clean_value(key: Any, value: Any) -> tuple[Any, str]:
    """(clean value or None, reason it was dropped or '')."""
    if not isinstance(key, str):
        return None, "key is not a string"
    if len(key) > MAX_KEY_LENGTH:
        return None, f"key longer than {MAX_KEY_LENGTH} characters"
    if key == RESPONSES_KEY:
        if value is None:
            return None, ""
        responses = parse_responses(value)
        return (responses, "") if responses is not None else (None, "unusable probe responses")
    if value is None:
        return None, ""
    if isinstance(value, (bool, np.bool_)):
        return bool(value), ""
    if isinstance(value, numbers.Real):
        number = finite_float(value)
        if number is None:
            return None, f"not a finite float: {short_repr(value)}"
        if isinstance(value, numbers.Integral) and abs(number) <= MAX_EXACT_INTEGER:
            return int(value), ""  # a count stays a count (params 22186, not 22186.0)
        return number, ""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_LENGTH:
            return None, f"text longer than {MAX_TEXT_LENGTH} characters"
        return value, ""
    return None, f"a {type(value).__name__}, not a number, bool or short text"
