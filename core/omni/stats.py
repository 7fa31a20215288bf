"""Paired-ratio statistics: the one way ``omni bench`` and the scripts in ``benchmarks/`` turn
interleaved runs into a ratio with its spread.

A *pair* is one run of variant A and one of variant B back to back (same seed, order alternating
A-B, B-A so that neither always runs second). Its ratio is ``b / a``. The reported figure is the
median of the pair ratios, with a distribution-free confidence interval for that median from order
statistics (the sign-test interval: no assumption about the shape of the noise, only that pairs are
independent). With fewer than 6 pairs no 95 % interval exists (even min..max covers the median with
less than 95 % probability), and that is said rather than hidden.

``repeat_pairs`` runs pairs until the interval is narrow enough, or a cap on pairs or seconds is
reached, and says which happened.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONFIDENCE = 0.95


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Distribution-free interval for the median of ``values``: the order statistics
    ``(x_(k), x_(n-k+1))`` with the largest ``k`` whose coverage ``1 - 2 P(Binom(n, 1/2) < k)`` is at
    least ``confidence``. None when no such interval exists (too few values)."""
    xs = sorted(values)
    n = len(xs)
    best = None
    tail = 0.0  # P(Binom(n, 1/2) <= k - 1)
    for k in range(1, n // 2 + 1):
        tail += math.comb(n, k - 1) / 2**n
        if 1 - 2 * tail < confidence:
            break
        best = k
    if best is None:
        return None
    return xs[best - 1], xs[n - best]


def pairs_needed(confidence: float = CONFIDENCE) -> int:
    """The fewest pairs for which an interval at ``confidence`` exists (6 at 95 %)."""
    n = 1
    while median_interval([0.0] * n, confidence) is None:
        n += 1
    return n


@dataclass
class PairedRatio:
    """Ratios ``b / a`` of paired runs, and what can be said about their median."""

    ratios: list[float] = field(default_factory=list)
    confidence: float = CONFIDENCE

    @property
    def n(self) -> int:
        return len(self.ratios)

    @property
    def median(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return median_interval(self.ratios, self.confidence)

    def half_width(self) -> float | None:
        """The interval's larger distance from the median, relative to the median (0.02 = ±2 %)."""
        iv, med = self.interval, self.median
        if iv is None or not med:
            return None
        return max(med - iv[0], iv[1] - med) / med

    def includes(self, value: float) -> bool | None:
        """Whether the interval contains ``value``; None when there is no interval."""
        iv = self.interval
        return None if iv is None else iv[0] <= value <= iv[1]

    def compare(self, target: float) -> str:
        """``below`` / ``above`` when the whole interval is on one side of ``target``, ``includes``
        when it straddles it, ``unknown`` without an interval."""
        iv = self.interval
        if iv is None:
            return "unknown"
        if iv[1] < target:
            return "below"
        if iv[0] > target:
            return "above"
        return "includes"

    def text(self, digits: int = 3) -> str:
        """``1.234x [1.201, 1.260] (95 % interval, 12 pairs)`` or, without an interval, the median,
        the min..max and why there is no interval."""
        if not self.ratios:
            return "no pairs"
        f = f"{{:.{digits}f}}"
        iv = self.interval
        if iv is None:
            return (f"{f.format(self.median)}x (min {f.format(min(self.ratios))}, max {f.format(max(self.ratios))}; "
                    f"{self.n} pair(s): a {self.confidence:.0%} interval needs {pairs_needed(self.confidence)})")
        return (f"{f.format(self.median)}x [{f.format(iv[0])}, {f.format(iv[1])}] "
                f"({self.confidence:.0%} interval, {self.n} pairs)")

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        iv = self.interval
        r = (lambda x: None if x is None else round(x, digits))  # noqa: E731
        return {"median": r(self.median), "low": r(iv[0]) if iv else None, "high": r(iv[1]) if iv else None,
                "min": r(min(self.ratios)) if self.ratios else None, "max": r(max(self.ratios)) if self.ratios else None,
                "pairs": self.n, "confidence": self.confidence}


@dataclass
class Stopping:
    """When ``repeat_pairs`` stops: at least ``min_pairs``; then as soon as the interval's half-width
    is at most ``precision``; in any case after ``max_pairs`` pairs or ``max_seconds``."""

    min_pairs: int = 6
    max_pairs: int = 30
    max_seconds: float = 120.0
    precision: float = 0.02

    def __post_init__(self) -> None:
        self.min_pairs = max(1, self.min_pairs)
        self.max_pairs = max(self.min_pairs, self.max_pairs)


def repeat_pairs(run_a: Callable[[int], float], run_b: Callable[[int], float], stopping: Stopping, *,
                 on_pair: Callable[[int, PairedRatio], None] | None = None) -> tuple[PairedRatio, str]:
    """Run pairs (A then B for even ``i``, B then A for odd ``i``); ``run_x(i)`` runs pair ``i`` and
    returns the seconds to compare. Returns the ratios ``b / a`` and why it stopped: ``precise``
    (half-width <= precision), ``max pairs`` or ``max seconds``."""
    ratio = PairedRatio()
    t0 = time.perf_counter()
    i = 0
    while True:
        if i % 2 == 0:
            a = run_a(i)
            b = run_b(i)
        else:
            b = run_b(i)
            a = run_a(i)
        ratio.ratios.append(b / a)
        i += 1
        if on_pair is not None:
            on_pair(i, ratio)
        if i < stopping.min_pairs:
            continue
        width = ratio.half_width()
        if width is not None and width <= stopping.precision:
            return ratio, "precise"
        if i >= stopping.max_pairs:
            return ratio, "max pairs"
        if time.perf_counter() - t0 >= stopping.max_seconds:
            return ratio, "max seconds"
