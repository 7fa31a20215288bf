"""Denoising step time per attention backend on medium-flux, in one run.

Every backend this host can run (``attention_backend``'s torch kernels here; the GPU-only
optimizations are listed with the reason they are unavailable) is loaded once; then warm generations
run interleaved in pairs against ``native`` (torch SDPA's own dispatch, diffusers' default). Reported:
the median step time per backend, the ratio to native (median of pairs, 95 % interval of
``omni.stats``) and max |Δ| of the output to native.

Usage: python benchmarks/attention.py [--steps 4] [--size 256] [--pairs 6] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

PROMPT = "a red circle on a blue background"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="medium-flux")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import torch

    import omni
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.plugins import get_registry
    from omni.stats import Stopping, repeat_pairs

    torch.set_num_threads(1)
    registry = get_registry()
    family = registry.model(args.model).spec.family
    matrix = CompatMatrix(registry, env=Environment.detect())
    gen = {"num_inference_steps": args.steps, "height": args.size, "width": args.size}
    out = {"date": time.strftime("%Y-%m-%d"), "model": args.model, **gen, "backends": {}, "unavailable": {}}
    candidates = []
    for name in ("attention_backend", "attention_cudnn", "attention_flash", "attention_flash3", "attention_sage",
                 "attention_xformers"):
        cell = matrix.cell(family, name)
        if cell.status.value in ("unavailable", "unsupported"):
            out["unavailable"][name] = "; ".join(cell.reasons)
            continue
        candidates += [(name, b) for b in registry.optimization(name).spec.option("backend").choices]
    engines = {}
    for name, backend in candidates:
        engine = omni.Engine(args.model, optimize=[name], sets={f"{name}.backend": backend}, prompt_cache=False,
                             device=args.device, dtype=args.dtype)
        res = engine.load_report.result(name)
        if res.status != "applied":
            out["unavailable"][f"{name}:{backend}"] = res.reason
            engine.close()
            continue
        engine.generate(PROMPT, seed=0, **gen)  # warm-up (flex: first call builds its block masks)
        engines[backend] = engine
    out["device"] = next(iter(engines.values())).load_report.environment.get("device")
    steps: dict[str, list[float]] = {b: [] for b in engines}
    images = {}

    def run(backend):
        def go(i):
            result = engines[backend].generate(PROMPT, seed=0, **gen)
            images[backend] = result.images
            steps[backend].extend(result.report.timings["steps"])
            return statistics.median(result.report.timings["steps"])
        return go

    stop = Stopping(min_pairs=args.pairs, max_pairs=args.pairs, max_seconds=1e9)
    for backend in engines:
        if backend == "native":
            continue
        ratio, _ = repeat_pairs(run("native"), run(backend), stop)
        delta = float(np.abs(images[backend] - images["native"]).max())
        out["backends"][backend] = {"step_over_native": ratio.to_dict(), "text": ratio.text(), "max_abs_delta": delta}
        log(f"{backend}: step time / native = {ratio.text()}, max|Δ| {delta:.2e}")
    for backend, values in steps.items():
        out["backends"].setdefault(backend, {})["median_step_s"] = round(statistics.median(values), 4)
    for engine in engines.values():
        engine.close()
    print(json.dumps(out, indent=2) if args.json else json.dumps(out))


if __name__ == "__main__":
    main()
