"""A model space's mutables as the engine's SearchSpace, and engine points back as NNI samples.

`model_space.simplify()` gives a flat dict label -> mutable. Each becomes one engine decision:

- `Categorical` -> `choice` (its values, or their indices when a value is not plain JSON);
- `Numerical` -> the NNI HPO type of its distribution (uniform, quniform, loguniform,
  qloguniform, normal, qnormal, lognormal, qlognormal); a custom scipy distribution -> `uniform`
  over its 0.1%..99.9% quantiles; values go through the mutable's own `qclip` on the way back;
- `CategoricalMultiple` -> `choice` over its subsets (of `n_chosen` values when set);
- constraints (`ExpressionConstraint` and other annotations) are no decision: a sample they
  reject is rejected by `model_space.freeze`, and the strategy tells the engine it failed.

Nesting: a mutable inside a `LayerChoice` candidate (or a `Repeat` block, or any module a sample
may leave out) matters only when that candidate is chosen. The model space says which labels a
sample uses: `check_contains` reads only those. Reading it under each value of each choice turns
the flat dict into nested `_name` choices, so the engine never varies, and never trains twice, what
a network does not use. Labels whose use is not tree-shaped stay flat. A sample for NNI always
holds every label: labels a network does not use are filled from a fixed valid sample.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
import logging
import math
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from nni.mutable import Categorical, CategoricalMultiple, Mutable, MutableAnnotation, Numerical, SampleValidationError

from ..engine.space import Architecture, SearchSpace

_logger = logging.getLogger("nni_gensynth.nas")

MAX_SUBSETS = 100_000  # subsets of a CategoricalMultiple the engine may choose among
REPAIR_TRIES = 20  # random samples tried to find a valid one with one choice fixed
CUSTOM_QUANTILES = (0.001, 0.999)  # range searched for a Numerical with a custom distribution

Sample = dict
Check = Callable[[Mapping[str, Any]], Any]  # check_contains: None when valid, else an exception


class NasSpaceError(ValueError):
    """A model space the engine cannot search; the message names the label."""


# -- one decision per label --------------------------------------------------------------------

def _plain_json(value: Any) -> bool:
    """Whether `value` survives a JSON round trip unchanged (so it can be an engine option)."""
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return abs(value) <= 2 ** 53
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


def _distinct_json(values: Sequence[Any]) -> bool:
    """Plain JSON and distinct as JSON text (1, 1.0 and True are three options)."""
    if not all(_plain_json(v) for v in values):
        return False
    texts = {json.dumps(v, sort_keys=True) for v in values}
    return len(texts) == len(values)


class _Choice:
    """A Categorical: engine options are its values, or their indices when not plain JSON."""

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = list(values)
        self.options = list(values) if _distinct_json(values) else list(range(len(values)))

    @property
    def spec(self) -> dict:
        return {"_type": "choice", "_value": list(self.options)}

    def decode(self, option: Any) -> Any:
        return self.values[self.options.index(option)]


class _Subsets(_Choice):
    """A CategoricalMultiple: one option per subset (of n_chosen values when set), in NNI's order."""

    def __init__(self, label: str, values: Sequence[Any], n_chosen: Optional[int]) -> None:
        sizes = [n_chosen] if n_chosen is not None else range(len(values) + 1)
        count = sum(math.comb(len(values), k) for k in sizes)
        if count > MAX_SUBSETS:
            raise NasSpaceError(f"mutable {label!r}: {count} subsets to choose among (more than {MAX_SUBSETS})")
        index_sets = [list(c) for k in sizes for c in itertools.combinations(range(len(values)), k)]
        self.subsets = [[values[i] for i in c] for c in index_sets]
        self.values = self.subsets
        self.options = self.subsets if all(_plain_json(v) for v in values) else index_sets


