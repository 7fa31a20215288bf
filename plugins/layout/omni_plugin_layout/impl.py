"""Delegates to diffusers' ``fuse_qkv_projections`` and torch's ``channels_last`` memory format."""

from __future__ import annotations

from omni.runtime.context import Applied, Skip


def fuse_qkv(ctx, step) -> Applied:
    targets = [(n, m) for n, m in ctx.denoisers() if hasattr(m, "fuse_qkv_projections")]
    if not targets:
        raise Skip("no denoiser component implements fuse_qkv_projections")
    done = []
    try:
        for name, module in targets:
            module.fuse_qkv_projections()
            done.append((name, module))
    except Exception:
        for _, module in done:  # leave nothing half fused
            module.unfuse_qkv_projections()
        raise

    def undo() -> None:
        for _, module in done:
            module.unfuse_qkv_projections()

    return Applied(details={"fused": [n for n, _ in done]}, undo=undo)


def channels_last(ctx, step) -> Applied:
    import torch

    names = [n for n, _ in ctx.denoisers()] + (["vae"] if getattr(ctx.pipe, "vae", None) is not None else [])
    modules = [(n, getattr(ctx.pipe, n)) for n in names]
    for _, module in modules:
        module.to(memory_format=torch.channels_last)

    def undo() -> None:
        for _, module in modules:
            module.to(memory_format=torch.contiguous_format)

    return Applied(details={"components": names}, undo=undo)
