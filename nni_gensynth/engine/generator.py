"""The generator G(s; θ_G): a learnable distribution over a search space.

θ_G holds one distribution per decision: logits for a choice; a location and a scale in the
decision's unit coordinate for a numeric one (u in [0, 1] for bounded types — log space for
log types — or the standard score for normal types). Sampling honours bounds, q and integer
rounding through `NumericDecision.from_unit`. The inquisitor returns Δθ_G as a
`GeneratorDelta`; `apply` adds it and then enforces a diversity floor so a taught generator
keeps producing many distinct networks rather than collapsing onto one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from .metrics import finite_float, short_repr
from .space import Architecture, ChoiceDecision, NumericDecision, SearchSpace


@dataclass
class GeneratorDelta:
    """Δθ_G: additive changes, keyed by the decision's index in `space.all_decisions`."""

    logits: dict[int, np.ndarray] = field(default_factory=dict)
    mean: dict[int, float] = field(default_factory=dict)
    log_std: dict[int, float] = field(default_factory=dict)

    def norm(self) -> float:
        """Size of the update (L2 over every component), for logging."""
        parts = [float(np.sum(np.square(v))) for v in self.logits.values()]
        parts += [v * v for v in self.mean.values()] + [v * v for v in self.log_std.values()]
        return math.sqrt(sum(parts))


