"""The search: lossless optimizations first, then each lossy one on top of them (a knob searched for
its fastest value that keeps the floor), then the lossy ones combined greedily — and, for comparison,
the exhaustive sweep of the same space. Every candidate is planned by the matrix first: a combination
it refuses (two step caches, a declared conflict) is never measured."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from omni_plugin_tune.lab import Lab, TimeUp
from omni_plugin_tune.space import Candidate, Choice, Space
from omni_plugin_tune.trials import Judge, Trial


INTERRUPTED = "interrupted; the best found so far is kept"


@dataclass
class Outcome:
    """What a search found: the best acceptable trial (None when nothing is), why the search stopped
    early (None when it finished), and the choices it dropped with the reason."""

    best: tuple[Candidate, Trial] | None
    baseline: Trial | None
    stopped: str | None = None
    dropped: list[tuple[str, str]] = field(default_factory=list)


class Search:
    def __init__(self, lab: Lab, space: Space, judge: Judge, progress: Callable[[str], None] = lambda _m: None):
        self.lab, self.space, self.judge, self.progress = lab, space, judge, progress
        self.dropped: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ helpers
    def measure(self, cand: Candidate) -> Trial:
        return self.lab.measure(cand)

    def knob_search(self, base: Candidate, choice: Choice, upto: int | None = None) -> tuple[Candidate, Trial]:
        """Binary search of ``choice``'s knob on top of ``base``: the fastest grid value (the grid runs from
        slowest to fastest) whose output keeps the floor, assuming quality falls as the knob moves the
        faster way. Returns the best passing value, else the slowest one tried."""
        assert choice.knob is not None
        grid = choice.knob.grid[: (upto + 1) if upto is not None else None]
        lo, hi = 0, len(grid) - 1
        best: tuple[Candidate, Trial] | None = None
        last: tuple[Candidate, Trial] | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            cand = base.with_choice(choice, grid[mid])
            trial = self.measure(cand)
            if trial.status != "ok":
                return cand, trial  # a load or run failure does not depend on the threshold
            if self.judge.meets_floor(trial):
                best, lo = (cand, trial), mid + 1
            else:
                last, hi = (cand, trial), mid - 1
        assert best is not None or last is not None
        return best or last  # type: ignore[return-value]

    def _drop(self, name: str, reason: str) -> None:
        self.dropped.append((name, reason))
        self.progress(f"{name}: left out: {reason}")

    # ------------------------------------------------------------------ the search
    def run(self) -> Outcome:
        baseline = None
        current: tuple[Candidate, Trial] | None = None
        try:
            baseline = self.measure(Candidate())
            current = (Candidate(), baseline)
            current = self._lossless(current)
            current = self._lossy(current)
        except TimeUp:
            return self._outcome(current, baseline, "the time limit ended the search; the best found so far is kept")
        except KeyboardInterrupt:
            return self._outcome(current, baseline, INTERRUPTED)
        return self._outcome(current, baseline, None)

    def _outcome(self, current: tuple[Candidate, Trial] | None, baseline: Trial | None,
                 stopped: str | None) -> Outcome:
        best = current if current is not None and self.judge.miss(current[1]) is None else None
        return Outcome(best, baseline, stopped, list(self.dropped))

    def _lossless(self, current: tuple[Candidate, Trial]) -> tuple[Candidate, Trial]:
        """Each lossless optimization alone; those better than the baseline are stacked, fastest first,
        while each addition is measurably better."""
        base = current
        singles = []
        for choice in (c for c in self.space.choices if c.lossless and c.knob is None):
            cand = Candidate().with_choice(choice)
            trial = self.measure(cand)
            if self.judge.better(trial, base[1]):
                singles.append((choice, cand, trial))
            else:
                self._drop(choice.name, self.judge.miss(trial) or "no measurable gain over the baseline")
        for choice, cand, trial in sorted(singles, key=lambda s: s[2].median):
            if current[0].names:
                cand = current[0].with_choice(choice)
                conflict = self.space.conflict(cand.names)
                if conflict:
                    self._drop(choice.name, conflict)
                    continue
                trial = self.measure(cand)
            if self.judge.better(trial, current[1]):
                current = (cand, trial)
            elif current[0].names:
                self._drop(choice.name, f"no measurable gain on top of {current[0].label}")
        return current

    def _lossy(self, current: tuple[Candidate, Trial]) -> tuple[Candidate, Trial]:
        """Each lossy optimization on top of the lossless stack (alone where it conflicts with the
        stack); those better than the stack are then added greedily, fastest first."""
        stack = current
        results = []
        for choice in (c for c in self.space.choices if not (c.lossless and c.knob is None)):
            base = stack[0] if not self.space.conflict((*stack[0].names, choice.name)) else Candidate()
            if choice.knob is not None:
                cand, trial = self.knob_search(base, choice)
            else:
                cand = base.with_choice(choice)
                trial = self.measure(cand)
            if self.judge.meets_floor(trial) and self.judge.better(trial, stack[1]):
                results.append((choice, cand, trial))
            else:
                self._drop(choice.name, self.judge.miss(trial) or f"no measurable gain over {stack[0].label}")
        for choice, cand, trial in sorted(results, key=lambda r: r[2].median):
            combined = self._combine(current, choice, cand, trial)
            if combined is not None and self.judge.better(combined[1], current[1]):
                current = combined
            elif combined is not None:
                self._drop(choice.name, self.judge.miss(combined[1])
                           or f"no measurable gain on top of {current[0].label}")
        return current

    def _combine(self, current: tuple[Candidate, Trial], choice: Choice, cand: Candidate,
                 trial: Trial) -> tuple[Candidate, Trial] | None:
        """``choice`` (measured as ``cand``) added to ``current``: ``cand`` itself when it already holds
        everything in ``current`` or cannot be combined with it; otherwise the merge, measured, with a
        knob backed off (binary search below its value) when the merge misses the floor."""
        if set(current[0].names) <= set(cand.names):
            return cand, trial
        value = dict(cand.knobs).get(choice.knob.key) if choice.knob else None
        merged = current[0].with_choice(choice, value)
        conflict = self.space.conflict(merged.names)
        if conflict:
            self.progress(f"{choice.name}: not combined with {current[0].label}: {conflict}")
            return cand, trial
        combined = (merged, self.measure(merged))
        if not self.judge.meets_floor(combined[1]):
            # back a knob off: the added one's, else one already in the configuration
            knobbed = [(choice, choice.knob)] if choice.knob is not None else [
                (c, c.knob) for c in self.space.choices if c.name in current[0].names and c.knob is not None]
            if knobbed:
                member, knob = knobbed[0]
                upto = knob.grid.index(dict(merged.knobs)[knob.key]) - 1
                if upto >= 0:
                    combined = self.knob_search(merged, member, upto)
        return combined

    # ------------------------------------------------------------------ the exhaustive sweep
    def sweep_candidates(self) -> Iterator[Candidate]:
        """Every combination the matrix can plan, every knob at every grid value; candidates that share
        a load (differ only in per-request values) come one after the other."""
        choices = self.space.choices
        for size in range(len(choices) + 1):
            for subset in itertools.combinations(choices, size):
                names = tuple(c.name for c in subset)
                if size > 1 and self.space.conflict(names):
                    continue
                knobbed = [c for c in subset if c.knob is not None]
                for values in itertools.product(*(c.knob.grid for c in subset if c.knob is not None)):
                    cand = Candidate()
                    for choice in subset:
                        value = values[knobbed.index(choice)] if choice in knobbed else None
                        cand = cand.with_choice(choice, value)
                    yield cand

    def sweep(self) -> Outcome:
        baseline = None
        best: tuple[Candidate, Trial] | None = None
        try:
            for cand in self.sweep_candidates():
                trial = self.measure(cand)
                if not cand.names:
                    baseline = trial
                if self.judge.miss(trial) is None and (best is None or trial.median < best[1].median):
                    best = (cand, trial)
        except TimeUp:
            return Outcome(best, baseline, "the time limit ended the sweep")
        except KeyboardInterrupt:
            return Outcome(best, baseline, INTERRUPTED)
        return Outcome(best, baseline, None)
