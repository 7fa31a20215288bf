"""Peak memory and latency of memory optimizations vs the unoptimized baseline, as ratios measured side by
side in one invocation, each variant in a fresh process (so peaks do not leak between variants):

* on a GPU: ``torch.cuda.max_memory_allocated`` during generation (reset after loading and one warm-up),
  and the memory still allocated after it;
* on the CPU: the process's peak RSS (VmHWM, loading included), the peak RSS of generation alone (VmHWM
  reset through /proc/self/clear_refs after loading, where the kernel allows it) and the RSS left after
  generation — disk offload lowers the last two, not the loading peak.

Latency = median warm ``generate`` time (one warm-up run first). A variant that cannot apply on this host
(an accelerator offload on a CPU-only one) is listed with the reason, without a run.
Target (vLLM-Omni/sglang): layerwise offload <= 0.25x peak VRAM at <= 1.1x latency on a video model.

Usage: python benchmarks/memory.py [--model medium-flux] [--steps 4] [--variants a,b] [--runs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

GPU_VARIANTS = ["model_cpu_offload", "sequential_cpu_offload", "group_offload", "layerwise_offload",
                "disk_offload", "layerwise_casting", "vae_tiling"]
CPU_VARIANTS = ["disk_offload", "layerwise_casting", "vae_slicing", "vae_tiling", "fuse_qkv",
                "model_cpu_offload", "sequential_cpu_offload", "group_offload", "layerwise_offload"]
MiB = 2**20


def _vm(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    hwm, rss = _vm("VmHWM"), _vm("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss * 1.05


def child(model: str, variant: str, steps: int, runs: int) -> dict:
    import gc

    import torch

    from omni.runtime.session import Session, prepare
    from omni.runtime.generate import generate
    from omni.runtime.report import RunReport

    torch.set_num_threads(int(os.environ.get("OMNI_BENCH_THREADS", "1")))
    cuda = torch.cuda.is_available()
    optimize = [] if variant == "baseline" else [variant]
    prep = prepare(model, {}, optimize=optimize)
    ctx = Session.load(prep, device="cuda" if cuda else "cpu", dtype="bfloat16" if cuda else "float32").ctx
    applied = [r.name for r in prep.report.config_resolved if r.status == "applied"]
    skipped = [f"{r.name}: {r.reason}" for r in prep.report.config_resolved if r.status != "applied"]
    gen = {**prep.generation_defaults(), "num_inference_steps": steps}
    gc.collect()
    out = {"variant": variant, "applied": applied, "skipped": skipped, "device": "cuda" if cuda else "cpu",
           "rss_after_load": _vm("VmRSS")}
    times = []
    reset_ok, load_peak = False, None
    for i in range(runs + 1):
        if i == 1:  # peaks of the timed runs only
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            load_peak = _vm("VmHWM")  # loading + optimizing + warm-up; read before the reset
            reset_ok = _reset_peak_rss()
        report = RunReport(model=model, family=prep.resolved.family)
        generate(ctx, report, "a red circle on a blue background", gen, seed=0)
        if cuda:
            torch.cuda.synchronize()
        times.append(report.timings["generate"])
    gc.collect()
    out["latency_s"] = statistics.median(times[1:])
    out["generation_peak_rss"] = _vm("VmHWM") if reset_ok else None
    out["peak_rss_bytes"] = max(load_peak or 0, _vm("VmHWM") or 0) or None
    out["rss_after"] = _vm("VmRSS")
    if cuda:
        out["peak_cuda_allocated"] = torch.cuda.max_memory_allocated()
        out["cuda_allocated_after"] = torch.cuda.memory_allocated()
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _precheck(model: str, variant: str) -> str | None:
    """Why the plan would skip ``variant`` here (no model is loaded), or None."""
    from omni.runtime.session import prepare

    prep = prepare(model, {}, optimize=[variant])
    skipped = [r for r in prep.report.config_resolved if r.status == "skipped"]
    return "; ".join(f"{r.reason}" for r in skipped) or None


def _ratio(value, base):
    return None if value is None or not base else round(value / base, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: medium-wan on a GPU, medium-flux on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: 8 on a GPU, 4 on the CPU)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per variant, after one warm-up")
    parser.add_argument("--variants", default=None, help="comma list (default: the memory optimizations)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if args.child:
        print("RESULT " + json.dumps(child(args.model, args.child, args.steps, args.runs)))
        return
    import torch

    cuda = torch.cuda.is_available()
    model = args.model or ("medium-wan" if cuda else "medium-flux")
    steps = args.steps or (8 if cuda else 4)
    variants = args.variants.split(",") if args.variants else (GPU_VARIANTS if cuda else CPU_VARIANTS)
    threads = os.environ.get("OMNI_BENCH_THREADS", "1")
    results = {}
    for variant in ["baseline", *variants]:
        why = None if variant == "baseline" else _precheck(model, variant)
        if why:
            results[variant] = {"variant": variant, "not_run": why}
            continue
        proc = subprocess.run([sys.executable, __file__, "--child", variant, "--model", model, "--steps",
                               str(steps), "--runs", str(args.runs)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": threads})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results[variant] = {"variant": variant, "error": tail}
            continue
        results[variant] = json.loads(line[len("RESULT "):])
    base = results["baseline"]
    if "error" in base:
        sys.exit(f"baseline failed: {base['error']}")
    keys = (["peak_cuda_allocated", "cuda_allocated_after"] if cuda
            else ["peak_rss_bytes", "generation_peak_rss", "rss_after"])
    rows = []
    for variant, r in results.items():
        if "error" in r or "not_run" in r:
            rows.append(r)
            continue
        row = {"variant": variant, "applied": r["applied"], "skipped": r["skipped"],
               "latency_s": round(r["latency_s"], 4), "latency_ratio": _ratio(r["latency_s"], base["latency_s"])}
        for key in keys:
            row[f"{key}_MiB"] = None if r.get(key) is None else round(r[key] / MiB, 1)
            row[f"{key}_ratio"] = _ratio(r.get(key), base.get(key))
        rows.append(row)
    summary = {"model": model, "steps": steps, "runs": args.runs, "threads": int(threads),
               "device": base.get("gpu", "cpu"), "metrics": keys, "rows": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{model}, {steps} steps, median of {args.runs} warm runs, device {summary['device']}, "
          f"{threads} thread(s); memory in MiB (ratio to baseline)")
    heads = {"peak_cuda_allocated": "peak VRAM", "cuda_allocated_after": "VRAM after",
             "peak_rss_bytes": "peak RSS", "generation_peak_rss": "gen peak RSS", "rss_after": "RSS after"}
    print(f"{'variant':24}" + "".join(f"{heads[k]:>20}" for k in keys) + f"{'latency s':>18}")
    for row in rows:
        if "error" in row:
            print(f"{row['variant']:24} error: {row['error']}")
            continue
        if "not_run" in row:
            print(f"{row['variant']:24} not run: {row['not_run']}")
            continue
        cells = []
        for key in keys:
            mib, ratio = row[f"{key}_MiB"], row[f"{key}_ratio"]
            cells.append(f"{'n/a':>20}" if mib is None else f"{mib:>11.1f} ({ratio:5.3f})")
        note = "" if row["applied"] or row["variant"] == "baseline" else f"  (skipped: {'; '.join(row['skipped'])})"
        print(f"{row['variant']:24}" + "".join(cells) + f"{row['latency_s']:>9.3f} ({row['latency_ratio']:5.3f})"
              + note)


if __name__ == "__main__":
    main()
