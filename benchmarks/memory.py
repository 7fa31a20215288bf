"""Peak memory and latency of memory optimizations vs the unoptimized baseline, as ratios, each
variant in a fresh process (so peaks do not leak between variants), on whatever device is present:
CUDA peak allocated (and reserved) on a GPU, peak RSS (VmHWM) on the CPU. Latency = median warm
`generate` time. Target (vLLM-Omni/sglang): layerwise offload <= 0.25x peak VRAM at <= 1.1x latency
on a video model.

Usage: python benchmarks/memory.py [--model medium-wan] [--steps 8] [--variants a,b] [--runs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

GPU_VARIANTS = ["model_cpu_offload", "sequential_cpu_offload", "group_offload", "layerwise_offload",
                "layerwise_casting", "vae_tiling", "disk_offload"]
CPU_VARIANTS = ["disk_offload", "layerwise_casting", "vae_slicing", "vae_tiling"]


def child(model: str, variant: str, steps: int, runs: int) -> dict:
    import torch

    from omni.runtime.api import generation_defaults, load_and_optimize, prepare
    from omni.runtime.generate import generate
    from omni.runtime.measure import peak_rss_bytes
    from omni.runtime.report import RunReport

    torch.set_num_threads(int(os.environ.get("OMNI_BENCH_THREADS", "1")))
    cuda = torch.cuda.is_available()
    optimize = [] if variant == "baseline" else [variant]
    prep = prepare(model, {}, optimize=optimize)
    ctx = load_and_optimize(prep, device="cuda" if cuda else "cpu", dtype="bfloat16" if cuda else "float32")
    applied = [r.name for r in prep.report.config_resolved if r.status == "applied"]
    skipped = [f"{r.name}: {r.reason}" for r in prep.report.config_resolved if r.status != "applied"]
    gen = {**generation_defaults(prep), "num_inference_steps": steps}
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(runs + 1):
        report = RunReport(model=model, family=prep.resolved.family)
        generate(ctx, report, "a red circle on a blue background", gen, seed=0)
        if cuda:
            torch.cuda.synchronize()
        times.append(report.timings["generate"])
    out = {"variant": variant, "applied": applied, "skipped": skipped, "latency_s": statistics.median(times[1:]),
           "device": "cuda" if cuda else "cpu", "peak_rss_bytes": peak_rss_bytes()}
    if cuda:
        out["peak_cuda_allocated"] = torch.cuda.max_memory_allocated()
        out["peak_cuda_reserved"] = torch.cuda.max_memory_reserved()
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: medium-wan on a GPU, medium-flux on the CPU")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--variants", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.model, args.child, args.steps, args.runs)))
        return
    import torch

    cuda = torch.cuda.is_available()
    model = args.model or ("medium-wan" if cuda else "medium-flux")
    variants = args.variants.split(",") if args.variants else (GPU_VARIANTS if cuda else CPU_VARIANTS)
    results = {}
    for variant in ["baseline", *variants]:
        proc = subprocess.run([sys.executable, __file__, "--child", variant, "--model", model, "--steps",
                               str(args.steps), "--runs", str(args.runs)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMNI_BENCH_THREADS", "1")})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results[variant] = {"variant": variant, "error": tail}
            continue
        results[variant] = json.loads(line[len("RESULT "):])
    base = results["baseline"]
    key = "peak_cuda_allocated" if cuda else "peak_rss_bytes"
    rows = []
    for variant, r in results.items():
        if "error" in r:
            rows.append({"variant": variant, "error": r["error"]})
            continue
        rows.append({"variant": variant, "applied": r["applied"], "skipped": r["skipped"],
                     "peak_MiB": round(r[key] / 2**20, 1), "peak_ratio": round(r[key] / base[key], 3),
                     "latency_s": round(r["latency_s"], 4), "latency_ratio": round(r["latency_s"] / base["latency_s"], 3)})
    summary = {"model": model, "steps": args.steps, "device": base.get("gpu", "cpu"), "metric": key, "rows": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{model}, {args.steps} steps, device {summary['device']}, peak = {key}")
    print(f"{'variant':24} {'peak MiB':>10} {'peak ratio':>10} {'latency s':>10} {'latency ratio':>13}")
    for row in rows:
        if "error" in row:
            print(f"{row['variant']:24} error: {row['error']}")
            continue
        note = "" if row["applied"] or row["variant"] == "baseline" else f"  (skipped: {'; '.join(row['skipped'])})"
        print(f"{row['variant']:24} {row['peak_MiB']:10.1f} {row['peak_ratio']:10.3f} {row['latency_s']:10.3f} "
              f"{row['latency_ratio']:13.3f}{note}")


if __name__ == "__main__":
    main()
