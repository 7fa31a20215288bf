"""Delegates to diffusers/accelerate: ``enable_model_cpu_offload``, ``enable_sequential_cpu_offload``,
each component's ``enable_group_offload`` and ``diffusers.hooks.apply_group_offloading``.

Every function checks everything it can before the first hook is installed or the first module
moves: what cannot apply raises :class:`Skip` with the reason. Every change registers its undo as it
is made, so a failure half-way is rolled back and ``undo()`` gives the pipeline back: hooks are
removed, weights a disk offload wrote are read back, and every component returns to the device it
was on.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from typing import Any

from omni.sdk import (
    Applied,
    RunContext,
    Skip,
    Step,
    UsageError,
    denoisers,
    hook_snapshot,
    keep_attributes,
    quantized_kind,
    top_level_lists,
)

GROUP_HOOKS = ("group_offloading", "layer_execution_tracker", "lazy_prefetch_group_offloading")


def _device(ctx: RunContext) -> Any:
    import torch

    if ctx.device == "cpu":
        raise Skip("needs an accelerator; this run is on the CPU")
    return torch.device(ctx.device)


def _modules(pipe: Any) -> list[tuple[str, Any]]:
    import torch

    return [(n, m) for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)]


def _check_no_offload_hooks(pipe: Any) -> None:
    """Offloads do not stack: diffusers raises (half-way) when accelerate and group offload hooks meet."""
    for name, module in _modules(pipe):
        for sub in module.modules():
            if hasattr(sub, "_hf_hook"):
                raise Skip(f"{name} already has accelerate offload hooks")
            registry = getattr(sub, "_diffusers_hook", None)
            if registry is not None and "group_offloading" in getattr(registry, "hooks", {}):
                raise Skip(f"{name} already has group offloading hooks")


def _check_group_offloadable(name: str, module: Any, *, to_disk: bool) -> None:
    if getattr(type(module), "_supports_group_offloading", True) is False:
        raise Skip(f"{name} ({type(module).__name__}) does not support group offloading")
    if to_disk:
        kind = quantized_kind(module)
        if kind is not None:
            raise Skip(f"{name} holds {kind} weights; safetensors cannot write them to disk")
        if any(not p.is_contiguous() for p in module.parameters()):
            raise Skip(f"{name} has non-contiguous (e.g. channels_last) weights; safetensors refuses to write them")


def _keep_placement(step: Step, pipe: Any) -> None:
    """Register an undo that moves every component back to the device it is on now. Registered
    before any other change, so it runs last, after the hooks are gone."""
    devices = {name: next((p.device for p in m.parameters()), None) for name, m in _modules(pipe)}

    def restore() -> None:
        for name, module in _modules(pipe):
            if devices.get(name) is not None:
                module.to(devices[name])

    step.on_undo(restore)


def _groups(module: Any) -> list[Any]:
    """The distinct ``ModuleGroup``s of the group offloading hooks under ``module``."""
    groups = {}
    for m in module.modules():
        registry = getattr(m, "_diffusers_hook", None)
        hook = registry.get_hook("group_offloading") if registry is not None else None
        group = getattr(hook, "group", None)
        if group is not None:
            groups[id(group)] = group
    return list(groups.values())


def _group_offloading(step: Step, module: Any, install: Any) -> None:
    """Install group offloading on ``module`` with ``install()``, having registered its removal: the
    weights a disk group wrote are read back, diffusers' hooks removed, and the hook registries and
    instance ``forward``s it added dropped."""
    from diffusers.hooks import HookRegistry

    restore_hooks = hook_snapshot(module)

    def remove() -> None:
        for group in _groups(module):
            if getattr(group, "_is_offloaded_to_disk", False):
                group.onload_()  # reads the group's safetensors file back into its tensors
        registry = HookRegistry.check_if_exists_or_initialize(module)
        for name in GROUP_HOOKS:
            registry.remove_hook(name, recurse=True)
        restore_hooks()

    step.on_undo(remove)
    install()


def _accelerate(ctx: RunContext, step: Step, enable: Any) -> None:
    """``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload`` with their undo."""
    device = _device(ctx)
    _check_no_offload_hooks(ctx.pipe)
    _keep_placement(step, ctx.pipe)
    keep_attributes(step, ctx.pipe, ("_offload_", "_all_hooks"))
    step.on_undo(ctx.pipe.remove_all_hooks)
    enable(device=device)


def model_cpu_offload(ctx: RunContext, step: Step) -> Applied:
    _accelerate(ctx, step, ctx.pipe.enable_model_cpu_offload)
    return Applied(details={"sequence": ctx.pipe.model_cpu_offload_seq})


def sequential_cpu_offload(ctx: RunContext, step: Step) -> Applied:
    _accelerate(ctx, step, ctx.pipe.enable_sequential_cpu_offload)
    return Applied(details={})


def group_offload(ctx: RunContext, step: Step) -> Applied:
    """diffusers' pipeline ``enable_group_offload``, component by component so each one's undo is
    registered as it is offloaded."""
    import torch
    from diffusers.hooks import apply_group_offloading

    device = _device(ctx)
    _check_no_offload_hooks(ctx.pipe)
    opts = step.options
    modules = _modules(ctx.pipe)
    # components diffusers cannot group-offload stay resident on the accelerator instead of failing half-way
    resident = [n for n, m in modules if getattr(type(m), "_supports_group_offloading", True) is False]
    kwargs = {"onload_device": device, "offload_device": torch.device("cpu"), "offload_type": opts["offload_type"],
              "use_stream": bool(opts["use_stream"])}
    if opts["offload_type"] == "block_level":
        kwargs["num_blocks_per_group"] = 1 if kwargs["use_stream"] else int(opts["blocks_per_group"])
    _keep_placement(step, ctx.pipe)
    for name, module in modules:
        if name in resident:
            module.to(device)
        elif hasattr(module, "enable_group_offload"):
            _group_offloading(step, module, lambda m=module: m.enable_group_offload(**kwargs))
        else:
            _group_offloading(step, module, lambda m=module: apply_group_offloading(m, **kwargs))
    details: dict[str, Any] = {k: str(v) for k, v in kwargs.items()}
    if resident:
        details["resident"] = resident
    return Applied(details=details)


def layerwise_offload(ctx: RunContext, step: Step) -> Applied:
    """vLLM-Omni's layerwise offload: the denoiser's blocks live on the CPU and one block group (one
    block) at a time is copied to the accelerator, the next one prefetched on a CUDA stream."""
    import torch
    from diffusers.hooks import apply_group_offloading

    device = _device(ctx)
    found = denoisers(ctx)
    _check_no_offload_hooks(ctx.pipe)
    for name, module in found:
        _check_group_offloadable(name, module, to_disk=False)
        if top_level_lists(module) == 0:
            raise Skip(f"{name} has no top-level block list to stream one block at a time")
    names = {n for n, _ in found}
    _keep_placement(step, ctx.pipe)
    for _, module in found:
        _group_offloading(step, module, lambda m=module: apply_group_offloading(
            m, onload_device=device, offload_device=torch.device("cpu"), offload_type="block_level",
            num_blocks_per_group=1, use_stream=True))
    for name, module in _modules(ctx.pipe):
        if name not in names:
            module.to(device)
    return Applied(details={"denoisers": sorted(names), "blocks": {n: top_level_lists(m) for n, m in found},
                            "blocks_per_group": 1, "prefetch": "next block on a CUDA stream"})


def _zero_storage_placeholders(module: Any) -> int:
    """After writing a group to disk, diffusers swaps its weights for ``torch.empty_like`` buffers:
    full-size allocations that the allocator serves from memory touched before, so resident RAM creeps
    back towards the full weights within a few steps (figures: docs/benchmarks.md, memory). Zero-storage
    views (a 0-d tensor expanded to the shape) keep shape and dtype and hold no memory. Private
    diffusers API (0.42): returns the number of groups patched, 0 where diffusers' internals differ
    (then nothing is patched)."""
    import torch

    groups = _groups(module)
    needed = ("_offload_to_disk", "_is_offloaded_to_disk", "tensor_to_key", "offload_device", "stream")
    if not groups or not all(hasattr(g, a) for g in groups for a in needed):
        return 0

    def patch(group: Any) -> None:
        write = group._offload_to_disk

        def offload() -> None:
            if not group._is_offloaded_to_disk:
                write()  # the first time: writes the safetensors file
            for t in group.tensor_to_key:
                t.data = torch.empty((), dtype=t.dtype, device=group.offload_device).expand(t.shape)

        group._offload_to_disk = offload
        if group._is_offloaded_to_disk and group.stream is None:
            offload()  # replace the placeholders diffusers made when the hook was installed

    for group in groups:
        patch(group)
    return len(groups)


def _fresh_folder(base: Any) -> tuple[str, str | None]:
    """A new folder for this run's offloaded weights, under ``base`` (default: the temp folder), and the
    folder created for ``base`` itself if it was missing (None otherwise). Fresh even under a
    user-given path: diffusers reuses any group_<hash>.safetensors it finds (names derive from module
    names, not weights), so an old folder would load stale weights. Only ``base`` itself is created,
    never missing folders above it (what the run creates it removes; a typo must not leave a tree)."""
    created = None
    if base:
        base = os.path.abspath(os.path.expanduser(str(base)))
        if not os.path.isdir(base):
            parent = os.path.dirname(base)
            if not os.path.isdir(parent):
                raise UsageError(f"group_offload_disk_path {base}: folder {parent} does not exist (omni creates "
                                 "only the last folder of the path)")
            try:
                os.mkdir(base)
            except OSError as exc:
                raise UsageError(f"group_offload_disk_path {base}: cannot create it ({exc.strerror})") from None
            created = base
    try:
        return tempfile.mkdtemp(prefix="omni-disk-offload-", dir=base or None), created
    except OSError as exc:
        if created:
            os.rmdir(created)
        raise UsageError(f"group_offload_disk_path {base}: cannot write there ({exc.strerror})") from None


def disk_offload(ctx: RunContext, step: Step) -> Applied:
    """Group offload whose offloaded copy is a safetensors file per block group: the denoiser's weights
    leave RAM (and accelerator memory) and each group is read back only while it runs. Onload device =
    the run's device (the CPU on a CPU-only host); the other components go to the run's device."""
    import torch
    from diffusers.hooks import apply_group_offloading

    found = denoisers(ctx)
    _check_no_offload_hooks(ctx.pipe)
    for name, module in found:  # checked before any file is written or hook installed
        _check_group_offloadable(name, module, to_disk=True)
    path, created = _fresh_folder(step.options.get("path"))
    for folder in (created, path):  # removed in reverse: this run's folder, then the base it created
        if folder:
            atexit.register(shutil.rmtree, folder, True)
            step.on_undo(functools.partial(shutil.rmtree, folder, True))
    device = torch.device(ctx.device)
    names = {n for n, _ in found}
    blocks = int(step.options["blocks_per_group"])
    _keep_placement(step, ctx.pipe)
    patched = 0
    for name, module in found:
        _group_offloading(step, module, lambda m=module, n=name: apply_group_offloading(
            m, onload_device=device, offload_device=torch.device("cpu"), offload_type="block_level",
            num_blocks_per_group=blocks, offload_to_disk_path=os.path.join(path, n)))
        patched += _zero_storage_placeholders(module)
    if ctx.device != "cpu":
        for name, module in _modules(ctx.pipe):
            if name not in names:
                module.to(device)
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(".safetensors")]
    return Applied(details={"path": path, "denoisers": sorted(names), "blocks_per_group": blocks,
                            "files": len(files), "bytes_on_disk": sum(os.path.getsize(f) for f in files),
                            "zero_storage_placeholders": patched,
                            "removed": "at undo or process exit"})
