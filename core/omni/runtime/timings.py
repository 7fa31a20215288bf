"""Where a run's time went: the named parts of ``timings.total`` and what is left over, so that the
figures a run prints add up.

Names say what they measure (docs/report.md): ``timings.stages`` holds the time each *stage of the
plan* took (``load`` = loading the pipeline with the load-stage optimizations; ``quantize`` ...
``decode`` = applying that stage's optimizations); ``encode``, ``denoise`` and ``vae_decode`` are
parts of one generation (``vae_decode`` is the VAE's decode call, unrelated to the ``decode``
stage). :func:`generation_timings` builds the generation's part of the report, so those names are
written in one place; :func:`timing_breakdown` splits ``total``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# part -> what it holds, in the order the run goes through them
PARTS = {
    "load": "loading the pipeline (the load stage)",
    "optimize": "applying the post-load stages (quantize, place, cache, compile, decode)",
    "queue_wait": "waiting in the engine's queue",
    "encode": "from the pipeline call to its first denoiser call: prompt encoding, latent preparation",
    "denoise": "the denoising steps",
    "vae_decode": "the VAE's decode call",
    "pipeline_other": "the rest of the pipeline call: between the steps and the VAE, post-processing",
    "write": "writing the output files and the report",
    "other": "outside all of the above: importing torch/diffusers on first use, resolving the model and "
             "config, starting the engine",
}
TOLERANCE_S = 1e-3  # rounding of the report's figures (6 decimals each)


def generation_timings(encode_s: float, step_times: list[float], vae_decode_s: float, generate_s: float
                       ) -> dict[str, Any]:
    """One generation's entries of ``report.timings`` (seconds): ``encode``, ``steps``, ``denoise``,
    ``vae_decode``, ``generate`` (the whole pipeline call)."""
    return {
        "encode": round(encode_s, 6),
        "steps": [round(s, 6) for s in step_times],
        "denoise": round(sum(step_times), 6),
        "vae_decode": round(vae_decode_s, 6),
        "generate": round(generate_s, 6),
    }


def timing_breakdown(timings: Mapping[str, Any]) -> dict[str, float]:
    """``{part: seconds}`` in :data:`PARTS` order for the parts this report has. With a ``total``,
    the values add up to it: ``other`` is what no named part covers (``write`` counts only when
    it is inside ``total``).

    ``load`` and ``optimize`` appear when they are inside ``total``: an ``omni.run`` total covers
    loading; an engine request's total (queue wait + generation) does not, and its ``stages`` are
    the load report's, shown for reference. Raises ValueError when the generation's parts alone
    exceed ``total``: they overlap or ``total`` misses one, and a printed sum would not add up."""
    stages = dict(timings.get("stages") or {})
    setup: dict[str, float] = {}
    if "load" in stages:
        setup["load"] = float(stages.pop("load"))
    if stages:
        setup["optimize"] = float(sum(stages.values()))
    run: dict[str, float] = {}
    for key in ("queue_wait", "encode", "denoise", "vae_decode"):
        if key in timings:
            run[key] = float(timings[key])
    if "generate" in timings:
        inside = sum(run.get(k, 0.0) for k in ("encode", "denoise", "vae_decode"))
        run["pipeline_other"] = max(0.0, float(timings["generate"]) - inside)
    if "write" in timings:
        run["write"] = float(timings["write"])
    total = timings.get("total")
    if total is None:
        out = {**setup, **run}
    else:
        left = float(total) - sum(run.values())
        if left < -TOLERANCE_S:
            raise ValueError(f"timings: the parts ({sum(run.values()):.6f} s) exceed total ({total} s)")
        if left >= sum(setup.values()) - TOLERANCE_S:
            out = {**setup, **run}
            left -= sum(setup.values())
        else:
            out = run
        out["other"] = max(0.0, left)
    return {k: round(out[k], 6) for k in PARTS if k in out}


def format_breakdown(timings: Mapping[str, Any]) -> str:
    """One line: ``time: total 24.343 s = load 12.319 + ... + other 11.802 s``, with the step count
    and median step after ``denoise``. Parts that round to 0.000 s are not printed."""
    parts = timing_breakdown(timings)
    steps = list(timings.get("steps") or [])
    shown = []
    for name, seconds in parts.items():
        if round(seconds, 3) == 0 and name not in ("denoise", "other"):
            continue
        label = {"vae_decode": "VAE decode", "pipeline_other": "rest of the pipeline call",
                 "queue_wait": "queue wait"}.get(name, name)
        text = f"{label} {seconds:.3f}"
        if name == "denoise" and steps:
            text += f" ({len(steps)} steps, median {sorted(steps)[len(steps) // 2] * 1000:.1f} ms)"
        shown.append(text)
    total = timings.get("total")
    head = "time: " if total is None else f"time: total {float(total):.3f} s = "
    return head + " + ".join(shown) + " s"
