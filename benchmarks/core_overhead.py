"""Overhead of omni's run path: `omni.run` (no optimizations) vs a plain diffusers call, same medium
pipeline, same seed, in one process. Target: generation ratio <= 1.02.

Pairs (one plain call and one omni.run, order alternating) repeat until the 95 % interval of the
generation ratio (omni / plain, paired) is narrow enough to judge the target — its half-width at most
--precision, by default half the target's margin — or --max-pairs / --max-seconds is reached; the
verdict says which: met (the whole interval is below the target), not met (above it), or undecided.
Two ratios are printed: generation only (the pipeline call vs omni's observed call) and end to end
(load + generate), each with its interval (omni.stats, the same statistics as `omni bench`).
Usage: python benchmarks/core_overhead.py [--model medium-flux] [--steps 10] [--size 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

TARGET = 1.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="medium-flux")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-pairs", type=int, default=6)
    parser.add_argument("--max-pairs", type=int, default=40)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--precision", type=float, default=(TARGET - 1) / 2,
                        help="stop once the interval's half-width is at most this fraction (default: half the margin)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import omni  # first: importing omni keeps the libraries' import-time noise out (omni.noise)

    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from omni.behaviour import resolve
    from omni.loading import quiet_libraries
    from omni.plugins import get_registry
    from omni.stats import PairedRatio, Stopping, repeat_pairs

    torch.set_num_threads(args.threads)
    quiet_libraries()
    spec = get_registry().models[args.model.replace("-", "_")].spec
    folder = str(resolve(spec.build)())
    gen = {**dict(spec.default_generation), "num_inference_steps": args.steps, "height": args.size, "width": args.size}
    prompt = "a red circle on a blue background"
    totals: dict[str, list[float]] = {"plain": [], "omni": []}
    generation: dict[str, list[float]] = {"plain": [], "omni": []}
    outputs = {}

    def plain(_i: int = 0) -> float:
        t0 = time.perf_counter()
        pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        t1 = time.perf_counter()
        outputs["plain"] = pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(0), output_type="np",
                                **gen).images
        t2 = time.perf_counter()
        totals["plain"].append(t2 - t0)
        generation["plain"].append(t2 - t1)
        return t2 - t1

    def via_omni(_i: int = 0) -> float:
        t0 = time.perf_counter()
        result = omni.run(args.model, prompt=prompt, seed=0, device="cpu", dtype="float32", **gen)
        totals["omni"].append(time.perf_counter() - t0)
        generation["omni"].append(result.report.timings["generate"])
        outputs["omni"] = result.images
        return result.report.timings["generate"]

    plain(), via_omni()  # warm-up: imports, caches, allocator
    for runs in (totals, generation):
        for v in runs.values():
            v.clear()

    def progress(i: int, ratio: PairedRatio) -> None:
        print(f"core_overhead.py: pair {i}: generation ratio {ratio.text()}", file=sys.stderr, flush=True)

    stopping = Stopping(min_pairs=args.min_pairs, max_pairs=args.max_pairs, max_seconds=args.max_seconds,
                        precision=args.precision)
    ratio, stopped = repeat_pairs(plain, via_omni, stopping, on_pair=progress)
    end_to_end = PairedRatio([o / p for o, p in zip(totals["omni"], totals["plain"])])
    verdict = {"below": "met", "above": "not met", "includes": "undecided", "unknown": "undecided"}[
        ratio.compare(TARGET)]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    result = {
        "model": args.model, "steps": args.steps, "size": args.size, "threads": args.threads, "pairs": ratio.n,
        "stopped": stopped, "precision": args.precision,
        "plain_generate_s": round(median(generation["plain"]), 4), "omni_generate_s": round(median(generation["omni"]), 4),
        "plain_total_s": round(median(totals["plain"]), 4), "omni_total_s": round(median(totals["omni"]), 4),
        "ratio_generate": ratio.to_dict(), "ratio_total": end_to_end.to_dict(),
        "outputs_identical": bool(np.array_equal(outputs["plain"], outputs["omni"])),
        "target": TARGET, "verdict": verdict,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.model} {args.size}x{args.size}, {args.steps} steps, {ratio.n} interleaved pairs "
          f"(stopped: {stopped}), {args.threads} thread(s)")
    print(f"generation : diffusers {result['plain_generate_s']:.3f} s | omni {result['omni_generate_s']:.3f} s "
          f"| ratio {ratio.text()}")
    print(f"end to end : diffusers {result['plain_total_s']:.3f} s | omni.run {result['omni_total_s']:.3f} s "
          f"| ratio {end_to_end.text()}")
    why = {"met": f"the whole interval is below {TARGET}", "not met": f"the whole interval is above {TARGET}",
           "undecided": f"the interval includes {TARGET} (or there is none): more pairs or a quieter machine"}[verdict]
    print(f"target generation ratio <= {TARGET}: {verdict} ({why}); outputs identical: {result['outputs_identical']}")


if __name__ == "__main__":
    main()
