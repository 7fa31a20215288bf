"""One generation on a loaded, optimized pipeline: the pipeline call under a :class:`StepObserver`,
with the prompt-embedding cache when given, and the request's part of the report (timings, cache
hits, generation arguments). An aborted generation resets step-cache state so the pipeline is ready
for the next request."""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

import numpy as np

from omni.errors import OmniError, UsageError
from omni.runtime.context import RunContext
from omni.runtime.observe import Cancelled, EventListener, StepObserver
from omni.runtime.prompt_cache import PromptCache, encoder_state
from omni.runtime.report import RunReport
from omni.runtime.timings import generation_timings
from omni.runtime.truncation import prompt_notes


class NonFiniteOutput(OmniError):
    """The pipeline produced NaN or infinite values (broken weights, an unstable optimization)."""


def check_args(pipe: Any, gen_args: dict[str, Any]) -> None:
    """Refuse arguments the pipeline's ``__call__`` does not name (legacy pipelines swallow them)."""
    params = inspect.signature(type(pipe).__call__).parameters
    unknown = [k for k in gen_args if k not in params or params[k].kind is inspect.Parameter.VAR_KEYWORD]
    if unknown:
        raise UsageError(f"{type(pipe).__name__} does not accept {', '.join(sorted(unknown))}")


def reset_caches(ctx: RunContext) -> None:
    """Drop per-generation state after an aborted call: each step's ``reset`` and diffusers'
    stateful hooks on every denoiser."""
    for applied in ctx.applied.values():
        if applied.reset is not None:
            applied.reset()
        if applied.stats is not None:
            applied.stats()
    for _, module in ctx.denoisers():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None:
            registry.reset_stateful_hooks(recurse=True)


def _text_encoders(ctx: RunContext) -> tuple[str, ...]:
    declared = ctx.family.facts.text_encoders
    if declared:
        return declared
    return tuple(n for n in getattr(ctx.pipe, "components", {}) if n.startswith("text_encoder"))


def generate(ctx: RunContext, report: RunReport, prompt: str, gen_args: dict[str, Any], *, seed: int = 0,
             on_event: EventListener | None = None, cancel: threading.Event | None = None,
             embeddings: PromptCache | None = None, embeddings_key: Any = (),
             inputs: dict[str, Any] | None = None) -> np.ndarray:
    """Run the pipeline once; fills ``report.generation``, ``report.timings`` and ``report.cache_hits``.
    Raises :class:`Cancelled` (after resetting cache state) when ``cancel`` is set between steps.
    ``embeddings_key``: what else the text embeddings depend on for this call (the per-request options in
    effect, e.g. a LoRA adapter that changes the text encoder without touching its weights). ``inputs``:
    pipeline arguments that are images/videos (kept out of ``report.generation``)."""
    import torch

    pipe = ctx.pipe
    check_args(pipe, gen_args)
    steps = gen_args.get("num_inference_steps")
    restore_encode = None
    if embeddings is not None:
        state = encoder_state(pipe, _text_encoders(ctx))
        wrapped = embeddings.wrap(pipe, lambda: (state(), embeddings_key))
        if wrapped is not None:
            had = "encode_prompt" in vars(pipe)
            previous = vars(pipe).get("encode_prompt")
            pipe.encode_prompt = wrapped

            def restore_encode() -> None:
                if had:
                    pipe.encode_prompt = previous
                else:
                    vars(pipe).pop("encode_prompt", None)
        embeddings.take_counts()
    generator = torch.Generator("cpu").manual_seed(seed)
    observer = StepObserver(ctx, on_event=on_event, cancel=cancel, expected_steps=steps)
    t0 = time.perf_counter()
    try:
        with observer:
            text = {"prompt": prompt} if "prompt" in inspect.signature(type(pipe).__call__).parameters else {}
            out = pipe(**text, generator=generator, output_type="np", **gen_args, **(inputs or {}))
            observer.finish()
    except Cancelled:
        reset_caches(ctx)
        raise
    finally:
        if restore_encode is not None:
            restore_encode()
    total = time.perf_counter() - t0
    arr = np.asarray(out.frames if hasattr(out, "frames") else out.images, dtype=np.float32)
    report.generation = {"prompt": prompt, "seed": seed, **gen_args, "output_shape": list(arr.shape)}
    report.notes.extend(prompt_notes(pipe, {"prompt": prompt, "negative_prompt": gen_args.get("negative_prompt")},
                                     gen_args))
    asked = (gen_args.get("height"), gen_args.get("width"))
    made = tuple(arr.shape[-3:-1])
    if None not in asked and made != asked:
        report.notes.append(f"the pipeline made {made[0]}x{made[1]} instead of the requested {asked[0]}x{asked[1]}")
    if arr.ndim == 5 and gen_args.get("num_frames") not in (None, arr.shape[1]):
        report.notes.append(f"the pipeline made {arr.shape[1]} frames instead of the requested {gen_args['num_frames']}")
    step_times = observer.step_times
    report.timings.update(generation_timings(observer.encode_s or 0.0, step_times, observer.decode_s, total))
    report.cache_hits = [
        {"method": name, "steps": rows, "computed": sum(r["computed"] for r in rows),
         "reused": sum(r["reused"] for r in rows)}
        for name, rows in observer.hits.items()
    ]
    if embeddings is not None:
        hits, misses, bypassed = embeddings.take_counts()
        report.cache_hits.append({"method": "text_embedding", "steps": [], "computed": misses, "reused": hits,
                                  "bypassed": bypassed})
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise NonFiniteOutput(f"the output holds {bad} NaN or infinite value(s) of {np.size(arr)}: the weights or an "
                              "optimization produced non-finite numbers; nothing was written")
    return arr
