"""Delegates to diffusers' ``fuse_qkv_projections`` and torch's ``channels_last`` memory format."""

from __future__ import annotations

from omni.runtime.context import Applied, Skip


def _quantized(module) -> str | None:
    return next((type(p).__name__ for p in module.parameters() if type(p).__name__ not in ("Parameter", "Tensor")),
                None)


def fuse_qkv(ctx, step) -> Applied:
    targets = [(n, m) for n, m in ctx.denoisers() if hasattr(m, "fuse_qkv_projections")]
    if not targets:
        raise Skip("no denoiser component implements fuse_qkv_projections")
    for name, module in targets:  # checked before anything is fused
        kind = _quantized(module)
        if kind is not None:
            raise Skip(f"{name} already holds {kind} weights: QKV fusion concatenates plain weights and must run "
                       "before quantization")
        if any(getattr(m, "fused_projections", False) for m in module.modules()):
            raise Skip(f"{name} already has fused QKV projections")
        if not any(hasattr(m, "fuse_projections") for m in module.modules()):
            raise Skip(f"{name} has no attention module that can fuse its projections")
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

    fused = {n: sum(1 for m in module.modules() if getattr(m, "fused_projections", False)) for n, module in done}
    return Applied(details={"fused": sorted(fused), "attention_modules_fused": fused}, undo=undo)


def channels_last(ctx, step) -> Applied:
    import torch

    names = [n for n, _ in ctx.denoisers()] + (["vae"] if getattr(ctx.pipe, "vae", None) is not None else [])
    modules = [(n, getattr(ctx.pipe, n)) for n in names]
    convs = {n: sum(isinstance(m, torch.nn.Conv2d) for m in module.modules()) for n, module in modules}
    if not any(convs[n] for n, _ in ctx.denoisers()):
        raise Skip("the denoiser has no Conv2d layer; channels_last would change nothing")
    for name, module in modules:
        kind = _quantized(module)
        if kind is not None:
            raise Skip(f"{name} holds {kind} weights, which channels_last conversion does not handle")
    for _, module in modules:
        module.to(memory_format=torch.channels_last)

    def undo() -> None:
        for _, module in modules:
            module.to(memory_format=torch.contiguous_format)

    return Applied(details={"components": names, "conv2d_layers": convs}, undo=undo)
