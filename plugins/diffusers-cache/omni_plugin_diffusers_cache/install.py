"""Installing one of diffusers' caches on every denoiser, the same way for all five: checks before
any change, diffusers' front door where the denoiser has one, omni's :class:`~.watch.Watch` for hit
flags and cache contexts, and the step's stats / reset / reconfigure / undo."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

from omni.sdk import Applied, HitFlags, Skip, blocks, denoisers, hook_snapshot, refresh_hooks

HOOKS = {
    "first_block_cache": ("_FBC_LEADER_BLOCK_HOOK", "_FBC_BLOCK_HOOK"),
    "mag_cache": ("_MAG_CACHE_LEADER_BLOCK_HOOK", "_MAG_CACHE_BLOCK_HOOK"),
    "taylorseer_cache": ("_TAYLORSEER_CACHE_HOOK",),
    "pyramid_attention_broadcast": ("_PYRAMID_ATTENTION_BROADCAST_HOOK",),
    "faster_cache": ("_FASTER_CACHE_DENOISER_HOOK", "_FASTER_CACHE_BLOCK_HOOK"),
}


def hook_names(method: str) -> tuple[str, ...]:
    """diffusers' hook names for ``method``, read from ``diffusers.hooks.<method>`` (fails loudly if renamed)."""
    module = importlib.import_module(f"diffusers.hooks.{method}")
    return tuple(getattr(module, const) for const in HOOKS[method])


def check_blocks(name: str, module) -> None:
    """Block-level caches: the block lists diffusers will find, all of registered classes."""
    from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS
    from diffusers.hooks._helpers import TransformerBlockRegistry

    found = [b for _, b in blocks(module)]
    if len(found) < 2:
        raise Skip(f"{name} ({type(module).__name__}) has {len(found)} transformer blocks in a list diffusers "
                   f"looks for ({', '.join(sorted(_ALL_TRANSFORMER_BLOCK_IDENTIFIERS))}); a block cache needs two")
    for cls in {type(b) for b in found}:
        try:
            TransformerBlockRegistry.get(cls)
        except ValueError:
            raise Skip(f"block class {cls.__name__} is not in diffusers' TransformerBlockRegistry (its output layout "
                       "is unknown): register it with TransformerBlockRegistry.register(...) first") from None


def timestep_source(ctx, watch) -> Callable[[], float]:
    """The current timestep on the 0-1000 scale: the running pipeline's ``current_timestep`` where it keeps
    one (Flux/Wan/LTX/Qwen), else the ``timestep`` the denoiser was called with (SD/SDXL/SD3). ``ctx.pipe`` is
    read at each call: during a generation it is the pipeline running (another task's pipeline shares these
    components)."""

    def current() -> float:
        pipe = ctx.pipe
        from_pipe = isinstance(getattr(type(pipe), "current_timestep", None), property)
        t = pipe.current_timestep if from_pipe else watch.timestep
        if t is None:  # unknown: outside every window, so nothing is skipped on a guess
            return math.inf
        return float(t.flatten()[0]) if hasattr(t, "flatten") else float(t)

    return current


def enable(module, method: str, config) -> Callable[[], None]:
    """Install ``config`` on one denoiser; returns what removes it."""
    if callable(getattr(module, "enable_cache", None)) and callable(getattr(module, "disable_cache", None)):
        # diffusers' front door (CacheMixin): it refreshes the hook registries, and disable_cache knows the
        # hook names; it leaves an instance _cache_config = None behind, dropped here
        had_config = "_cache_config" in vars(module)
        module.enable_cache(config)

        def disable() -> None:
            module.disable_cache()
            if not had_config:
                vars(module).pop("_cache_config", None)

        return disable
    # the functional path, only for denoisers without CacheMixin (in diffusers 0.42: SD3Transformer2DModel and
    # UNet2DConditionModel, which these caches still serve): apply_* and removal by diffusers' hook names
    from diffusers import hooks
    from diffusers.hooks import HookRegistry

    getattr(hooks, f"apply_{method}")(module, config)
    refresh_hooks(module)

    def remove() -> None:
        registry = HookRegistry.check_if_exists_or_initialize(module)
        for name in hook_names(method):
            registry.remove_hook(name, recurse=True)
        refresh_hooks(module)

    return remove


def install(ctx, step, method: str, configure: Callable, read: Callable, details: dict,
            retune: Callable[[dict[str, Any]], None] | None = None) -> Applied:
    """For every denoiser: ``configure(name, module, watch) -> (config, facts)`` (raise ``Skip`` there,
    before anything changes, when the denoiser cannot take it); then the :class:`Watch`, the cache and
    ``read(watch) -> more facts`` (the hit reader). ``retune(options)`` applies per-request options to the
    installed hooks. Everything is undone in reverse order, the pipeline's hook registries included."""
    from omni_plugin_diffusers_cache.watch import Watch

    targets = denoisers(ctx)
    for name, module in targets:
        if getattr(module, "is_cache_enabled", False):
            raise Skip(f"{name} already has a diffusers cache ({type(module._cache_config).__name__}); "
                       "one cache per denoiser")
    flags = HitFlags()
    planned = []
    for name, module in targets:  # every check of every denoiser before the first change
        watch = Watch(module, flags)
        planned.append((name, module, watch, *configure(name, module, watch)))
    for name, module, watch, config, facts in planned:
        step.on_undo(hook_snapshot(module))
        watch.attach()
        step.on_undo(watch.remove)
        step.on_undo(enable(module, method, config))
        details.setdefault("denoisers", {})[name] = {**facts, **(read(watch) or {})}
    watches = [p[2] for p in planned]

    def reset() -> None:
        for watch in watches:
            watch.reset()
        flags.read()

    front = all(callable(getattr(m, "enable_cache", None)) for _, m in targets)
    return Applied(details={"backend": f"diffusers.hooks.{method}",
                            "applied_with": "enable_cache" if front else f"apply_{method}", **details},
                   stats=flags.read, reset=reset, reconfigure=retune)