class _Number:
    """A Numerical: the NNI HPO type of its distribution; values back through its `qclip`."""

    def __init__(self, label: str, mutable: Numerical) -> None:
        self.mutable = mutable
        self.spec = _numeric_spec(label, mutable)

    def decode(self, value: Any) -> Any:
        return self.mutable.qclip(float(value))


def _numeric_spec(label: str, m: Numerical) -> dict:
    q = [m.quantize] if m.quantize is not None else []
    prefix = "q" if q else ""
    if m.mu is not None and m.sigma is not None:
        kind = "lognormal" if m.log_distributed else "normal"
        return {"_type": prefix + kind, "_value": [float(m.mu), float(m.sigma)] + q}
    low, high = float(m.low), float(m.high)
    built_from_bounds = getattr(m.distribution.dist, "name", "") in ("uniform", "loguniform", "reciprocal")
    if built_from_bounds and math.isfinite(low) and math.isfinite(high):
        kind = "loguniform" if m.log_distributed else "uniform"
        return {"_type": prefix + kind, "_value": [low, high] + q}
    lo_q, hi_q = (float(m.distribution.ppf(p)) for p in CUSTOM_QUANTILES)
    low, high = max(low, lo_q), min(high, hi_q)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise NasSpaceError(f"mutable {label!r}: cannot bound its distribution {m.distribution!r}")
    return {"_type": prefix + "uniform", "_value": [low, high] + q}


def _codec(label: str, mutable: Mutable) -> Union[_Choice, _Number]:
    if isinstance(mutable, Categorical):
        return _Choice(mutable.values)
    if isinstance(mutable, CategoricalMultiple):
        return _Subsets(label, mutable.values, mutable.n_chosen)
    if isinstance(mutable, Numerical):
        return _Number(label, mutable)
    raise NasSpaceError(f"mutable {label!r} is a {type(mutable).__name__}; GenSynth searches Categorical, "
                        f"CategoricalMultiple and Numerical mutables (and honours constraints)")


# -- which labels a sample uses ----------------------------------------------------------------

class _ReadRecorder(dict):
    """A sample that remembers which labels were looked up in it."""

    def __init__(self, sample: Mapping[str, Any]) -> None:
        super().__init__(sample)
        self.read: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.read.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def read_labels(check: Check, sample: Mapping[str, Any]) -> Optional[frozenset]:
    """The labels `check` (a `check_contains`) reads to accept `sample`; None when it rejects it."""
    recorder = _ReadRecorder(sample)
    try:
        error = check(recorder)
    except Exception:  # noqa: BLE001 - NNI raises some validation errors instead of returning them
        return None
    return None if error is not None else frozenset(recorder.read)


def structure_check(model_space: Mutable) -> Check:
    """The `check_contains` that reads only what a sample uses: the PyTorch model space's (raw
    format: the space itself; simplified format: a dry-run instance), else the space's own."""
    simplified_model = getattr(model_space, "model", None)
    if simplified_model is None or not hasattr(simplified_model, "trace_copy"):
        return model_space.check_contains
    try:
        module = simplified_model.trace_copy().get(traceable=False)
    except Exception as exc:  # noqa: BLE001 - no structure: every mutable is a decision
        _logger.info("model space could not be instantiated to read its structure (%s); searching it flat", exc)
        return model_space.check_contains
    evaluator = getattr(model_space, "evaluator", None)

    def check(sample: Mapping[str, Any]) -> Any:
        error = module.check_contains(sample)
        if error is None and isinstance(evaluator, Mutable):
            error = evaluator.check_contains(sample)
        return error
    return check


# -- the nested structure ----------------------------------------------------------------------

Entry = Union[str, tuple]  # a label, or (choice label, {option index: [entries]})


