"""Weight quantization on a medium pipeline: per scheme, the denoiser's weight bytes vs bf16 and the
per-step time vs the unquantized baseline, all variants loaded through omni's run path
(``prepare`` -> ``Session.load`` -> ``generate``, what ``omni.run`` composes) in one process and
measured side by side: rounds interleave the variants, the step time is the median over rounds.
Also: load-time (``torchao_load``) vs post-load (``torchao``) int8 quantization peak RSS (VmHWM), each in
a fresh process, after loading and after one small generation, and PSNR of each variant's image vs the
baseline's.

Usage: python benchmarks/quant.py [--model medium-flux] [--steps 4] [--size 256] [--rounds 2]
       [--schemes int8_weight_only,...] [--gguf Q8_0,Q4_0] [--no-memory] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SCHEMES = "int8_weight_only,int8_dynamic,fp8_weight_only,nf4,intx4_weight_only"


def _load(model: str, optimize: list[str], sets: dict, dtype: str):
    from omni.runtime.session import Session, prepare

    prep = prepare(model, {}, optimize=optimize, sets=sets)
    t0 = time.perf_counter()
    ctx = Session.load(prep, device="cpu", dtype=dtype).ctx
    seconds = time.perf_counter() - t0
    for name in optimize:
        res = prep.report.result(name)
        if res is None or res.status != "applied":
            raise SystemExit(f"{name} was not applied: {res.reason if res else 'missing'}")
    return prep, ctx, seconds


def vm_hwm_bytes() -> int:
    """This process's own peak RSS (VmHWM). Unlike getrusage's ru_maxrss it does not carry over the parent's
    peak through fork + exec."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_variant(model: str, optimization: str, scheme: str) -> dict:
    """In a fresh process: peak RSS after loading + quantizing (no generation)."""
    import torch

    from omni.runtime import measure

    torch.set_num_threads(1)
    sets = {f"{optimization}.scheme": scheme} if optimization else {}
    from omni.runtime.generate import generate
    from omni.runtime.report import RunReport

    prep, ctx, seconds = _load(model, [optimization] if optimization else [], sets, "float32")
    denoiser = prep.registry.family(prep.resolved.family).spec.facts.denoiser_components[0]
    out = {"optimization": optimization or "none", "scheme": scheme if optimization else None,
           "peak_rss_after_load_bytes": vm_hwm_bytes(), "rss_after_load_bytes": measure.rss_bytes(),
           "denoiser_bytes": measure.param_bytes(ctx.pipe)[denoiser], "load_s": round(seconds, 3)}
    # one small generation touches every weight (safetensors are memory-mapped: untouched pages are not resident)
    gen = {**prep.generation_defaults(), "num_inference_steps": 1, "height": 64, "width": 64}
    generate(ctx, RunReport(model=model, family=prep.resolved.family), "a red circle", gen, seed=0)
    out["peak_rss_after_1_step_bytes"] = vm_hwm_bytes()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="medium-flux")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--schemes", default=SCHEMES, help="torchao schemes (comma list; empty for none)")
    parser.add_argument("--gguf", default="Q8_0,Q4_0", help="GGUF qtypes to convert and load (empty for none)")
    parser.add_argument("--no-memory", action="store_true", help="skip the load-time vs post-load peak-RSS part")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory-variant", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_variant:
        print(json.dumps(memory_variant(args.model, *args.memory_variant)))
        return

    import numpy as np
    import torch

    from omni.runtime.generate import generate
    from omni.runtime.report import RunReport
    from omni.verify import psnr

    torch.set_num_threads(args.threads)
    variants: list[tuple[str, list[str], dict]] = [("baseline fp32", [], {})]
    variants += [(f"torchao {s}", ["torchao"], {"torchao.scheme": s}) for s in args.schemes.split(",") if s]
    mem = []
    if not args.no_memory:  # first, while this process is small (children start from its peak RSS)
        for optimization in ("", "torchao", "torchao_load"):
            proc = subprocess.run([sys.executable, __file__, "--model", args.model, "--memory-variant",
                                   optimization, "int8_weight_only"], capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                sys.exit(f"memory variant {optimization or 'none'} failed: {proc.stderr.strip().splitlines()[-1]}")
            mem.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    tmp = tempfile.TemporaryDirectory(prefix="omni-quant-bench-")
    convert_s = {}
    if args.gguf:
        from omni_plugin_gguf.convert import convert_model

        for qtype in [q for q in args.gguf.split(",") if q]:
            path = os.path.join(tmp.name, f"{qtype}.gguf")
            t0 = time.perf_counter()
            convert_model(args.model, qtype, path)
            convert_s[qtype] = time.perf_counter() - t0
            variants.append((f"gguf {qtype}", ["gguf"], {"gguf.path": path}))
    loaded = []
    for label, optimize, sets in variants:
        prep, ctx, seconds = _load(args.model, optimize, sets, "float32")
        loaded.append((label, prep, ctx, seconds))
    prep0 = loaded[0][1]
    denoiser = prep0.registry.family(prep0.resolved.family).spec.facts.denoiser_components[0]
    numel = sum(p.numel() for p in getattr(loaded[0][2].pipe, denoiser).parameters())
    bf16_bytes = numel * 2
    gen = {**prep0.generation_defaults(), "num_inference_steps": args.steps, "height": args.size,
           "width": args.size}
    steps: dict[str, list[float]] = {label: [] for label, *_ in loaded}
    images: dict[str, np.ndarray] = {}
    for label, _, ctx, _ in loaded:  # warm-up round (allocator, first-call dispatch), not timed
        images[label] = generate(ctx, RunReport(model=args.model, family=prep0.resolved.family),
                                 "a red circle on a blue background", gen, seed=0)
    for _ in range(args.rounds):
        for label, _, ctx, _ in loaded:
            report = RunReport(model=args.model, family=prep0.resolved.family)
            generate(ctx, report, "a red circle on a blue background", gen, seed=0)
            steps[label].extend(report.timings["steps"])
    base_step = statistics.median(steps["baseline fp32"])
    rows = []
    for label, prep, ctx, seconds in loaded:
        after = prep.report.memory["param_bytes"][denoiser]["after"]
        step = statistics.median(steps[label])
        p = psnr(images[label], images["baseline fp32"])
        rows.append({
            "variant": label, "denoiser_bytes": after, "bytes_vs_bf16": round(after / bf16_bytes, 3),
            "step_s": round(step, 4), "step_vs_baseline": round(step / base_step, 3),
            "psnr_db": None if p == float("inf") else round(p, 1), "load_s": round(seconds, 2),
        })
    result = {"model": args.model, "steps": args.steps, "size": args.size, "rounds": args.rounds,
              "threads": args.threads, "denoiser": denoiser, "denoiser_params": numel, "bf16_bytes": bf16_bytes,
              "variants": rows, "gguf_convert_s": {k: round(v, 2) for k, v in convert_s.items()}}
    if mem:
        result["load_memory"] = mem
    tmp.cleanup()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.model} {args.size}x{args.size}, {args.steps} steps x {args.rounds} interleaved rounds, "
          f"{args.threads} thread(s); {denoiser}: {numel / 1e6:.1f} M params, bf16 {bf16_bytes / 2**20:.1f} MiB")
    print(f"{'variant':26} {'bytes':>10} {'vs bf16':>8} {'step s':>8} {'vs base':>8} {'PSNR dB':>8} {'load s':>7}")
    for r in rows:
        print(f"{r['variant']:26} {r['denoiser_bytes']:>10} {r['bytes_vs_bf16']:>8.3f} {r['step_s']:>8.4f} "
              f"{r['step_vs_baseline']:>8.3f} {'inf' if r['psnr_db'] is None else r['psnr_db']:>8} "
              f"{r['load_s']:>7.2f}")
    for m in result.get("load_memory", []):
        print(f"load {m['optimization']:13} {m['scheme'] or '':17} peak RSS after load "
              f"{m['peak_rss_after_load_bytes'] / 2**20:7.1f} MiB, after 1 step "
              f"{m['peak_rss_after_1_step_bytes'] / 2**20:7.1f} MiB; "
              f"{denoiser} {m['denoiser_bytes'] / 2**20:6.1f} MiB, "
              f"load {m['load_s']:.2f} s")


if __name__ == "__main__":
    main()