class Generator:
    """θ_G over `space`, optionally centred on a human-designed prototype."""

    def __init__(self, space: SearchSpace, prototype: Optional[Architecture] = None, *,
                 prototype_weight: float = 4.0, prototype_std: float = 0.2,
                 min_share: float = 0.2, min_std: float = 0.04) -> None:
        self.space = space
        self.min_share = min_share  # every option keeps >= min_share / n_options probability
        self.min_std = min_std
        self.logits: dict[int, np.ndarray] = {}
        self.mean: dict[int, float] = {}
        self.log_std: dict[int, float] = {}
        self._cdf: dict[int, np.ndarray] = {}  # cumulative option probabilities, rebuilt after `apply`
        for i, d in enumerate(space.all_decisions):
            if isinstance(d, ChoiceDecision):
                self.logits[i] = np.zeros(d.size)
            else:
                # near-uniform on [0, 1] for bounded types; the prior itself for normal types
                self.mean[i] = 0.5 if d.bounded else 0.0
                self.log_std[i] = math.log(1.0)
        if prototype is not None:
            for key, value in prototype.values:
                i = space.index[key]
                d = space.all_decisions[i]
                if isinstance(d, ChoiceDecision):
                    self.logits[i][value] += math.log(prototype_weight)
                else:
                    self.mean[i] = d.to_unit(value)
                    self.log_std[i] = math.log(prototype_std if d.bounded else 0.5)

    # -- distributions --------------------------------------------------------------------
    def probabilities(self, i: int) -> np.ndarray:
        """Option probabilities of choice decision i."""
        z = self.logits[i] - np.max(self.logits[i])
        p = np.exp(z)
        return p / p.sum()

    def _cumulative(self, i: int) -> np.ndarray:
        cached = self._cdf.get(i)
        if cached is None:
            cached = self._cdf[i] = np.cumsum(self.probabilities(i))
        return cached

    def std(self, i: int) -> float:
        return math.exp(self.log_std[i])

    def entropy(self) -> float:
        """Σ over decisions of the entropy in nats (numeric: of the unit-space normal, relative
        to a unit-width uniform), a single number that falls as the generator specialises."""
        total = 0.0
        for i, d in enumerate(self.space.all_decisions):
            if isinstance(d, ChoiceDecision):
                p = self.probabilities(i)
                total += float(-np.sum(p * np.log(p + 1e-300)))
            else:
                total += min(0.5 * math.log(2 * math.pi * math.e) + self.log_std[i], 0.0)
        return total

    # -- sampling ---------------------------------------------------------------------------
    # Sampling works on value rows (see `SearchSpace.values_row`), many at once: a pool of a
    # few hundred candidates per request must cost milliseconds, not a Python loop each.
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A fresh network N_s drawn from θ_G (nested decisions only when active)."""
        return self.space.architecture(self.sample_rows(1, rng)[0])

    def sample_rows(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n value rows drawn from θ_G."""
        return self._complete(np.full((n, len(self.space.all_decisions)), np.nan), rng)

    def mutate_rows(self, parents: np.ndarray, rng: np.random.Generator, n_changes: np.ndarray) -> np.ndarray:
        """Neighbours of parent rows: in row r, `n_changes[r]` active decisions change — a choice
        to another option drawn from θ_G, a numeric value by a step of the decision's current
        scale. Nested decisions that a change activates are drawn from θ_G."""
        rows = np.array(parents, dtype=float, copy=True)
        n_rows, n_cols = rows.shape
        active = ~np.isnan(rows)
        # pick columns to change: random priorities, inactive columns never picked
        priority = np.where(active, rng.random(rows.shape), -1.0)
        order = np.argsort(-priority, axis=1)
        n_active = active.sum(axis=1)
        for r in range(n_rows):
            for c in order[r, : min(int(n_changes[r]), int(n_active[r]))]:
                rows[r, c] = np.nan  # marked: redrawn below
        changed = active & np.isnan(rows)
        for i, d in enumerate(self.space.all_decisions):
            hit = changed[:, i]
            if not hit.any():
                continue
            old = parents[hit, i]
            if isinstance(d, ChoiceDecision):
                rows[hit, i] = self._other_option(i, d, old, rng)
            else:
                rows[hit, i] = self._step(i, d, old, rng)
        return self._complete(rows, rng, keep=~changed)

    def _complete(self, rows: np.ndarray, rng: np.random.Generator, keep: Optional[np.ndarray] = None) -> np.ndarray:
        """Enforce the nesting structure: inactive columns become NaN, active empty ones are drawn."""
        for i, d in enumerate(self.space.all_decisions):
            parent = self.space.parent[i]
            if parent is None:
                is_active = np.ones(len(rows), dtype=bool)
            else:
                is_active = rows[:, parent[0]] == parent[1]
            rows[~is_active, i] = np.nan
            missing = is_active & np.isnan(rows[:, i])
            m = int(missing.sum())
            if m:
                rows[missing, i] = self._draw(i, d, m, rng)
        return rows

    def _draw(self, i: int, d: Any, m: int, rng: np.random.Generator) -> np.ndarray:
        if isinstance(d, ChoiceDecision):
            cdf = self._cumulative(i)
            return np.minimum(np.searchsorted(cdf, rng.random(m) * cdf[-1], side="right"), d.size - 1)
        return d.from_unit_array(self._unit_normal(d, np.full(m, self.mean[i]), self.std(i), rng))

    def _other_option(self, i: int, d: ChoiceDecision, old: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """For each old option, another one drawn from θ_G with the old one's probability removed.

        Inverse-CDF sampling on the one cached CDF: the CDF without option o is cdf[j] below o and
        cdf[j] - p[o] from o on, so the draw is a count of entries below u on each side of o. No
        per-row copy of the option probabilities, which for a choice of a million options and a
        pool of mutants would take gigabytes."""
        if d.size == 1:
            return old
        cdf = self._cumulative(i)
        o = old.astype(int)
        p_old = self.probabilities(i)[o]
        u = rng.random(len(old)) * (cdf[-1] - p_old)
        below = np.minimum(np.searchsorted(cdf, u, side="left"), o)
        above = np.maximum(np.searchsorted(cdf, u + p_old, side="left") - o, 0)
        return np.minimum(below + above, d.size - 1).astype(float)

    def _step(self, i: int, d: NumericDecision, old: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        centre = d.to_unit_array(old)
        scale = max(self.std(i), 1.0 / (d.size or 50)) if d.bounded else self.std(i)
        new = d.from_unit_array(self._unit_normal(d, centre, scale, rng))
        for _ in range(6):  # a step that rounds back onto the old value: step further
            same = new == old
            if not same.any():
                break
            scale *= 1.5
            new[same] = d.from_unit_array(self._unit_normal(d, centre[same], scale, rng))
        return new

    @staticmethod
    def _unit_normal(d: NumericDecision, mean: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
        """Normal draws in unit space, truncated to [0, 1] (by rejection) for bounded types."""
        u = rng.normal(mean, std)
        if not d.bounded:
            return u
        for _ in range(32):
            bad = (u < 0.0) | (u > 1.0)
            if not bad.any():
                return u
            u[bad] = rng.normal(mean[bad], std)
        bad = (u < 0.0) | (u > 1.0)
        u[bad] = rng.uniform(0.0, 1.0, int(bad.sum()))
        return u

    # -- learning -----------------------------------------------------------------------------
    def apply(self, delta: GeneratorDelta) -> None:
        """θ_G += Δθ_G, then the diversity floor (minimum option share, minimum scale)."""
        self._cdf.clear()
        for i, dl in delta.logits.items():
            self.logits[i] = self.logits[i] + np.asarray(dl, dtype=float)
            self._floor_choice(i)
        for i, dm in delta.mean.items():
            d = self.space.all_decisions[i]
            m = self.mean[i] + float(dm)
            self.mean[i] = min(max(m, 0.0), 1.0) if d.bounded else m
        for i, ds in delta.log_std.items():
            self.log_std[i] = min(max(self.log_std[i] + float(ds), math.log(self.min_std)), math.log(1.0))

    def _floor_choice(self, i: int) -> None:
        p = self.probabilities(i)
        floor = self.min_share / len(p)
        if p.min() < floor:  # mix with the uniform so that every option keeps `floor`
            p = floor + (1.0 - self.min_share) * (p - p.min()) / (1.0 - len(p) * p.min())
        self.logits[i] = np.log(p) - np.log(p).max()

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """θ_G as plain JSON-able data (a large choice's logits packed, see `pack_logits`)."""
        return {"logits": {str(i): pack_logits(v) for i, v in self.logits.items()},
                "mean": {str(i): v for i, v in self.mean.items()},
                "log_std": {str(i): v for i, v in self.log_std.items()}}

    def load_state_dict(self, state: Any) -> None:
        """Restore θ_G saved by `state_dict` (same search space). ValueError, with θ_G unchanged,
        unless every part is present, finite and fits this space."""
        if not isinstance(state, dict) or not all(isinstance(state.get(k), dict) for k in ("logits", "mean", "log_std")):
            raise ValueError("generator state must hold 'logits', 'mean' and 'log_std' objects")
        try:
            logits = {i: unpack_logits(v, self.logits[i].shape[0]) for i, v in _by_index(state["logits"], self.logits)}
            mean = {i: _finite_number(v) for i, v in _by_index(state["mean"], self.mean)}
            log_std = {i: min(max(_finite_number(v), math.log(self.min_std)), 0.0)
                       for i, v in _by_index(state["log_std"], self.log_std)}
        except (TypeError, OverflowError) as exc:
            raise ValueError(f"generator state: {short_repr(str(exc))}") from None
        for i, d in enumerate(self.space.all_decisions):
            if i in mean and d.bounded:
                mean[i] = min(max(mean[i], 0.0), 1.0)
        self.logits.update(logits)
        self._cdf.clear()
        self.mean.update(mean)
        self.log_std.update(log_std)


# Logits of a choice with more options than this are saved packed when most share one value.
PACK_MIN_OPTIONS = 1024


def pack_logits(logits: np.ndarray) -> Union[list, dict]:
    """Logits as JSON: a list, or for a large choice {"size", "fill", "index", "value"} — every
    logit equals `fill` except those at `index`. A taught generator moves only the options it
    has seen and the diversity floor leaves the rest equal, so a million options save as a few
    numbers instead of 20 MB of text after every result."""
    if len(logits) < PACK_MIN_OPTIONS:
        return logits.tolist()
    values, counts = np.unique(logits, return_counts=True)
    fill = values[np.argmax(counts)]
    index = np.flatnonzero(logits != fill)
    if len(index) > len(logits) // 4:
        return logits.tolist()
    return {"size": len(logits), "fill": float(fill), "index": index.tolist(), "value": logits[index].tolist()}


def unpack_logits(saved: Any, size: int) -> np.ndarray:
    """The logits `pack_logits` saved, checked to have `size` finite entries (else ValueError)."""
    if isinstance(saved, dict):
        if saved.get("size") != size:
            raise ValueError(f"generator state: a choice of {saved.get('size')!r} options, expected {size}")
        logits = np.full(size, _finite_number(saved.get("fill")))
        index = np.asarray(saved.get("index"), dtype=np.int64)
        value = np.asarray(saved.get("value"), dtype=float)
        if index.ndim != 1 or index.shape != value.shape or (index.size and (index.min() < 0 or index.max() >= size)):
            raise ValueError("generator state: packed logits with bad indices")
        logits[index] = value
    else:
        logits = np.asarray(saved, dtype=float)
    if logits.shape != (size,) or not np.all(np.isfinite(logits)):
        raise ValueError(f"generator state: logits must be {size} finite numbers")
    return logits


def _by_index(saved: dict, current: dict) -> list[tuple[int, Any]]:
    """(decision index, saved value) pairs, each index one of `current`'s (else ValueError)."""
    pairs = []
    for key, value in saved.items():
        try:
            i = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"generator state: {key!r} is not a decision index") from None
        if i not in current:
            raise ValueError("generator state does not match this search space")
        pairs.append((i, value))
    return pairs


def _finite_number(value: Any) -> float:
    number = finite_float(value)
    if number is None:
        raise ValueError(f"generator state: {short_repr(value)} is not a finite number")
    return number
