"""Delegates to ``nn.Module.compile`` (in place) on the denoiser's repeated blocks or on the whole
denoiser.

Traps handled: ``pipe.transformer = torch.compile(...)`` replaces the component with a wrapper the
pipeline does not expect, so compile in place; cache/offload hooks are per-block objects dynamo
guards on, so the recompile limit is raised in proportion to the block count; ``fullgraph`` is
refused over such hooks (their decisions are ``torch.compiler.disable``'d).
"""

from __future__ import annotations

import functools
from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, blocks, denoisers

HOOKED_STAGES = ("cache", "place")


def _targets(ctx: RunContext, mode: str) -> list[tuple[list[Any], str]]:
    """Per denoiser: the modules to compile and how they were found."""
    plans = []
    for name, module in denoisers(ctx):
        if mode == "full":
            plans.append(([module], "full"))
        elif getattr(module, "_repeated_blocks", None):
            found = [m for m in module.modules() if type(m).__name__ in module._repeated_blocks]
            plans.append((found, "compile_repeated_blocks"))
        else:
            found = [block for _, block in blocks(module, ctx.family.facts.block_attrs)]
            if not found:
                raise Skip(f"{name} has no _repeated_blocks and no declared block list")
            plans.append((found, "block lists"))
    return plans


def _uncompile(module: Any) -> None:
    vars(module).pop("_compiled_call_impl", None)


def apply(ctx: RunContext, step: Step) -> Applied:
    import torch

    opts = step.options
    hooked = [name for name, stage in ctx.stages.items() if stage in HOOKED_STAGES]
    if opts["fullgraph"] and hooked:
        raise Skip(f"fullgraph=True cannot trace through the hooks of {', '.join(hooked)} "
                   "(torch.compiler.disable'd decisions); use fullgraph=false")
    plans = _targets(ctx, opts["mode"])
    modules = [m for found, _ in plans for m in found]
    if any("_compiled_call_impl" in vars(m) for m in modules):
        raise Skip("the denoiser is already compiled")
    limit_before = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit_before, 8 + 2 * len(modules))
    step.on_undo(lambda: setattr(torch._dynamo.config, "recompile_limit", limit_before))
    kwargs = {"backend": opts["backend"], "fullgraph": bool(opts["fullgraph"]), "dynamic": bool(opts["dynamic"])}
    for module in modules:
        module.compile(**kwargs)
        step.on_undo(functools.partial(_uncompile, module))
    ctx.notes.append("compile: the first denoising step includes compilation time (see timings.steps[0])")
    return Applied(details={"mode": opts["mode"], "how": sorted({how for _, how in plans}),
                            "compiled_modules": len(modules), "backend": opts["backend"],
                            "recompile_limit": torch._dynamo.config.recompile_limit})
