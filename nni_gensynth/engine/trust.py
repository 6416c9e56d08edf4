"""How far the inquisitor trusts its probes: a learned part of θ_I.

A probe response claims something about accuracy: "this layer's channels beyond 16 carry under 5%
of its importance" (shrinking it to 16 keeps accuracy), or "this block carries a lot" (removing it
loses accuracy). Whether such claims hold depends on the data, the recipe and the decision kind,
so GenSynth learns it. After every trained network B it looks for an earlier trained network A
that was probed and that B tests: first one whose advice B follows (every decision B changed is
one A's responses asked to change, moved toward their targets; the engine proposes such networks,
`Inquisitor.probe_suggestions`), at any distance; else the nearest one (B differs from A in at
most `max_distance` active decisions). It checks each response of A on a decision where B differs:

- the response said "change toward t" and B moved toward t: the claim is that accuracy is kept,
  so it held if acc(B) >= acc(A) - tolerance;
- the response said "keep" (t is A's own value) and B changed it anyway: the claim is that
  accuracy drops, so it held if acc(B) < acc(A) - tolerance.

"Kept" means kept as far as the user needs it: with an accuracy requirement (`accuracy_bar`, its
`min`), the tolerance is A's headroom above that bar (none when A is below it), and never more
than `tolerance` (1 point). Advice that takes a network from meeting the bar to missing it did not
keep accuracy, however small the step: at a 0.5-point bar, a 1-point allowance would judge a
0.84-point loss that broke the requirement "held".

B's outcome is shared among the decisions it changed (credit 1/m each). Per decision kind (the
last part of a decision's name: `b3_expansion` -> `expansion`, `s2_width` -> `width`,
`b5_block` -> `block`) the record is a Beta(1 + held, 1 + failed) posterior; `trust(kind)` is its
mean, 0.5 before any evidence. Responses move θ_G in proportion to their weight times the trust
of their kind: misleading kinds fade toward the ablation (no probes), informative ones gain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from .metrics import finite_float
from .objective import ACCURACY, accuracy_in_range, accuracy_percent
from .space import Architecture, ChoiceDecision, SearchSpace, key_name

DEFAULT_TOLERANCE = 0.01  # accuracy (fraction) a "keeps accuracy" claim may lose and still hold
DEFAULT_MAX_DISTANCE = 4  # decisions B may differ from A in and still be evidence


def decision_kind(name: str) -> str:
    """The kind of a decision, from its name: the part after the last underscore."""
    return name.rsplit("_", 1)[-1] if "_" in name else name


@dataclass
class KindRecord:
    """Evidence about one decision kind's responses: claims that held and that failed."""

    held: float = 0.0
    failed: float = 0.0

    @property
    def trust(self) -> float:
        """Posterior mean of Beta(1 + held, 1 + failed)."""
        return (1.0 + self.held) / (2.0 + self.held + self.failed)


