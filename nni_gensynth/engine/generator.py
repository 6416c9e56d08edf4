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
from typing import Any, Optional

import numpy as np

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
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A fresh network N_s drawn from θ_G (nested decisions only when active)."""
        values: dict = {}
        for d in self.space.active(values):
            values[d.key] = self._draw(d, rng)
        return self.space.make(list(values.items()))

    def mutate(self, arch: Architecture, rng: np.random.Generator, n_changes: int = 1) -> Architecture:
        """A neighbour of `arch`: `n_changes` active decisions redrawn from θ_G (choices are
        forced to a different option; numeric values move by the decision's current scale)."""
        current = arch.as_dict()
        active_keys = [d.key for d in self.space.active(current)]
        picks = set(rng.choice(len(active_keys), size=min(n_changes, len(active_keys)), replace=False).tolist())
        values: dict = {}
        for d in self.space.active(values):
            j = active_keys.index(d.key) if d.key in active_keys else -1
            if d.key in current and j not in picks:
                values[d.key] = current[d.key]
            elif d.key in current:
                values[d.key] = self._perturb(d, current[d.key], rng)
            else:  # newly activated nested decision
                values[d.key] = self._draw(d, rng)
        return self.space.make(list(values.items()))

    def _draw(self, d: Any, rng: np.random.Generator) -> Any:
        i = self.space.index[d.key]
        if isinstance(d, ChoiceDecision):
            cdf = self._cumulative(i)
            return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), d.size - 1)
        return d.from_unit(self._draw_unit(d, self.mean[i], self.std(i), rng))

    def _perturb(self, d: Any, value: Any, rng: np.random.Generator) -> Any:
        i = self.space.index[d.key]
        if isinstance(d, ChoiceDecision):
            if d.size == 1:
                return value
            p = self.probabilities(i).copy()
            p[value] = 0.0
            return int(rng.choice(d.size, p=p / p.sum()))
        u = d.to_unit(value)
        step = max(self.std(i), 1.0 / (d.size or 50)) if d.bounded else self.std(i)
        for _ in range(8):
            new = d.from_unit(self._draw_unit(d, u, step, rng))
            if new != value:
                return new
            step *= 1.5
        return new

    @staticmethod
    def _draw_unit(d: NumericDecision, mean: float, std: float, rng: np.random.Generator) -> float:
        if not d.bounded:
            return float(rng.normal(mean, std))
        for _ in range(32):  # truncated normal on [0, 1] by rejection
            u = rng.normal(mean, std)
            if 0.0 <= u <= 1.0:
                return float(u)
        return float(rng.uniform(0.0, 1.0))

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
        p = np.maximum(p, floor)
        p = p / p.sum()
        self.logits[i] = np.log(p) - np.log(p).max()

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """θ_G as plain JSON-able data."""
        return {"logits": {str(i): v.tolist() for i, v in self.logits.items()},
                "mean": {str(i): v for i, v in self.mean.items()},
                "log_std": {str(i): v for i, v in self.log_std.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore θ_G saved by `state_dict` (same search space)."""
        logits = {int(i): np.asarray(v, dtype=float) for i, v in state["logits"].items()}
        for i, v in logits.items():
            if i not in self.logits or self.logits[i].shape != v.shape:
                raise ValueError("generator state does not match this search space")
        self.logits.update(logits)
        self._cdf.clear()
        self.mean.update({int(i): float(v) for i, v in state["mean"].items()})
        self.log_std.update({int(i): float(v) for i, v in state["log_std"].items()})
