"""One generation with per-step timings, per-step cache hits and progress, through the
pipeline's public ``callback_on_step_end``. The only wrapper is a timing shim on ``vae.decode``
(instance attribute, removed in ``finally``) and a forward pre-hook marking the first denoiser call."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from omni.errors import UsageError
from omni.runtime.context import RunContext
from omni.runtime.report import RunReport


def _check_args(pipe, gen_args: dict[str, Any]) -> None:
    params = inspect.signature(type(pipe).__call__).parameters
    unknown = [k for k in gen_args if k not in params]
    if unknown:
        raise UsageError(f"{type(pipe).__name__} does not accept {', '.join(unknown)}")


def generate(ctx: RunContext, report: RunReport, prompt: str, gen_args: dict[str, Any], *, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    import torch

    pipe = ctx.pipe
    _check_args(pipe, gen_args)
    steps = int(gen_args.get("num_inference_steps", 20))
    readers = {name: a.stats for name, a in ctx.applied.items() if a.stats is not None}
    for reader in readers.values():
        reader()  # drop anything recorded before this generation
    hits: dict[str, list[dict[str, Any]]] = {name: [] for name in readers}
    marks: dict[str, float] = {}
    step_times: list[float] = []

    def on_step_end(_pipe, i, _t, callback_kwargs):
        now = time.perf_counter()
        step_times.append(now - marks.get("last", marks.get("denoise", now)))
        marks["last"] = now
        for name, reader in readers.items():
            flags = reader()
            hits[name].append({"step": i, "computed": flags.count("computed"), "reused": flags.count("reused")})
        if progress is not None:
            progress(i + 1, steps)
        return callback_kwargs

    hook_handles = []
    for _, module in ctx.denoisers():
        def mark(_m, _a, _k=None):
            marks.setdefault("denoise", time.perf_counter())
        hook_handles.append(module.register_forward_pre_hook(mark))
    vae = getattr(pipe, "vae", None)
    original_decode = vae.__dict__.get("decode") if vae is not None else None
    decode_time = [0.0]
    if vae is not None:
        bound = vae.decode

        def timed_decode(*a, **k):
            t0 = time.perf_counter()
            try:
                return bound(*a, **k)
            finally:
                decode_time[0] += time.perf_counter() - t0
        vae.decode = timed_decode
    generator = torch.Generator("cpu").manual_seed(seed)
    t0 = time.perf_counter()
    try:
        out = pipe(prompt=prompt, generator=generator, output_type="np", callback_on_step_end=on_step_end, **gen_args)
    finally:
        for h in hook_handles:
            h.remove()
        if vae is not None:
            if original_decode is None:
                vae.__dict__.pop("decode", None)
            else:
                vae.decode = original_decode
    total = time.perf_counter() - t0
    arr = np.asarray(out.frames if hasattr(out, "frames") else out.images, dtype=np.float32)
    report.generation = {"prompt": prompt, "seed": seed, **gen_args, "output_shape": list(arr.shape)}
    report.timings.update({
        "encode": round(marks.get("denoise", t0) - t0, 6),
        "steps": [round(s, 6) for s in step_times],
        "denoise": round(sum(step_times), 6),
        "decode": round(decode_time[0], 6),
        "generate": round(total, 6),
    })
    report.cache_hits = [
        {"method": name, "steps": rows, "computed": sum(r["computed"] for r in rows),
         "reused": sum(r["reused"] for r in rows)}
        for name, rows in hits.items()
    ]
    return arr
