"""``omni bench``: baseline (or ``--vs``) against an optimized variant of the same model, same seeds,
interleaved runs; medians of end-to-end and per-step time, speedup, peak memory and quality drift
(PSNR, SSIM) against the baseline output. Written by hand: no library compares optimization
variants of one pipeline like this."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omni.verify import psnr


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Mean SSIM over channels with a uniform ``window`` (images in [0, 1]; video: all frames)."""
    a = np.asarray(a, np.float64).reshape(-1, *np.asarray(a).shape[-3:])
    b = np.asarray(b, np.float64).reshape(-1, *np.asarray(b).shape[-3:])
    c1, c2 = 0.01**2, 0.03**2

    def box(x: np.ndarray) -> np.ndarray:  # mean over window x window, valid region, via summed-area table
        s = np.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0))).cumsum(1).cumsum(2)
        w = window
        return (s[:, w:, w:] - s[:, :-w, w:] - s[:, w:, :-w] + s[:, :-w, :-w]) / (w * w)

    if a.shape[1] < window or a.shape[2] < window:
        window = min(a.shape[1], a.shape[2])
    mu_a, mu_b = box(a), box(b)
    var_a = box(a * a) - mu_a**2
    var_b = box(b * b) - mu_b**2
    cov = box(a * b) - mu_a * mu_b
    score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(score.mean())


@dataclass
class Variant:
    label: str
    optimize: list[str]
    sets: dict[str, Any] = field(default_factory=dict)
    totals: list[float] = field(default_factory=list)
    step_medians: list[float] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    cache: list[dict[str, Any]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    setup_s: float = 0.0
    first_call_s: float | None = None  # the very first generation: includes torch.compile's compilation
    peak_cuda: int | None = None


def bench(model: str, optimize: list[str], *, vs: list[str] | None = None, sets: dict[str, Any] | None = None,
          runs: int = 3, warmup: int = 1, seeds: list[int] | None = None, device: str | None = None,
          generation: dict[str, Any] | None = None, registry=None, prompt: str = "a red circle on a blue background",
          ) -> dict[str, Any]:
    """Benchmark ``optimize`` against ``vs`` (default: no optimization). ``sets`` applies to the
    optimized variant only. Returns a JSON-able dict."""
    from omni.plugins import get_registry
    from omni.runtime.generate import generate
    from omni.runtime.report import RunReport
    from omni.runtime.session import Session, prepare

    registry = registry or get_registry()
    seeds = seeds or [0]
    base = Variant("baseline" if not vs else "+".join(vs), list(vs or []))
    opt = Variant("+".join(optimize), list(optimize), dict(sets or {}))
    loaded = []
    for variant in (base, opt):
        t0 = time.perf_counter()
        prep = prepare(model, {}, optimize=variant.optimize, sets=variant.sets, registry=registry)
        gen = {**prep.generation_defaults(), **{k: v for k, v in (generation or {}).items() if v is not None}}
        ctx = Session.load(prep, device=device, generation=gen).ctx
        variant.setup_s = time.perf_counter() - t0
        variant.applied = [r.name for r in prep.report.config_resolved if r.status == "applied"]
        variant.skipped = [f"{r.name}: {r.reason}" for r in prep.report.config_resolved if r.status != "applied"]
        loaded.append((variant, prep, ctx, gen))
    for i in range(warmup + runs):
        for variant, prep, ctx, gen in loaded:
            for seed in seeds:
                report = RunReport(model=model, family=prep.resolved.family)
                _reset_cuda_peak()
                t0 = time.perf_counter()
                out = generate(ctx, report, prompt, gen, seed=seed)
                total = time.perf_counter() - t0
                if variant.first_call_s is None:
                    variant.first_call_s = total
                if i < warmup:
                    continue
                variant.totals.append(total)
                if report.timings["steps"]:
                    variant.step_medians.append(statistics.median(report.timings["steps"]))
                variant.cache = report.cache_hits
                peak = _cuda_peak()
                if peak is not None:
                    variant.peak_cuda = max(variant.peak_cuda or 0, peak)
                if i == warmup:
                    variant.outputs.append(out)
    psnrs = [psnr(o, b) for o, b in zip(opt.outputs, base.outputs)]
    ssims = [ssim(o, b) for o, b in zip(opt.outputs, base.outputs)]
    med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731

    def summary(v: Variant) -> dict[str, Any]:
        computed = sum(c["computed"] for c in v.cache) if v.cache else None
        reused = sum(c["reused"] for c in v.cache) if v.cache else None
        return {"label": v.label, "applied": v.applied, "skipped": v.skipped, "setup_s": round(v.setup_s, 3),
                "first_call_s": round(v.first_call_s, 4),
                # what the first call cost beyond a warm one: compilation for `compile`, ~0 otherwise
                "first_call_overhead_s": round(v.first_call_s - med(v.totals), 4),
                "median_total_s": round(med(v.totals), 4),
                "median_step_s": round(med(v.step_medians), 5) if v.step_medians else None,
                "runs": len(v.totals), "peak_cuda_bytes": v.peak_cuda, "cache_computed": computed,
                "cache_reused": reused}

    b, o = summary(base), summary(opt)
    finite = [p for p in psnrs if not math.isinf(p)]
    return {
        "model": model, "seeds": seeds, "runs": runs, "warmup": warmup, "device": loaded[0][2].device,
        "generation": loaded[0][3], "baseline": b, "optimized": o,
        "speedup_total": round(b["median_total_s"] / o["median_total_s"], 3),
        "speedup_step": (round(b["median_step_s"] / o["median_step_s"], 3)
                         if b["median_step_s"] and o["median_step_s"] else None),
        "psnr_db": round(min(finite), 2) if finite else None, "ssim": round(min(ssims), 4) if ssims else None,
        "identical": not finite,
        "peak_rss_bytes": __import__("omni.runtime.measure", fromlist=["x"]).peak_rss_bytes(),
    }


def _reset_cuda_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _cuda_peak() -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()
