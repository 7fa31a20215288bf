"""Delegates to diffusers/accelerate: ``enable_model_cpu_offload``, ``enable_sequential_cpu_offload``,
``enable_group_offload`` and ``diffusers.hooks.apply_group_offloading`` (notes §2)."""

from __future__ import annotations

import atexit
import shutil
import tempfile

from omni.runtime.context import Applied, Skip


def _device(ctx):
    import torch

    if ctx.device == "cpu":
        raise Skip("needs an accelerator; this run is on the CPU")
    return torch.device(ctx.device)


def _undo_hooks(pipe):
    def undo() -> None:
        pipe.remove_all_hooks()
    return undo


def model_cpu_offload(ctx, step) -> Applied:
    device = _device(ctx)
    ctx.pipe.enable_model_cpu_offload(device=device)
    return Applied(details={"sequence": ctx.pipe.model_cpu_offload_seq}, undo=_undo_hooks(ctx.pipe))


def sequential_cpu_offload(ctx, step) -> Applied:
    device = _device(ctx)
    ctx.pipe.enable_sequential_cpu_offload(device=device)
    return Applied(details={}, undo=_undo_hooks(ctx.pipe))


def group_offload(ctx, step) -> Applied:
    import torch

    device = _device(ctx)
    opts = step.options
    kwargs = {"onload_device": device, "offload_device": torch.device("cpu"), "offload_type": opts["offload_type"],
              "use_stream": bool(opts["use_stream"])}
    if opts["offload_type"] == "block_level":
        kwargs["num_blocks_per_group"] = int(opts["blocks_per_group"])
    ctx.pipe.enable_group_offload(**kwargs)
    return Applied(details={k: str(v) for k, v in kwargs.items()})


def layerwise_offload(ctx, step) -> Applied:
    import torch
    from diffusers.hooks import apply_group_offloading

    device = _device(ctx)
    denoisers = ctx.denoisers()
    if not denoisers:
        raise Skip("the pipeline has no denoiser component")
    names = {n for n, _ in denoisers}
    for name, component in ctx.pipe.components.items():
        if isinstance(component, torch.nn.Module) and name not in names:
            component.to(device)
    for _, module in denoisers:
        apply_group_offloading(module, onload_device=device, offload_device=torch.device("cpu"),
                               offload_type="block_level", num_blocks_per_group=1, use_stream=True)
    return Applied(details={"denoisers": sorted(names), "blocks_resident": 1, "stream": True})


def disk_offload(ctx, step) -> Applied:
    import torch
    from diffusers.hooks import apply_group_offloading

    path = step.options.get("path")
    if not path:
        path = tempfile.mkdtemp(prefix="omni-disk-offload-")
        atexit.register(shutil.rmtree, path, True)
    device = torch.device(ctx.device)
    targets = ctx.denoisers()
    if not targets:
        raise Skip("the pipeline has no denoiser component")
    for name, module in targets:
        if type(module).__dict__.get("_supports_group_offloading", True) is False:
            raise Skip(f"{type(module).__name__} does not support group offloading")
        subclass = next((type(p).__name__ for p in module.parameters()
                         if type(p).__name__ not in ("Parameter", "Tensor")), None)
        if subclass is not None:  # checked before any hook is installed
            raise Skip(f"{name} holds {subclass} weights; safetensors cannot write them to disk")
    for name, module in targets:
        apply_group_offloading(module, onload_device=device, offload_device=torch.device("cpu"),
                               offload_type="block_level", num_blocks_per_group=int(step.options["blocks_per_group"]),
                               offload_to_disk_path=f"{path}/{name}")
    return Applied(details={"path": path, "denoisers": [n for n, _ in targets]})
