"""A measured candidate (``Trial``), the quality floor and memory budget it is judged by, and the
rules that compare two trials honestly: a speed difference inside the measured spread is "no
measurable difference", never a win."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

LOSSLESS_MAX_ABS = 1e-4  # omni verify's rule for lossless optimizations
MIN_MARGIN = 0.05  # in the search, two timings closer than 5 % are never called different


@dataclass
class Trial:
    """One candidate measured on every (prompt, seed): status ``ok`` | ``failed`` | ``skipped``."""

    label: str
    key: str
    config: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)  # per-request knob values
    status: str = "ok"
    reason: str | None = None
    seconds: list[float] = field(default_factory=list)  # one per generation (after the process's warm-up)
    first_call_s: float | None = None
    load_s: float | None = None
    peak_memory_bytes: int | None = None
    memory_kind: str = "peak_rss"  # peak_rss (CPU) | cuda_peak_allocated (GPU)
    psnr_db: float | None = None  # worst output; None with identical=True when bit-exact
    identical: bool = False
    max_abs_diff: float | None = None
    ssim: float | None = None
    adherence: float | None = None
    computed: int | None = None
    reused: int | None = None
    reused_from_profile: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.inf

    @property
    def spread(self) -> float:
        """Relative spread of this trial's timings: the interquartile range over the median with four
        samples or more (one stalled run on a shared machine does not hide a real difference), the
        range with two or three, 0 with one."""
        n = len(self.seconds)
        if n < 2:
            return 0.0
        if n < 4:
            return (max(self.seconds) - min(self.seconds)) / self.median
        q1, _, q3 = statistics.quantiles(self.seconds, n=4, method="inclusive")
        return (q3 - q1) / self.median

    @property
    def psnr(self) -> float:
        return math.inf if self.identical else (self.psnr_db if self.psnr_db is not None else -math.inf)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("reused_from_profile")
        data["seconds"] = [round(s, 4) for s in self.seconds]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known, reused_from_profile=True)


def faster(a: Trial, b: Trial) -> bool:
    """``a`` is measurably faster than ``b`` for the search: its median beats ``b``'s by more than the
    larger of the two trials' relative spreads (and at least 5 %). The claims in the result come from
    the side-by-side comparison, not from this rule."""
    margin = max(MIN_MARGIN, a.spread, b.spread)
    return a.median < b.median * (1 - margin)


def parse_bytes(text: str) -> int:
    """``8GiB``, ``800MiB``, ``1.5GB``, ``1024`` -> bytes."""
    units = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
             "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}
    raw = str(text).strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size such as 8GiB or 800MiB") from None
    if unit not in units or value <= 0:
        raise ValueError(f"{text!r} is not a size such as 8GiB or 800MiB")
    return int(value * units[unit])


def parse_seconds(text: str) -> float:
    """``10m``, ``90s``, ``1h``, ``600`` -> seconds."""
    raw = str(text).strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(raw[-1:], None)
    try:
        value = float(raw[:-1] if scale else raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 10m, 90s or 1h") from None
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return value * (scale or 1)


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.0f} MiB"


@dataclass(frozen=True)
class Floor:
    """The quality a candidate must keep against the unoptimized outputs (same prompts and seeds):
    ``lossless`` (every output within 1e-4), or the worst output's PSNR / SSIM at least this much; and
    optionally the model's adherence checker scoring at least ``min_adherence``."""

    lossless: bool = False
    min_psnr: float | None = None
    min_ssim: float | None = None
    min_adherence: float | None = None

    def describe(self) -> str:
        parts = ["lossless (max |diff| <= 1e-4)" if self.lossless else ""]
        if self.min_psnr is not None:
            parts.append(f"PSNR >= {self.min_psnr:g} dB")
        if self.min_ssim is not None:
            parts.append(f"SSIM >= {self.min_ssim:g}")
        if self.min_adherence is not None:
            parts.append(f"adherence >= {self.min_adherence:g}")
        return ", ".join(p for p in parts if p)

    def miss(self, t: Trial) -> str | None:
        """Why ``t`` misses the floor, or None."""
        if self.lossless and not (t.max_abs_diff is not None and t.max_abs_diff <= LOSSLESS_MAX_ABS):
            return f"not lossless: max |diff| {t.max_abs_diff:.3g} > 1e-4"
        if self.min_psnr is not None and t.psnr < self.min_psnr:
            return f"PSNR {t.psnr:.1f} dB < {self.min_psnr:g}"
        if self.min_ssim is not None and (t.ssim is None or t.ssim < self.min_ssim):
            return f"SSIM {t.ssim:.4f} < {self.min_ssim:g}"
        if self.min_adherence is not None and (t.adherence is None or t.adherence < self.min_adherence):
            return f"adherence {t.adherence:.2f} < {self.min_adherence:g}"
        return None

    def quality(self, t: Trial) -> float:
        """One number, higher is better, in the floor's own terms (for the Pareto front)."""
        if self.min_adherence is not None and self.min_psnr is None and self.min_ssim is None and not self.lossless:
            return t.adherence if t.adherence is not None else -math.inf
        if self.min_ssim is not None:
            return t.ssim if t.ssim is not None else -math.inf
        return t.psnr

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


@dataclass(frozen=True)
class Judge:
    """Floor + budget: which trials are acceptable, and which of two is better."""

    floor: Floor
    budget: int | None = None

    def miss(self, t: Trial) -> str | None:
        if t.status != "ok":
            return t.reason or t.status
        missed = self.floor.miss(t)
        if missed:
            return missed
        if self.budget is not None and (t.peak_memory_bytes or 0) > self.budget:
            return f"peak memory {mib(t.peak_memory_bytes)} > budget {mib(self.budget)}"
        return None

    def meets_floor(self, t: Trial) -> bool:
        return t.status == "ok" and self.floor.miss(t) is None

    def better(self, a: Trial, b: Trial) -> bool:
        """``a`` should replace ``b``: acceptable when ``b`` is not; among acceptable ones measurably
        faster; among floor-keeping ones over the budget, lighter."""
        if not self.meets_floor(a):
            return False
        if not self.meets_floor(b):
            return True
        a_fits, b_fits = self.miss(a) is None, self.miss(b) is None
        if a_fits != b_fits:
            return a_fits
        if not a_fits:  # both over the budget: less memory is what matters
            return (a.peak_memory_bytes or 0) < (b.peak_memory_bytes or 0) * 0.98
        return faster(a, b)
