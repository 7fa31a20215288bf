"""Delegates to the denoiser's ``fuse_qkv_projections`` and torch's ``channels_last`` memory format.
Each module changed registers its own undo as it is changed."""

from __future__ import annotations

import functools
from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, denoisers, quantized_kind


def fuse_qkv(ctx: RunContext, step: Step) -> Applied:
    targets = [(n, m) for n, m in denoisers(ctx) if hasattr(m, "fuse_qkv_projections")]
    if not targets:
        raise Skip("no denoiser component implements fuse_qkv_projections")
    for name, module in targets:  # checked before anything is fused
        kind = quantized_kind(module)
        if kind is not None:
            raise Skip(f"{name} already holds {kind} weights: QKV fusion concatenates plain weights and must run "
                       "before quantization")
        if any(getattr(m, "fused_projections", False) for m in module.modules()):
            raise Skip(f"{name} already has fused QKV projections")
        if not any(hasattr(m, "fuse_projections") for m in module.modules()):
            raise Skip(f"{name} has no attention module that can fuse its projections")
    for _, module in targets:
        step.on_undo(module.unfuse_qkv_projections)  # a no-op on attention modules not fused yet
        module.fuse_qkv_projections()
    fused = {n: sum(1 for m in module.modules() if getattr(m, "fused_projections", False)) for n, module in targets}
    return Applied(details={"fused": sorted(fused), "attention_modules_fused": fused})


def _contiguous(module: Any) -> None:
    import torch

    module.to(memory_format=torch.contiguous_format)


def channels_last(ctx: RunContext, step: Step) -> Applied:
    import torch

    found = denoisers(ctx)
    modules = found + ([("vae", ctx.pipe.vae)] if getattr(ctx.pipe, "vae", None) is not None else [])
    convs = {n: sum(isinstance(m, torch.nn.Conv2d) for m in module.modules()) for n, module in modules}
    if not any(convs[n] for n, _ in found):
        raise Skip("the denoiser has no Conv2d layer; channels_last would change nothing")
    for name, module in modules:
        kind = quantized_kind(module)
        if kind is not None:
            raise Skip(f"{name} holds {kind} weights, which channels_last conversion does not handle")
        # Module.to(memory_format=channels_last) converts every 4-D parameter and raises on the first 5-D one
        # (Conv3d: "required rank 4 tensor"), after converting some: refuse before changing anything
        ranks = sorted({p.dim() for p in module.parameters() if p.dim() > 4})
        if ranks:
            raise Skip(f"{name} has {ranks[0]}-D weights (3-D convolutions); channels_last applies to 4-D tensors only")
    for _, module in modules:
        step.on_undo(functools.partial(_contiguous, module))
        module.to(memory_format=torch.channels_last)
    return Applied(details={"components": [n for n, _ in modules], "conv2d_layers": convs})
