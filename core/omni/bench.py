"""``omni bench``: the baseline (or ``--vs``) against an optimized variant of the same model, same
seeds, interleaved runs, each variant in its own process (:mod:`omni.bench_worker`).

What it will not do is report noise as speed. Runs are paired (one of each variant, same seed,
order alternating) and repeated until the speedup's 95 % interval is narrow enough or a cap on
pairs/seconds is reached (:mod:`omni.stats`); the interval is printed, and an interval that
includes 1.0 reads "no measurable difference". A step cache that reused nothing and left the output
identical "changed nothing", whatever the clock says. For step caches the speedup is end to end
(their median step is a computed one); they report denoiser calls computed/reused instead. Peak
RSS is per variant because each variant has its own process. Quality drift: PSNR and SSIM of the
optimized output against the baseline's, per seed. Written by hand: no library compares
optimization variants of one pipeline like this."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omni.errors import OmniError
from omni.stats import PairedRatio, Stopping, pairs_needed, repeat_pairs
from omni.verify import psnr

RSS_METHOD = "each variant in its own process: peak RSS = that process's VmHWM (imports, load and all its runs)"


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
    loaded: dict[str, Any] = field(default_factory=dict)
    first_call_s: float | None = None  # the very first generation: includes torch.compile's compilation
    totals: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    step_medians: list[float] = field(default_factory=list)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)  # seed -> first measured output
    calls: dict[int, tuple[int, int]] = field(default_factory=dict)  # seed -> (computed, reused), first run
    peak_cuda: int | None = None
    peak_rss: int | None = None

    def record(self, ran: dict[str, Any], seed: int) -> None:
        self.totals.append(ran["total"])
        self.steps.extend(ran["steps"])
        if ran["steps"]:
            self.step_medians.append(statistics.median(ran["steps"]))
        if ran["output"] is not None:
            self.outputs[seed] = ran["output"]
        if ran["computed"] is not None and seed not in self.calls:
            self.calls[seed] = (ran["computed"], ran["reused"])
        if ran["cuda_peak"] is not None:
            self.peak_cuda = max(self.peak_cuda or 0, ran["cuda_peak"])

    def summary(self, warmup: int) -> dict[str, Any]:
        med = statistics.median(self.totals)
        overhead = None
        if warmup and self.first_call_s is not None:
            # the first call's one-off cost (compilation, lazy init): what it took beyond the slowest
            # warm run; a first call within the warm runs' range has no measurable overhead
            overhead = round(self.first_call_s - med, 4) if self.first_call_s > max(self.totals) else 0.0
        computed = sum(c for c, _ in self.calls.values()) if self.calls else None
        reused = sum(r for _, r in self.calls.values()) if self.calls else None
        return {
            "label": self.label, "applied": self.loaded.get("applied", []), "skipped": self.loaded.get("skipped", []),
            "setup_s": round(self.loaded.get("setup_s", 0.0), 3),
            "first_call_s": None if self.first_call_s is None else round(self.first_call_s, 4),
            "first_call_overhead_s": overhead,
            "median_total_s": round(med, 4), "min_total_s": round(min(self.totals), 4),
            "max_total_s": round(max(self.totals), 4),
            "median_step_s": round(statistics.median(self.steps), 5) if self.steps else None,
            "runs": len(self.totals), "peak_rss_bytes": self.peak_rss, "weights_bytes": self.loaded.get("weights_bytes"),
            "peak_cuda_bytes": self.peak_cuda, "cache_computed": computed, "cache_reused": reused,
        }


def _deny(registry) -> list[str]:
    """The plugins the workers must not load: those disabled in the caller's registry."""
    local = [p.name for p in registry.plugins if p.distribution == "<in-process>" and p.status == "active"]
    if local:
        raise OmniError(f"bench runs each variant in its own process and cannot carry in-process plugins "
                        f"({', '.join(local)}); install them as distributions")
    return sorted({n for p in registry.plugins if p.status == "disabled" for n in (p.name, p.distribution)})