@dataclass
class ProbeTrust:
    """Per-kind trust in probe responses, learned from what later trained networks showed."""

    space: SearchSpace
    tolerance: float = DEFAULT_TOLERANCE
    accuracy_bar: Optional[float] = None  # the accuracy requirement's min, when there is one (fraction or percent)
    max_distance: int = DEFAULT_MAX_DISTANCE
    kinds: dict[str, KindRecord] = field(default_factory=dict)
    judged: set = field(default_factory=set)  # hashes of networks already used as evidence
    tested: int = 0  # trained networks that followed a probed network's advice (judged at any distance)
    _decisions: dict = field(init=False, repr=False, compare=False)  # the space's decisions by name

    def __post_init__(self) -> None:
        self._decisions = {key_name(d.key): d for d in self.space.all_decisions}

    def trust(self, decision_name: str) -> float:
        """Trust in responses on this decision (by its kind; 0.5 without evidence)."""
        record = self.kinds.get(decision_kind(decision_name))
        return record.trust if record is not None else 0.5

    def summary(self) -> dict[str, float]:
        """Trust per kind seen so far, for logs and plots."""
        return {kind: round(record.trust, 4) for kind, record in sorted(self.kinds.items())}

    def learn(self, records: Sequence[Any]) -> None:
        """Judge every trained, not yet judged record (in order) against the earlier probed
        record it tests (`_parent`). `records` are the engine's Records (arch, score, metrics, responses)."""
        trained = [r for r in records if r.score is not None and _accuracy(r) is not None]
        probed: list[Any] = []
        for record in trained:
            key = record.arch.hash
            if key not in self.judged:
                self.judged.add(key)
                parent, advised = self._parent(record.arch, probed)
                self.tested += advised
                if parent is not None:
                    self._judge(parent, record)
            if record.responses:
                probed.append(record)

    def _parent(self, arch: Architecture, candidates: Sequence[Any]) -> tuple[Optional[Any], bool]:
        """The probed candidate `arch` is judged against, and whether `arch` followed its advice:
        the newest candidate whose advice it follows (it changed at least one decision, and every
        one toward the target of the candidate's response on it), at any distance; else the
        nearest within `max_distance` decisions (the oldest of equally near ones); else None."""
        nearest, nearest_distance = None, self.max_distance
        for candidate in reversed(candidates):
            differing = _differing(candidate.arch, arch)
            if differing and all(self._claim(candidate, key, arch) == "keeps" for key in differing):
                return candidate, True
            if 0 < len(differing) <= nearest_distance:
                nearest, nearest_distance = candidate, len(differing)
        return nearest, False

    def _judge(self, parent: Any, child: Any) -> None:
        differing = _differing(parent.arch, child.arch)
        claims = []
        for key in differing:
            claim = self._claim(parent, key, child.arch)
            if claim is not None:
                claims.append((key_name(key), claim))
        if not claims:
            return
        parent_accuracy = _accuracy(parent)
        lost = parent_accuracy - _accuracy(child)
        tolerance = self.tolerance_for(parent_accuracy)
        credit = 1.0 / len(differing)
        for name, claim in claims:
            held = lost <= tolerance if claim == "keeps" else lost > tolerance
            record = self.kinds.setdefault(decision_kind(name), KindRecord())
            if held:
                record.held += credit
            else:
                record.failed += credit

    def tolerance_for(self, parent_accuracy: float) -> float:
        """The accuracy a child of a network this accurate may lose and still count as "kept":
        `tolerance`, capped at the parent's headroom above `accuracy_bar` (0 when below it)."""
        if self.accuracy_bar is None:
            return self.tolerance
        bar = accuracy_percent(self.accuracy_bar) / 100.0  # on the fraction scale, like `_accuracy`
        return min(self.tolerance, max(parent_accuracy - bar, 0.0))

    def _claim(self, parent: Any, key: Any, child: Architecture) -> Optional[str]:
        """What the parent's response on decision `key` claims about the child's change of it:
        "drops" (it said keep: changing it should cost accuracy), "keeps" (it said change, and
        the child moved toward its target: accuracy should hold), or None (no claim)."""
        name = key_name(key)
        response = parent.responses.get(name) if isinstance(parent.responses, Mapping) else None
        decision = self._decisions.get(name)
        if not isinstance(response, Mapping) or "target" not in response or decision is None:
            return None
        old = _value(decision, parent.arch.as_dict().get(key, _MISSING))
        new = _value(decision, child.as_dict().get(key, _MISSING))
        target = _as_option(decision, response["target"])
        if target is None:
            return None
        if _same(target, old):
            return "drops"
        return "keeps" if _toward(decision, old, new, target) else None

    def state_dict(self) -> dict:
        return {"kinds": {k: [r.held, r.failed] for k, r in self.kinds.items()}, "judged": sorted(self.judged),
                "tested": self.tested}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore; kinds that are not two finite non-negative numbers are skipped, and a `tested`
        count that is not an integer between 0 and the number of judged networks is ignored."""
        kinds = state.get("kinds") if isinstance(state, Mapping) else None
        for kind, pair in (kinds or {}).items():
            if isinstance(kind, str) and isinstance(pair, (list, tuple)) and len(pair) == 2:
                held, failed = finite_float(pair[0]), finite_float(pair[1])
                if held is not None and failed is not None and held >= 0 and failed >= 0:
                    self.kinds[kind] = KindRecord(held, failed)
        judged = state.get("judged") if isinstance(state, Mapping) else None
        self.judged.update(j for j in (judged or []) if isinstance(j, str))
        tested = state.get("tested") if isinstance(state, Mapping) else None
        if isinstance(tested, int) and not isinstance(tested, bool) and 0 <= tested <= len(self.judged):
            self.tested = tested  # each judged network tested advice at most once


def _accuracy(record: Any) -> Optional[float]:
    """The record's accuracy as a fraction (a trial may report percent: 98.3 -> 0.983); None when
    it is missing or not in [0, 100 %] (such a record is no evidence)."""
    percent = accuracy_in_range((record.metrics or {}).get(ACCURACY))
    return None if percent is None else percent / 100.0


def _differing(a: Architecture, b: Architecture) -> list:
    """Decision keys active in both whose values differ (a decision active in one only counts)."""
    da, db = a.as_dict(), b.as_dict()
    return [k for k in set(da) | set(db) if da.get(k, _MISSING) != db.get(k, _MISSING)]


_MISSING = object()


def _value(decision: Any, raw: Any) -> Any:
    """A decision's value as the user sees it (a choice is stored as its option index)."""
    if raw is _MISSING:
        return None
    if isinstance(decision, ChoiceDecision):
        return decision.options[int(raw)]
    return raw


def _as_option(decision: Any, target: Any) -> Any:
    """A response target in the decision's value domain (None when it is not one)."""
    if isinstance(decision, ChoiceDecision):
        for option in decision.options:
            if _same(option, target):
                return option
        return None
    return finite_float(target)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b and type(a) is type(b)


def _toward(decision: Any, old: Any, new: Any, target: Any) -> bool:
    """Whether `new` moved from `old` toward `target` (reached it, or between them on a number line)."""
    if _same(new, target):
        return True
    numbers = [finite_float(v) for v in (old, new, target)]
    if any(v is None for v in numbers) or any(isinstance(v, bool) for v in (old, new, target)):
        return False
    o, n, t = numbers
    return min(o, t) < n < max(o, t)
