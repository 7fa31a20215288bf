"""The honest part of a speed claim: finalists loaded side by side (one process each) and timed in
interleaved rounds (A B C, B C A, ...), so load on a shared machine hits them alike. Two finalists'
runs of the same prompt and seed in the same round form a pair; the ratio of two finalists is the
median of their pair ratios with its interval (``omni bench``'s statistics), and a ratio whose
interval includes 1 is "no measurable difference". Also the Pareto front (time, memory, quality) of
everything measured."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from omni.sdk import PairedRatio
from omni_plugin_tune.lab import Lab, Proc, TimeUp
from omni_plugin_tune.space import Candidate
from omni_plugin_tune.trials import Judge, Trial


@dataclass
class Timing:
    """One finalist's interleaved samples, in (round, prompt, seed) order."""

    label: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def to_json(self) -> dict[str, Any]:
        return {"median_s": round(self.median, 4), "min_s": round(min(self.seconds), 4),
                "max_s": round(max(self.seconds), 4), "samples": len(self.seconds)}


def speedup(slow: Timing, fast: Timing) -> PairedRatio:
    """``slow``'s time over ``fast``'s, pair by pair (> 1: ``fast`` is faster)."""
    return PairedRatio([s / f for s, f in zip(slow.seconds, fast.seconds)])


def rounds_for(pairs: int, cases: int) -> int:
    return max(1, math.ceil(pairs / cases)) if pairs else 0


def interleave(lab: Lab, cands: list[Candidate], rounds: int) -> tuple[list[Timing], str | None]:
    """Load every candidate in its own process, warm each up once, then ``rounds`` rounds over all
    (prompt, seed) pairs, the order of the candidates rotated each round. Stops at the lab's deadline
    with the rounds completed so far (and says so)."""
    lab.close()
    procs: list[Proc] = []
    timings = [Timing(c.label, []) for c in cands]
    stopped = None
    try:
        for cand in cands:
            proc = Proc(lab.job(cand))
            procs.append(proc)
            reply = proc.ask(None, lab.deadline)
            if not reply.get("ok"):
                raise RuntimeError(f"{cand.label} no longer loads: {reply.get('error')}")
            lab.warm_up(proc, cand.request_options(lab.knobs))
        for r in range(rounds):
            order = list(range(len(cands)))
            order = order[r % len(order):] + order[: r % len(order)]
            samples: dict[int, list[float]] = {}
            for i in order:
                for prompt, seed in lab.cases():
                    out = lab.generate(procs[i], prompt, seed, cands[i].request_options(lab.knobs))
                    if not out.get("ok"):
                        raise RuntimeError(f"{cands[i].label} failed in the comparison: {out.get('error')}")
                    samples.setdefault(i, []).append(out["seconds"])
            for i, values in samples.items():
                timings[i].seconds.extend(values)
            lab.progress(f"side-by-side round {r + 1}/{rounds} done")
    except TimeUp:
        stopped = "the time limit ended the side-by-side comparison"
    except KeyboardInterrupt:
        stopped = "interrupted during the side-by-side comparison"
    finally:
        for proc in procs:
            proc.close()
    return [t for t in timings if t.seconds], stopped


def pareto(trials: list[Trial], judge: Judge) -> list[Trial]:
    """Trials that keep the floor and that no other such trial beats on time, memory and quality at once."""
    ok = [t for t in trials if judge.meets_floor(t)]
    q = judge.floor.quality

    def dominates(a: Trial, b: Trial) -> bool:
        ge = a.median <= b.median and (a.peak_memory_bytes or 0) <= (b.peak_memory_bytes or 0) and q(a) >= q(b)
        gt = a.median < b.median or (a.peak_memory_bytes or 0) < (b.peak_memory_bytes or 0) or q(a) > q(b)
        return ge and gt

    return sorted((t for t in ok if not any(dominates(o, t) for o in ok if o is not t)), key=lambda t: t.median)


Final = tuple[Candidate, Trial, Timing]


def pick(finals: list[Final], judge: Judge) -> tuple[Final, list[str]]:
    """The acceptable finalist with the lowest median; among those not measurably slower than it (the
    interval of the pair ratios includes 1, or there are too few pairs for one), the best quality, then
    the least memory, then the fewest optimizations. Returns it and notes saying why."""
    ok = [f for f in finals if judge.miss(f[1]) is None]
    fastest = min(ok, key=lambda f: f[2].median)
    tied = [f for f in ok if f is fastest or speedup(f[2], fastest[2]).compare(1.0) != "above"]
    chosen = max(tied, key=lambda f: (judge.floor.quality(f[1]), -(f[1].peak_memory_bytes or 0), -len(f[0].names)))
    notes = []
    for f in tied:
        if f is not chosen:
            ratio = speedup(f[2], chosen[2])
            notes.append(f"no measurable difference in speed between {chosen[0].label} and {f[0].label} "
                         f"({ratio.text()}); chosen by quality, then memory, then fewer optimizations")
    return chosen, notes
