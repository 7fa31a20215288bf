"""Delegates to diffusers/accelerate: ``enable_model_cpu_offload``, ``enable_sequential_cpu_offload``,
``enable_group_offload`` and ``diffusers.hooks.apply_group_offloading`` (notes §2).

Every function checks everything it can before the first hook is installed or the first module
moves (the executor's rollback rule): what cannot apply raises :class:`Skip` with the reason.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from omni.runtime.context import Applied, Skip


def _device(ctx):
    import torch

    if ctx.device == "cpu":
        raise Skip("needs an accelerator; this run is on the CPU")
    return torch.device(ctx.device)


def _modules(pipe) -> list[tuple[str, object]]:
    import torch

    return [(n, m) for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)]


def _check_no_offload_hooks(pipe) -> None:
    """Offloads do not stack: diffusers raises (half-way) when accelerate and group offload hooks meet."""
    for name, module in _modules(pipe):
        for sub in module.modules():
            if hasattr(sub, "_hf_hook"):
                raise Skip(f"{name} already has accelerate offload hooks")
            registry = getattr(sub, "_diffusers_hook", None)
            if registry is not None and "group_offloading" in getattr(registry, "hooks", {}):
                raise Skip(f"{name} already has group offloading hooks")


def _check_group_offloadable(name: str, module, *, to_disk: bool) -> None:
    if getattr(type(module), "_supports_group_offloading", True) is False:
        raise Skip(f"{name} ({type(module).__name__}) does not support group offloading")
    if to_disk:
        subclass = next((type(p).__name__ for p in module.parameters()
                         if type(p).__name__ not in ("Parameter", "Tensor")), None)
        if subclass is not None:
            raise Skip(f"{name} holds {subclass} weights; safetensors cannot write them to disk")
        if any(not p.is_contiguous() for p in module.parameters()):
            raise Skip(f"{name} has non-contiguous (e.g. channels_last) weights; safetensors refuses to write them")


def _blocks(module) -> int:
    """Top-level ModuleList/Sequential children: what block_level group offloading groups."""
    import torch

    lists = (torch.nn.ModuleList, torch.nn.Sequential)
    return sum(len(child) for child in module.children() if isinstance(child, lists))


def _undo_hooks(pipe):
    def undo() -> None:
        pipe.remove_all_hooks()
    return undo


def model_cpu_offload(ctx, step) -> Applied:
    device = _device(ctx)
    _check_no_offload_hooks(ctx.pipe)
    ctx.pipe.enable_model_cpu_offload(device=device)
    return Applied(details={"sequence": ctx.pipe.model_cpu_offload_seq}, undo=_undo_hooks(ctx.pipe))


def sequential_cpu_offload(ctx, step) -> Applied:
    device = _device(ctx)
    _check_no_offload_hooks(ctx.pipe)
    ctx.pipe.enable_sequential_cpu_offload(device=device)
    return Applied(details={}, undo=_undo_hooks(ctx.pipe))


def group_offload(ctx, step) -> Applied:
    import torch

    device = _device(ctx)
    _check_no_offload_hooks(ctx.pipe)
    opts = step.options
    # components diffusers cannot group-offload stay resident on the accelerator instead of failing half-way
    exclude = [n for n, m in _modules(ctx.pipe) if getattr(type(m), "_supports_group_offloading", True) is False]
    kwargs = {"onload_device": device, "offload_device": torch.device("cpu"), "offload_type": opts["offload_type"],
              "use_stream": bool(opts["use_stream"])}
    if opts["offload_type"] == "block_level":
        kwargs["num_blocks_per_group"] = 1 if kwargs["use_stream"] else int(opts["blocks_per_group"])
    ctx.pipe.enable_group_offload(**kwargs, exclude_modules=exclude or None)
    details = {k: str(v) for k, v in kwargs.items()}
    if exclude:
        details["resident"] = exclude
    return Applied(details=details)


def layerwise_offload(ctx, step) -> Applied:
    """vLLM-Omni's layerwise offload: the denoiser's blocks live on the CPU and one block group (one
    block) at a time is copied to the accelerator, the next one prefetched on a CUDA stream."""
    import torch
    from diffusers.hooks import apply_group_offloading

    device = _device(ctx)
    denoisers = ctx.denoisers()
    if not denoisers:
        raise Skip("the pipeline has no denoiser component")
    _check_no_offload_hooks(ctx.pipe)
    for name, module in denoisers:
        _check_group_offloadable(name, module, to_disk=False)
        if _blocks(module) == 0:
            raise Skip(f"{name} has no top-level block list to stream one block at a time")
    names = {n for n, _ in denoisers}
    for _, module in denoisers:
        apply_group_offloading(module, onload_device=device, offload_device=torch.device("cpu"),
                               offload_type="block_level", num_blocks_per_group=1, use_stream=True)
    for name, module in _modules(ctx.pipe):
        if name not in names:
            module.to(device)
    return Applied(details={"denoisers": sorted(names), "blocks": {n: _blocks(m) for n, m in denoisers},
                            "blocks_per_group": 1, "prefetch": "next block on a CUDA stream"})


def _zero_storage_placeholders(module) -> int:
    """After writing a group to disk, diffusers swaps its weights for ``torch.empty_like`` buffers: full-size
    allocations that the allocator serves from memory touched before, so resident RAM creeps back towards
    the full weights within a few steps (medium-flux, 269 MiB of transformer weights, three 4-step runs at
    256²: 723 MiB resident vs 788 MiB without any offload). Zero-storage views (a 0-d tensor expanded to
    the shape) keep shape and dtype and hold no memory: 544-563 MiB. Private diffusers API (0.42): returns
    the number of groups patched, 0 where diffusers' internals differ (then nothing is patched)."""
    import torch

    groups = {}
    for m in module.modules():
        registry = getattr(m, "_diffusers_hook", None)
        hook = registry.get_hook("group_offloading") if registry is not None else None
        group = getattr(hook, "group", None)
        if group is not None:
            groups[id(group)] = group
    needed = ("_offload_to_disk", "_is_offloaded_to_disk", "tensor_to_key", "offload_device", "stream")
    if not groups or not all(hasattr(g, a) for g in groups.values() for a in needed):
        return 0

    def patch(group) -> None:
        write = group._offload_to_disk

        def offload() -> None:
            if not group._is_offloaded_to_disk:
                write()  # the first time: writes the safetensors file
            for t in group.tensor_to_key:
                t.data = torch.empty((), dtype=t.dtype, device=group.offload_device).expand(t.shape)

        group._offload_to_disk = offload
        if group._is_offloaded_to_disk and group.stream is None:
            offload()  # replace the placeholders diffusers made when the hook was installed

    for group in groups.values():
        patch(group)
    return len(groups)


