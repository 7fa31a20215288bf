"""Overhead of omni's run path: `omni.run` (no optimizations) vs a plain diffusers call, same medium
pipeline, same seed, interleaved runs in one process. Target: ratio <= 1.02.

Two ratios are printed: end to end (load + generate) and generation only (the pipeline call vs
omni's instrumented call with per-step callbacks, progress and timing shims).
Usage: python benchmarks/core_overhead.py [--model medium-flux] [--runs 3] [--steps 10] [--size 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="medium-flux")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    import omni
    from omni.loading import quiet_libraries
    from omni.behaviour import resolve
    from omni.plugins import get_registry

    torch.set_num_threads(args.threads)
    quiet_libraries()
    spec = get_registry().models[args.model.replace("-", "_")].spec
    folder = str(resolve(spec.build)())
    gen = {**dict(spec.default_generation), "num_inference_steps": args.steps, "height": args.size, "width": args.size}
    prompt = "a red circle on a blue background"

    def plain():
        t0 = time.perf_counter()
        pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        t1 = time.perf_counter()
        out = pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(0), output_type="np", **gen).images
        t2 = time.perf_counter()
        return t2 - t0, t2 - t1, out

    def via_omni():
        t0 = time.perf_counter()
        result = omni.run(args.model, prompt=prompt, seed=0, device="cpu", dtype="float32", **gen)
        return time.perf_counter() - t0, result.report.timings["generate"], result.images

    plain(), via_omni()  # warm-up: imports, caches, allocator
    rows = {"plain": [], "omni": []}
    outputs = {}
    for _ in range(args.runs):
        for name, fn in (("plain", plain), ("omni", via_omni)):
            total, generate, out = fn()
            rows[name].append((total, generate))
            outputs[name] = out
    med = {k: (statistics.median(t for t, _ in v), statistics.median(g for _, g in v)) for k, v in rows.items()}
    result = {
        "model": args.model, "steps": args.steps, "size": args.size, "runs": args.runs, "threads": args.threads,
        "plain_total_s": round(med["plain"][0], 4), "omni_total_s": round(med["omni"][0], 4),
        "plain_generate_s": round(med["plain"][1], 4), "omni_generate_s": round(med["omni"][1], 4),
        "ratio_total": round(med["omni"][0] / med["plain"][0], 4),
        "ratio_generate": round(med["omni"][1] / med["plain"][1], 4),
        "outputs_identical": bool(np.array_equal(outputs["plain"], outputs["omni"])),
        "target": 1.02,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.model} {args.size}x{args.size}, {args.steps} steps, {args.runs} interleaved runs, "
              f"{args.threads} thread(s)")
        print(f"end to end : diffusers {result['plain_total_s']:.3f} s | omni.run {result['omni_total_s']:.3f} s "
              f"| ratio {result['ratio_total']:.3f}")
        print(f"generation : diffusers {result['plain_generate_s']:.3f} s | omni {result['omni_generate_s']:.3f} s "
              f"| ratio {result['ratio_generate']:.3f}")
        print(f"outputs identical: {result['outputs_identical']} (target ratio <= {result['target']})")


if __name__ == "__main__":
    main()