class _Structure:
    """Builds the nested entries of a model space by reading `check` under each choice value."""

    def __init__(self, check: Check, choices: Mapping[str, Sequence[Any]], order: Sequence[str],
                 sample_with: Callable[[Sample, str, Any], Optional[Sample]]) -> None:
        self.check = check
        self.choices = choices
        self.order = list(order)
        self.sample_with = sample_with

    def entries(self, sample: Sample, pool: frozenset) -> list:
        """The entries of the labels in `pool` under `sample`: flat labels the sample uses, and
        choices that decide which other labels are used, with each option's own entries."""
        used = read_labels(self.check, sample) or pool
        active = [label for label in self.order if label in pool and label in used]
        variants, decided = self._variants(sample, pool, active)
        top = {c: d for c, d in decided.items() if not any(c in d2 for o, d2 in decided.items() if o != c)}
        claims = Counter(label for d in top.values() for label in d)
        shared = {label for label, n in claims.items() if n > 1}
        flat = {label for label in active if label not in top and (claims[label] == 0 or label in shared)}
        out: list = []
        for label in self.order:
            if label in top:
                others = frozenset().union(*(top[o] | {o} for o in top if o != label))
                below = pool - flat - others - shared - {label}
                out.append((label, {i: self.entries(s, below) for i, (s, _) in variants[label].items()}))
            elif label in flat:
                out.append(label)
        return out

    def _variants(self, sample: Sample, pool: frozenset, active: list) -> tuple[dict, dict]:
        """For each active choice: its valid samples per value with the labels they read, and the
        labels whose use that choice decides."""
        variants: dict = {}
        decided: dict = {}
        for c in active:
            if c not in self.choices:
                continue
            per_value = {}
            for i, value in enumerate(self.choices[c]):
                s = self.sample_with(sample, c, value)
                used = read_labels(self.check, s) if s is not None else None
                if used is not None:
                    per_value[i] = (s, used & pool)
            if len(per_value) < 2:
                continue
            reads = [r for _, r in per_value.values()]
            labels = (frozenset().union(*reads) - frozenset.intersection(*reads)) - {c}
            if labels:
                variants[c], decided[c] = per_value, labels
        return variants, decided


def _placed(entries: Iterable[Entry]) -> set:
    out: set = set()
    for entry in entries:
        if isinstance(entry, tuple):
            out.add(entry[0])
            for children in entry[1].values():
                out |= _placed(children)
        else:
            out.add(entry)
    return out


def _single_owner(entries: list) -> list:
    """Entries where, within each scope, a label belongs to one entry only (a label two entries
    claim is removed below and kept flat at this scope), so no label is twice on a path."""
    counts = Counter(label for entry in entries for label in _placed([entry]))
    conflicts = {label for label, n in counts.items() if n > 1}
    out: list = []
    for entry in entries:
        if isinstance(entry, tuple):
            label, children = entry
            if label not in conflicts:
                out.append((label, {i: _single_owner(_without(kids, conflicts)) for i, kids in children.items()}))
        elif entry not in conflicts:
            out.append(entry)
    return out + sorted(conflicts)


def _without(entries: list, labels: set) -> list:
    out: list = []
    for entry in entries:
        if isinstance(entry, tuple):
            if entry[0] not in labels:
                out.append((entry[0], {i: _without(kids, labels) for i, kids in entry[1].items()}))
        elif entry not in labels:
            out.append(entry)
    return out


# -- the mapping -------------------------------------------------------------------------------