def disk_offload(ctx, step) -> Applied:
    """Group offload whose offloaded copy is a safetensors file per block group: the denoiser's weights
    leave RAM (and accelerator memory) and each group is read back only while it runs. Onload device =
    the run's device (the CPU on a CPU-only host); the other components go to the run's device."""
    import torch
    from diffusers.hooks import apply_group_offloading

    targets = ctx.denoisers()
    if not targets:
        raise Skip("the pipeline has no denoiser component")
    _check_no_offload_hooks(ctx.pipe)
    for name, module in targets:  # checked before any file is written or hook installed
        _check_group_offloadable(name, module, to_disk=True)
    base = step.options.get("path")
    if base:
        base = os.path.abspath(os.path.expanduser(str(base)))
        try:
            os.makedirs(base, exist_ok=True)
        except OSError as exc:
            raise Skip(f"cannot create the disk offload folder {base}: {exc}") from None
    # A fresh folder per run even under a user-given path: diffusers reuses any group_<hash>.safetensors
    # it finds (names derive from module names, not weights), so an old folder would load stale weights.
    path = tempfile.mkdtemp(prefix="omni-disk-offload-", dir=base or None)
    atexit.register(shutil.rmtree, path, True)
    device = torch.device(ctx.device)
    names = {n for n, _ in targets}
    blocks = int(step.options["blocks_per_group"])
    patched = 0
    for name, module in targets:
        apply_group_offloading(module, onload_device=device, offload_device=torch.device("cpu"),
                               offload_type="block_level", num_blocks_per_group=blocks,
                               offload_to_disk_path=os.path.join(path, name))
        patched += _zero_storage_placeholders(module)
    if ctx.device != "cpu":
        for name, module in _modules(ctx.pipe):
            if name not in names:
                module.to(device)
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".safetensors")]
    return Applied(details={"path": path, "denoisers": sorted(names), "blocks_per_group": blocks,
                            "files": len(files), "bytes_on_disk": sum(os.path.getsize(f) for f in files),
                            "zero_storage_placeholders": patched, "removed": "at process exit"})
