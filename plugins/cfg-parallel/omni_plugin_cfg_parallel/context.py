"""Context parallel through diffusers: ``ContextParallelConfig(ring_degree, ulysses_degree)`` and the
denoiser's ``enable_parallelism``, which splits each attention's sequence over the ranks (Ulysses:
all-to-all of heads; Ring: key/value chunks passed around). diffusers resolves the degrees against the
accelerator count, so it needs CUDA and one GPU per rank; on CPU this step is ``unavailable``.

diffusers has no ``disable_parallelism``: the step has no undo (the pipeline keeps it until reloaded)."""

from __future__ import annotations

from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, denoisers

from omni_plugin_cfg_parallel.group import env_world_size, join


def degrees(world: int, ring: int, ulysses: int) -> tuple[int, int]:
    """The (ring, ulysses) degrees for ``world`` ranks: 0 means "the rest" (Ulysses takes every rank when
    both are 0); their product must be the world size."""
    if ring == 0 and ulysses == 0:
        ulysses = world
    if ring == 0:
        ring = world // ulysses if ulysses and world % ulysses == 0 else 0
    if ulysses == 0:
        ulysses = world // ring if ring and world % ring == 0 else 0
    if ring < 1 or ulysses < 1 or ring * ulysses != world:
        raise Skip(f"ring_degree x ulysses_degree must equal the {world} processes of this run "
                   f"(got ring {ring or '?'}, ulysses {ulysses or '?'})")
    return ring, ulysses


def apply(ctx: RunContext, step: Step) -> Applied:
    found = denoisers(ctx)
    if not str(ctx.device).startswith("cuda"):
        raise Skip("context parallel runs on CUDA only (diffusers divides the sequence over accelerators)")
    missing = [name for name, module in found if not hasattr(module, "enable_parallelism")
               or not getattr(module, "_cp_plan", None)]
    if missing:
        raise Skip(f"{', '.join(missing)} has no context-parallel plan in this diffusers (no _cp_plan)")
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else env_world_size()
    ring, ulysses = degrees(world, step.options["ring_degree"], step.options["ulysses_degree"])
    group = join(ctx, step, need=2)
    from diffusers import ContextParallelConfig

    for _, module in found:
        module.enable_parallelism(config=ContextParallelConfig(ring_degree=ring, ulysses_degree=ulysses))
    layout: dict[str, Any] = {**group.layout(), "ring_degree": ring, "ulysses_degree": ulysses,
                              "layout": f"each attention's sequence split over {group.world_size} ranks"}
    return Applied(details=layout)