class NasSearchSpace:
    """The engine's SearchSpace of an NNI model space, and its points as NNI samples.

    `space` is the engine's SearchSpace; `to_sample(arch)` the full NNI sample of an engine point
    (labels the network does not use filled from a fixed valid sample); `model_labels` the labels
    of the model (not of a mutable evaluator); `used_labels(sample)` the labels a sample uses.
    """

    def __init__(self, model_space: Mutable, seed: int = 0) -> None:
        self.model_space = model_space
        mutables = self._mutables = model_space.simplify()
        self._codecs = {str(label): _codec(label, m) for label, m in mutables.items()  # plain str: NNI's
                        if not isinstance(m, MutableAnnotation)}  # label class does not unpickle safely
        if not self._codecs:
            raise NasSpaceError("the model space has no mutable to search")
        evaluator = getattr(model_space, "evaluator", None)
        evaluator_labels = set(evaluator.simplify()) if isinstance(evaluator, Mutable) else set()
        self.model_labels = tuple(label for label in self._codecs if label not in evaluator_labels)  # str == label
        self._random = np.random.RandomState(seed)
        self.filler = self._valid_sample({})
        if self.filler is None:
            raise NasSpaceError("no valid sample found: the model space's constraints reject every one tried")
        self._check = structure_check(model_space)
        choices = {label: codec.values for label, codec in self._codecs.items() if type(codec) is _Choice}
        structure = _Structure(self._check, choices, list(self._codecs), self._sample_with)
        entries = _single_owner(structure.entries(dict(self.filler), frozenset(self._codecs)))
        entries += [label for label in self._codecs if label not in _placed(entries)]
        self._nested: set = set()
        self.spec = self._spec(entries)
        self.space = SearchSpace(self.spec)
        self._plain = not self._nested and not any(isinstance(m, MutableAnnotation) for m in mutables.values())

    # -- engine <-> NNI ----------------------------------------------------------------------
    def to_sample(self, point: Union[Architecture, Mapping[str, Any]]) -> Sample:
        """The full NNI sample of an engine Architecture (or its parameter dict)."""
        parameters = self.space.to_parameters(point) if isinstance(point, Architecture) else point
        sample = dict(self.filler)
        self._flatten(parameters, sample)
        return sample

    def read(self, sample: Mapping[str, Any]) -> Optional[frozenset]:
        """The labels `sample` uses, or None when the model space rejects it (constraints). A
        space without constraints or nesting uses every label, and accepts every engine point."""
        if self._plain:
            return frozenset(sample)
        return read_labels(self._check, sample)

    def used_labels(self, sample: Mapping[str, Any]) -> frozenset:
        """The labels `sample` uses (all of them when the model space cannot tell, or rejects it)."""
        return self.read(sample) or frozenset(sample)

    def _flatten(self, parameters: Mapping[str, Any], out: Sample) -> None:
        for label, value in parameters.items():
            if label == "_name":
                continue
            codec = self._codecs[label]
            if label in self._nested:
                out[label] = codec.decode(value["_name"])
                self._flatten(value, out)
            else:
                out[label] = codec.decode(value)

    def _spec(self, entries: Iterable[Entry]) -> dict:
        spec: dict = {}
        for entry in entries:
            if not isinstance(entry, tuple):
                spec[entry] = self._codecs[entry].spec
                continue
            label, children = entry
            codec = self._codecs[label]
            if not any(children.values()):
                spec[label] = codec.spec
                continue
            self._nested.add(label)
            spec[label] = {"_type": "choice", "_value": [
                {"_name": option, **self._spec(children.get(i, []))} for i, option in enumerate(codec.options)]}
        return spec

    # -- valid samples -----------------------------------------------------------------------
    def _sample_with(self, sample: Sample, label: str, value: Any) -> Optional[Sample]:
        """`sample` with `label` set to `value`, or a valid random sample with it, or None."""
        fixed = dict(sample, **{label: value})
        if self.model_space.contains(fixed):
            return fixed
        return self._valid_sample({label: value})

    def _valid_sample(self, fixed: Mapping[str, Any]) -> Optional[Sample]:
        """The default sample (else a seeded random one) with `fixed` values that the model
        space accepts, constraints included; None when none of REPAIR_TRIES is."""
        for attempt in range(REPAIR_TRIES + 1):
            memo: Sample = dict(fixed)
            try:
                for mutable in self._mutables.values():
                    if attempt == 0:
                        mutable.default(memo)
                    else:
                        mutable.random(memo, self._random)
                self.model_space.validate(memo)
                return {str(label): value for label, value in memo.items()}
            except (SampleValidationError, ValueError):
                continue
        return None
