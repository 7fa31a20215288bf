"""Regional vs full torch.compile of the denoiser, each variant in a fresh process (dynamo caches
are per process), measured in one invocation: compile time (first call minus a warm call) and warm
per-step time, as ratios regional/full (targets: compile time <= 0.5x, warm step within 5%). The
regional variant also reports its warm step with dynamo's guard checks skipped, to show what the
remaining warm gap is made of.

Usage: python benchmarks/compile.py [--model medium-flux] [--steps 8] [--size 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def variant(model: str, mode: str, steps: int, size: int) -> dict:
    import torch

    import omni
    from omni.runtime.session import Session, prepare
    from omni.runtime.generate import generate
    from omni.runtime.report import RunReport

    torch.set_num_threads(int(os.environ.get("OMNI_BENCH_THREADS", "1")))
    optimize = [] if mode == "eager" else ["compile"]
    prep = prepare(model, {}, optimize=optimize, sets={"compile.mode": mode} if optimize else {})
    ctx = Session.load(prep, device=None).ctx
    gen = {**prep.generation_defaults(), "num_inference_steps": steps, "height": size, "width": size}
    calls = []
    for _ in range(3):
        report = RunReport(model=model, family=prep.resolved.family)
        generate(ctx, report, "a red circle on a blue background", gen, seed=0)
        calls.append(report.timings)
    warm_total = statistics.median(c["generate"] for c in calls[1:])
    out = {"mode": mode, "first_call_s": calls[0]["generate"], "warm_call_s": warm_total,
           "compile_s": calls[0]["generate"] - warm_total,
           "warm_step_s": statistics.median(s for c in calls[1:] for s in c["steps"]), "omni": omni.__version__}
    if mode == "regional":
        # diagnosis of the regional/full warm gap: the same warm calls without dynamo's guard checks
        # (a process-wide, unsafe stance omni never sets; measured here only)
        with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
            unguarded = []
            for _ in range(2):
                report = RunReport(model=model, family=prep.resolved.family)
                generate(ctx, report, "a red circle on a blue background", gen, seed=0)
                unguarded.extend(report.timings["steps"])
        out["warm_step_skip_guards_s"] = statistics.median(unguarded)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="medium-flux")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(variant(args.model, args.variant, args.steps, args.size)))
        return
    results = {}
    for mode in ("eager", "regional", "full"):
        # a fresh inductor cache per variant: otherwise a repeated run measures cache hits, not compilation
        with tempfile.TemporaryDirectory(prefix="omni-inductor-") as cache_dir:
            proc = subprocess.run([sys.executable, __file__, "--variant", mode, "--model", args.model, "--steps",
                                   str(args.steps), "--size", str(args.size)], capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMNI_BENCH_THREADS", "1"),
                                       "TORCHINDUCTOR_CACHE_DIR": cache_dir})
        if proc.returncode != 0:
            sys.exit(f"variant {mode} failed: {proc.stderr.strip().splitlines()[-1]}")
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    r, f, e = results["regional"], results["full"], results["eager"]
    summary = {
        "model": args.model, "steps": args.steps, "size": args.size, "variants": results,
        "compile_time_ratio_regional_vs_full": round(r["compile_s"] / f["compile_s"], 3),
        "warm_step_ratio_regional_vs_full": round(r["warm_step_s"] / f["warm_step_s"], 3),
        "warm_speedup_regional_vs_eager": round(e["warm_step_s"] / r["warm_step_s"], 3),
        "warm_speedup_full_vs_eager": round(e["warm_step_s"] / f["warm_step_s"], 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for mode in ("eager", "regional", "full"):
        v = results[mode]
        print(f"{mode:9} compile {v['compile_s']:7.2f} s | warm step {v['warm_step_s'] * 1000:8.1f} ms")
    print(f"regional warm step without guard checks (diagnosis only): "
          f"{r['warm_step_skip_guards_s'] * 1000:.1f} ms")
    print(f"regional/full compile time: {summary['compile_time_ratio_regional_vs_full']} (target <= 0.5); "
          f"warm step ratio: {summary['warm_step_ratio_regional_vs_full']} (target within 1.05)")
    print(f"warm speedup vs eager: regional {summary['warm_speedup_regional_vs_eager']}x, "
          f"full {summary['warm_speedup_full_vs_eager']}x")


if __name__ == "__main__":
    main()
