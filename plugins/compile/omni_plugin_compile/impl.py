"""Delegates to ``ModelMixin.compile_repeated_blocks`` / ``nn.Module.compile`` (in place).

Traps handled (diffusers-0.42-notes.md §4): ``pipe.transformer = torch.compile(...)`` breaks the
pipeline, so compile in place; cache/offload hooks are per-block objects dynamo guards on, so the
recompile limit is raised in proportion to the block count; ``fullgraph`` is refused with hooks.
"""

from __future__ import annotations

from omni.runtime.context import Applied, Skip

HOOKED_STAGES = ("cache", "place")


def _blocks(module, attrs):
    import torch

    out = []
    for name in attrs:
        container = getattr(module, name, None)
        if isinstance(container, torch.nn.ModuleList):
            out.extend(container)
    return out


def apply(ctx, step) -> Applied:
    import torch

    opts = step.options
    hook_steps = [name for name in ctx.applied if _stage_of(name) in HOOKED_STAGES]
    if opts["fullgraph"] and hook_steps:
        raise Skip(f"fullgraph=True cannot trace through the hooks of {', '.join(hook_steps)} "
                   "(torch.compiler.disable'd decisions); use fullgraph=false")
    targets = ctx.denoisers()
    if not targets:
        raise Skip("the pipeline has no denoiser component")
    plans = []
    for name, module in targets:
        if opts["mode"] == "full":
            plans.append((name, [module], "full"))
        elif getattr(module, "_repeated_blocks", None):
            blocks = [m for m in module.modules() if type(m).__name__ in module._repeated_blocks]
            plans.append((name, blocks, "compile_repeated_blocks"))
        else:
            blocks = _blocks(module, ctx.family.facts.block_attrs)
            if not blocks:
                raise Skip(f"{name} has no _repeated_blocks and no declared block list")
            plans.append((name, blocks, "block lists"))
    kwargs = {"backend": opts["backend"], "fullgraph": bool(opts["fullgraph"]), "dynamic": bool(opts["dynamic"])}
    n_blocks = sum(len(b) for _, b, _ in plans)
    limit_before = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit_before, 8 + 2 * n_blocks)
    compiled = []
    for _, modules, _ in plans:
        for module in modules:
            module.compile(**kwargs)
            compiled.append(module)

    def undo() -> None:
        for module in compiled:
            module._compiled_call_impl = None
        torch._dynamo.config.recompile_limit = limit_before

    ctx.notes.append("compile: the first denoising step includes compilation time (see timings.steps[0])")
    return Applied(details={"mode": opts["mode"], "how": sorted({how for _, _, how in plans}),
                            "compiled_modules": len(compiled), "backend": opts["backend"],
                            "recompile_limit": torch._dynamo.config.recompile_limit}, undo=undo)


def _stage_of(name):
    from omni.plugins import get_registry

    try:
        return get_registry().optimization(name).spec.stage.value
    except KeyError:
        return None