def bench(model: str, optimize: list[str], *, vs: list[str] | None = None, sets: dict[str, Any] | None = None,
          runs: int = 20, min_runs: int | None = None, max_seconds: float = 120.0, precision: float = 0.02,
          warmup: int = 1, seeds: list[int] | None = None, device: str | None = None,
          generation: dict[str, Any] | None = None, registry=None, prompt: str = "a red circle on a blue background",
          progress=None) -> dict[str, Any]:
    """Benchmark ``optimize`` against ``vs`` (default: no optimization); ``sets`` applies to the
    optimized variant only. Pairs (one run of each variant, one seed) repeat until the speedup's
    interval half-width is at most ``precision``, with at least ``min_runs`` (default: the 6 a 95 %
    interval needs, or ``runs`` if fewer) and at most ``runs`` pairs or ``max_seconds`` of measuring.
    ``progress(message)`` is called between phases. Returns a JSON-able dict."""
    from omni.plugins import get_registry
    from omni.runtime.session import prepare

    registry = registry or get_registry()
    seeds = seeds or [0]
    base = Variant("baseline" if not vs else "+".join(vs), list(vs or []))
    opt = Variant("+".join(optimize), list(optimize), dict(sets or {}))
    for variant in (base, opt):  # usage errors (unknown names, bad options) before any process starts
        prepare(model, {}, optimize=variant.optimize, sets=variant.sets, registry=registry)
    say = progress or (lambda message: None)
    deny = _deny(registry)
    gen_in = {k: v for k, v in (generation or {}).items() if v is not None}
    stopping = Stopping(min_pairs=min(runs, pairs_needed()) if min_runs is None else min_runs, max_pairs=runs,
                        max_seconds=max_seconds, precision=precision)
    say(f"starting a process per variant ({base.label}, {opt.label})")
    workers = {}
    try:
        for variant in (base, opt):
            workers[variant.label] = _start(variant, model, deny, device, gen_in, prompt)
        for variant in (base, opt):
            workers[variant.label].receive()  # ready: imports done
        for variant in (base, opt):  # one at a time: setup_s is not measured under contention
            say(f"loading {variant.label}")
            variant.loaded = workers[variant.label].ask("load")
        say(f"warming up ({warmup} run(s) per variant and seed)")
        for _ in range(warmup):
            for variant in (base, opt):
                for seed in seeds:
                    ran = workers[variant.label].ask("run", seed, False)
                    if variant.first_call_s is None:
                        variant.first_call_s = ran["total"]
        step_ratio = PairedRatio()

        def runner(variant: Variant):
            def run(i: int) -> float:
                seed = seeds[i % len(seeds)]
                ran = workers[variant.label].ask("run", seed, i < len(seeds))
                if variant.first_call_s is None:
                    variant.first_call_s = ran["total"]
                variant.record(ran, seed)
                return ran["total"]
            return run

        def on_pair(i: int, ratio: PairedRatio) -> None:
            if base.step_medians and opt.step_medians and len(base.step_medians) == len(opt.step_medians) == i:
                step_ratio.ratios.append(base.step_medians[-1] / opt.step_medians[-1])
            say(f"pair {i}: speedup {ratio.text()}")

        t0 = time.perf_counter()
        speedup, stopped = repeat_pairs(runner(opt), runner(base), stopping, on_pair=on_pair)
        measured_s = time.perf_counter() - t0
        for variant in (base, opt):
            variant.peak_rss = workers[variant.label].ask("stop")["peak_rss_bytes"]
            workers.pop(variant.label).close(wait=30)
    finally:
        for worker in workers.values():  # after an error or an interrupt
            worker.close(wait=5)
    return _result(model, seeds, warmup, base, opt, speedup, step_ratio, stopped, stopping, measured_s)


def _start(variant: Variant, model: str, deny: list[str], device: str | None, generation: dict[str, Any],
           prompt: str):
    from omni.bench_worker import VariantProcess

    return VariantProcess(variant.label, {"model": model, "optimize": variant.optimize, "sets": variant.sets,
                                          "deny": deny, "device": device, "generation": generation,
                                          "prompt": prompt})


def _result(model: str, seeds: list[int], warmup: int, base: Variant, opt: Variant, speedup: PairedRatio,
            step_ratio: PairedRatio, stopped: str, stopping: Stopping, measured_s: float) -> dict[str, Any]:
    psnrs = [psnr(opt.outputs[s], base.outputs[s]) for s in seeds if s in opt.outputs and s in base.outputs]
    ssims = [ssim(opt.outputs[s], base.outputs[s]) for s in seeds if s in opt.outputs and s in base.outputs]
    finite = [p for p in psnrs if not math.isinf(p)]
    b, o = base.summary(warmup), opt.summary(warmup)
    caches = o["cache_computed"] is not None or b["cache_computed"] is not None
    result = {
        "model": model, "seeds": seeds, "warmup": warmup, "device": opt.loaded["device"],
        "torch_threads": opt.loaded["torch_threads"],
        "generation": opt.loaded["generation"], "baseline": b, "optimized": o,
        "pairs": speedup.n, "stopped": stopped, "measured_s": round(measured_s, 2),
        "stopping": {"min_pairs": stopping.min_pairs, "max_pairs": stopping.max_pairs,
                     "max_seconds": stopping.max_seconds, "precision": stopping.precision},
        "speedup": speedup.to_dict(),
        # a step cache's median step is a computed one: only the end-to-end ratio means anything
        "speedup_step": None if caches or not step_ratio.ratios else step_ratio.to_dict(),
        "psnr_db": round(min(finite), 2) if finite else None, "ssim": round(min(ssims), 4) if ssims else None,
        "identical": bool(psnrs) and not finite,
        "rss_method": RSS_METHOD,
    }
    result["verdict"], result["summary"] = verdict(result, speedup)
    return result


def verdict(result: dict[str, Any], speedup: PairedRatio) -> tuple[str, str]:
    """(verdict, one line): ``nothing applied``, ``changed nothing``, ``faster``, ``slower``,
    ``no measurable difference`` or ``unknown`` (too few pairs for an interval)."""
    b, o = result["baseline"], result["optimized"]
    extra = [n for n in o["applied"] if n not in b["applied"]]
    if not extra:
        why = "; ".join(o["skipped"]) or "the same optimizations as the baseline"
        return "nothing applied", f"nothing applied beyond {b['label']} ({why}): no speedup to report"
    if result["identical"] and o["cache_reused"] == 0:
        return "changed nothing", (f"changed nothing: {o['label']} reused 0 of {o['cache_computed']} denoiser calls "
                                   f"and the output is identical (time ratio {speedup.text()})")
    where = {"above": "faster", "below": "slower", "includes": "no measurable difference",
             "unknown": "unknown"}[speedup.compare(1.0)]
    line = {"faster": "faster", "slower": "slower",
            "no measurable difference": "no measurable difference (the interval includes 1.0)",
            "unknown": "spread unknown"}[where]
    return where, f"{line}: speedup {speedup.text()} end to end"
