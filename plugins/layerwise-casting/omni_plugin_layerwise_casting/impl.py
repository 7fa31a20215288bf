"""Delegates to ``ModelMixin.enable_layerwise_casting``. It has no undo: diffusers' hook cannot be
removed (its ``deinitalize_hook`` raises ``NotImplementedError``) and the full-precision weights are
gone once cast, so everything is checked before the first module is touched."""

from __future__ import annotations

from omni.sdk import Applied, RunContext, Skip, Step, denoisers, param_bytes, quantized_kind


def apply(ctx: RunContext, step: Step) -> Applied:
    import torch

    storage = step.options["storage_dtype"]
    compute = step.options.get("compute_dtype") or ctx.dtype
    if compute != ctx.dtype:
        raise Skip(f"compute dtype {compute} differs from the run dtype {ctx.dtype}: the pipeline's inputs would "
                   f"not match; run with --dtype {compute} or leave layerwise_casting_compute_dtype unset")
    if storage == compute:
        raise Skip(f"storage dtype {storage} is the compute dtype: layerwise casting would change nothing")
    targets = [(n, m) for n, m in denoisers(ctx) if hasattr(m, "enable_layerwise_casting")]
    if not targets:
        raise Skip("no denoiser component supports enable_layerwise_casting")
    for name, module in targets:
        kind = quantized_kind(module)
        if kind is not None:
            raise Skip(f"{name} holds {kind} weights (already quantized); layerwise casting would re-cast them")
        if any("layerwise_casting" in getattr(getattr(m, "_diffusers_hook", None), "hooks", {})
               for m in module.modules()):
            raise Skip(f"{name} is already layerwise-cast")
    before = param_bytes(ctx.pipe)
    for _, module in targets:
        module.enable_layerwise_casting(storage_dtype=getattr(torch, storage), compute_dtype=getattr(torch, compute))
    after = param_bytes(ctx.pipe)
    names = [n for n, _ in targets]
    return Applied(details={"storage_dtype": storage, "compute_dtype": compute,
                            "bytes_before": {n: before[n] for n in names}, "bytes_after": {n: after[n] for n in names},
                            "formats": {n: f"layerwise {storage}" for n in names}})
