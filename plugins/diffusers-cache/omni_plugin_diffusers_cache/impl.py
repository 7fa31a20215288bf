"""Applying diffusers' caches (the CACHE stage). Each function checks everything it can before
touching the pipeline (raising :class:`omni.Skip` with the reason), applies the diffusers
function to every denoiser, and removes what it installed if anything fails half-way."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from omni.runtime.context import Applied, Skip

HOOKS = {
    "first_block_cache": ("_FBC_LEADER_BLOCK_HOOK", "_FBC_BLOCK_HOOK"),
    "mag_cache": ("_MAG_CACHE_LEADER_BLOCK_HOOK", "_MAG_CACHE_BLOCK_HOOK"),
    "taylorseer_cache": ("_TAYLORSEER_CACHE_HOOK",),
    "pyramid_attention_broadcast": ("_PYRAMID_ATTENTION_BROADCAST_HOOK",),
    "faster_cache": ("_FASTER_CACHE_DENOISER_HOOK", "_FASTER_CACHE_BLOCK_HOOK"),
}


def hook_names(method: str) -> tuple[str, ...]:
    """diffusers' hook names for ``method``, read from ``diffusers.hooks.<method>`` (fails loudly if renamed)."""
    import importlib

    module = importlib.import_module(f"diffusers.hooks.{method}")
    return tuple(getattr(module, const) for const in HOOKS[method])


def _denoisers(ctx) -> list[tuple[str, object]]:
    targets = ctx.denoisers()
    if not targets:
        raise Skip("the pipeline has no denoiser component")
    return targets


def _check_blocks(name: str, module) -> None:
    """Block-level caches: the block lists diffusers will find, all of registered classes."""
    import torch
    from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS
    from diffusers.hooks._helpers import TransformerBlockRegistry

    blocks = [b for child, lst in module.named_children() if child in _ALL_TRANSFORMER_BLOCK_IDENTIFIERS
              and isinstance(lst, torch.nn.ModuleList) for b in lst]
    if len(blocks) < 2:
        raise Skip(f"{name} ({type(module).__name__}) has {len(blocks)} transformer blocks in a list diffusers "
                   f"looks for ({', '.join(sorted(_ALL_TRANSFORMER_BLOCK_IDENTIFIERS))}); a block cache needs two")
    for cls in {type(b) for b in blocks}:
        try:
            TransformerBlockRegistry.get(cls)
        except ValueError:
            raise Skip(f"block class {cls.__name__} is not in diffusers' TransformerBlockRegistry (its output layout "
                       "is unknown): register it with TransformerBlockRegistry.register(...) first") from None


def _timestep_source(ctx, watch) -> Callable[[], float]:
    """The current timestep on the 0-1000 scale: the pipeline's ``current_timestep`` where it keeps
    one (Flux/Wan/LTX/Qwen), else the ``timestep`` the denoiser was called with (SD/SDXL/SD3)."""
    pipe = ctx.pipe
    from_pipe = isinstance(getattr(type(pipe), "current_timestep", None), property)

    def current() -> float:
        t = pipe.current_timestep if from_pipe else watch.timestep
        if t is None:  # unknown: outside every window, so nothing is skipped on a guess
            return math.inf
        return float(t.flatten()[0]) if hasattr(t, "flatten") else float(t)

    return current


def refresh_registries(module) -> None:
    """diffusers 0.42 caches each registry's list of child registries on first use (the first
    ``cache_context``); the functional ``apply_*`` calls do not invalidate it, so on a pipeline
    that already ran, ``cache_context`` would never reach the new hooks ("No cache context is set")."""
    from diffusers.hooks import HookRegistry

    HookRegistry.check_if_exists_or_initialize(module).invalidate_child_registries_cache()


def _install(ctx, method: str, apply_one: Callable, read: Callable, details: dict) -> Applied:
    """Apply ``apply_one(name, module, watch)`` to every denoiser with a :class:`Watch`; undo on failure."""
    from omni_plugin_diffusers_cache.watch import Watch

    names = hook_names(method)
    targets = _denoisers(ctx)
    flags: list[str] = []
    watches: list = []
    try:
        for name, module in targets:
            watch = Watch(module, flags)
            watches.append(watch)
            details.setdefault("denoisers", {})[name] = apply_one(name, module, watch) or {}
            refresh_registries(module)
            read(watch)
    except Exception:
        for watch in reversed(watches):
            watch.remove(names)
        raise

    def stats() -> list[str]:
        out = list(flags)
        flags.clear()
        return out

    def undo() -> None:
        for watch in reversed(watches):
            watch.remove(names)

    return Applied(details={"backend": f"diffusers.hooks.{method}", **details}, undo=undo, stats=stats)


# ---------------------------------------------------------------------------------- methods
def first_block_cache(ctx, step) -> Applied:
    from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache

    opts = step.options
    for name, module in _denoisers(ctx):
        _check_blocks(name, module)
    leader = hook_names("first_block_cache")[0]

    def one(name, module, watch):
        from omni_plugin_diffusers_cache.watch import hooked

        apply_first_block_cache(module, FirstBlockCacheConfig(threshold=float(opts["threshold"])))
        return {"blocks": sum(len(hooked(module, h)) for h in hook_names("first_block_cache"))}

    return _install(ctx, "first_block_cache", one, lambda w: w.read_leader_state(leader),
                    {"threshold": float(opts["threshold"]), "hits": "leader block state (should_compute)"})


def mag_cache(ctx, step) -> Applied:
    import torch
    from diffusers.hooks import MagCacheConfig, apply_mag_cache

    opts = step.options
    calibrate = bool(opts.get("calibrate"))
    ratios = opts.get("mag_ratios")
    source = "option mag_ratios"
    if calibrate:
        ratios, source = None, "calibrating (no step is skipped)"
    elif not ratios:
        if ctx.family.name != "flux":
            raise Skip(f"no MagCache magnitude ratios for {ctx.family.name}: diffusers 0.42 ships them only for Flux; "
                       "run once with mag_cache.calibrate=true and pass the reported ratios as mag_cache.mag_ratios")
        from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS

        ratios, source = FLUX_MAG_RATIOS.tolist(), "diffusers FLUX_MAG_RATIOS"
    steps = opts.get("num_inference_steps") or ctx.generation.get("num_inference_steps")
    if not steps:
        raise Skip("MagCache interpolates its ratios to the step count, which is unknown here: "
                   "set mag_cache.num_inference_steps")
    for name, module in _denoisers(ctx):
        _check_blocks(name, module)
    # calibrating: one step more than the run, so diffusers' end-of-schedule branch (which prints the
    # ratios to stdout and clears them) never fires; omni reads them after every call instead
    config = MagCacheConfig(threshold=float(opts["threshold"]), max_skip_steps=int(opts["max_skip_steps"]),
                            retention_ratio=float(opts["retention_ratio"]),
                            num_inference_steps=int(steps) + (1 if calibrate else 0),
                            mag_ratios=None if calibrate else torch.tensor([float(r) for r in ratios]),
                            calibrate=calibrate)
    leader = hook_names("mag_cache")[0]
    recorded: dict[str, list[float]] = {}

    def read(watch) -> None:
        watch.read_leader_state(leader)
        if calibrate:
            from omni_plugin_diffusers_cache.watch import hooked

            state_manager = hooked(watch.module, leader)[0][1]._diffusers_hook.hooks[leader].state_manager

            def record() -> None:
                name = state_manager._context.name if state_manager._context else "inference"
                recorded[name] = [round(float(r), 5) for r in state_manager.get_state().calibration_ratios]

            watch.after.append(record)

    details = {"mag_ratios": source, "num_inference_steps": int(steps)}
    if calibrate:
        details["calibrated_mag_ratios"] = recorded  # filled during the run (per cache context)
    return _install(ctx, "mag_cache", lambda n, m, w: apply_mag_cache(m, config), read, details)


def _unet_attention(module) -> bool:
    return type(module).__name__ == "UNet2DConditionModel" or hasattr(module, "down_blocks")


def default_taylorseer_identifiers(ctx, module) -> list[str]:
    if _unet_attention(module):
        return [r"(down_blocks|up_blocks)\.\d+\.attentions\.\d+\.transformer_blocks\.\d+\.attn\d",
                r"mid_block\.attentions\.\d+\.transformer_blocks\.\d+\.attn\d"]
    attrs = ctx.family.facts.block_attrs or ("blocks", "transformer_blocks", "single_transformer_blocks")
    # diffusers' defaults ("^blocks.*attn") must fullmatch "blocks.0.attn1" and hook nothing on Wan
    return [rf"{re.escape(a)}\.\d+\.attn\d*" for a in attrs]


def taylorseer_cache(ctx, step) -> Applied:
    from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache

    opts = step.options
    plan = {}
    for name, module in _denoisers(ctx):
        patterns = list(opts.get("cache_identifiers") or default_taylorseer_identifiers(ctx, module))
        if not opts["use_lite_mode"]:
            matched = [n for n, _ in module.named_modules() if any(re.fullmatch(p, n) for p in patterns)]
            if not matched:
                raise Skip(f"TaylorSeer identifiers {patterns} match no module of {name} "
                           f"({type(module).__name__}): pass taylorseer_cache.cache_identifiers")
        plan[name] = patterns
    hook = hook_names("taylorseer_cache")[0]

    def one(name, module, watch):
        from omni_plugin_diffusers_cache.watch import hooked

        dtype = next(module.parameters()).dtype
        apply_taylorseer_cache(module, TaylorSeerCacheConfig(
            cache_interval=int(opts["cache_interval"]), disable_cache_before_step=int(opts["disable_cache_before_step"]),
            disable_cache_after_step=opts.get("disable_cache_after_step"), max_order=int(opts["max_order"]),
            taylor_factors_dtype=dtype, use_lite_mode=bool(opts["use_lite_mode"]),
            cache_identifiers=None if opts["use_lite_mode"] else plan[name]))
        return {"identifiers": plan[name], "hooked_modules": len(hooked(module, hook))}

    return _install(ctx, "taylorseer_cache", one, lambda w: w.count_executions(hook),
                    {"hits": "a call is reused when any hooked module was predicted"})


def pyramid_attention_broadcast(ctx, step) -> Applied:
    from diffusers.hooks import PyramidAttentionBroadcastConfig, apply_pyramid_attention_broadcast

    opts = step.options
    hook = hook_names("pyramid_attention_broadcast")[0]
    window = (int(opts["timestep_skip_start"]), int(opts["timestep_skip_end"]))
    if window[0] >= window[1]:
        raise Skip(f"empty timestep window {window}")

    def one(name, module, watch):
        from omni_plugin_diffusers_cache.watch import hooked

        ids = opts.get("spatial_attention_block_identifiers") or (
            ("attentions",) if _unet_attention(module) else tuple(ctx.family.facts.block_attrs or ("blocks",)))
        apply_pyramid_attention_broadcast(module, PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=int(opts["spatial_attention_block_skip_range"]),
            spatial_attention_timestep_skip_range=window, spatial_attention_block_identifiers=tuple(ids),
            current_timestep_callback=_timestep_source(ctx, watch)))
        count = len(hooked(module, hook))
        if not count:
            raise Skip(f"PAB identifiers {list(ids)} match no attention module of {name}")
        return {"identifiers": list(ids), "hooked_modules": count}

    def read(watch) -> None:
        from omni_plugin_diffusers_cache.watch import hooked

        watch.count_executions(hook)
        watch.per_context([m._diffusers_hook.hooks[hook] for _, m in hooked(watch.module, hook)])

    return _install(ctx, "pyramid_attention_broadcast", one, read,
                    {"timestep_window": list(window), "hits": "a call is reused when any attention module reused"})


def faster_cache(ctx, step) -> Applied:
    from diffusers.hooks import FasterCacheConfig, apply_faster_cache
    from diffusers.hooks.faster_cache import _UNCOND_COND_INPUT_KWARGS_IDENTIFIERS as _UNCOND_KWARGS

    opts = step.options
    guidance = ctx.family.facts.guidance
    cfg_scale = float(ctx.generation.get("guidance_scale", 0.0) or 0.0)
    batched_cfg = guidance == "cfg" and cfg_scale > 1.0
    names = hook_names("faster_cache")
    weight = float(opts["attention_weight"])

    def one(name, module, watch):
        from omni_plugin_diffusers_cache.watch import hooked

        timestep = _timestep_source(ctx, watch)

        def guarded() -> float:
            # FasterCache reuses an empty cache (TypeError) when the first call is already inside the
            # window; the first call of every context is therefore reported as outside it
            if module._diffusers_hook.hooks[names[0]].state.iteration == 0:
                return math.inf
            return timestep()

        end = int(opts["attention_timestep_skip_end"])
        uend = int(opts["unconditional_timestep_skip_end"])
        apply_faster_cache(module, FasterCacheConfig(
            spatial_attention_block_skip_range=int(opts["spatial_attention_block_skip_range"]),
            spatial_attention_timestep_skip_range=(-1, end),
            unconditional_batch_skip_range=int(opts["unconditional_batch_skip_range"]),
            unconditional_batch_timestep_skip_range=(-1, uend),
            spatial_attention_block_identifiers=tuple(rf"{re.escape(a)}\.\d+\.attn" for a in
                                                      (ctx.family.facts.block_attrs or ("blocks",))),
            tensor_format="BCFHW" if ctx.family.facts.modality == "video" else "BCHW",
            is_guidance_distilled=not batched_cfg,
            current_timestep_callback=guarded,
            attention_weight_callback=lambda _module: weight,
            # SD3 also passes the pooled text embedding per branch; diffusers' list misses it
            _unconditional_conditional_input_kwargs_identifiers=[*_UNCOND_KWARGS, "pooled_projections"]))
        if names[0] not in module._diffusers_hook.hooks:
            raise RuntimeError("FasterCache installed no denoiser hook")
        return {"hooked_modules": len(hooked(module, names[1])), "unconditional_branch_approximated": batched_cfg}

    def read(watch) -> None:
        from omni_plugin_diffusers_cache.watch import hooked

        watch.count_executions(names[1])
        attention_ran = watch.decide
        hook = watch.module._diffusers_hook.hooks[names[0]]
        watch.per_context([hook, *(m._diffusers_hook.hooks[names[1]] for _, m in hooked(watch.module, names[1]))])
        skipped_uncond = [False]

        def before() -> None:  # diffusers' own rule (hooks/faster_cache.py), evaluated before the call
            lo, hi = hook.unconditional_batch_timestep_skip_range
            it = hook.state.iteration
            skipped_uncond[0] = (it > 0 and not hook.is_guidance_distilled
                                 and lo < hook.current_timestep_callback() < hi
                                 and it % hook.unconditional_batch_skip_range != 0)

        watch.before.append(before)
        watch.decide = lambda: attention_ran() and not skipped_uncond[0]

    return _install(ctx, "faster_cache", one, read,
                    {"hits": "a call is reused when any attention module was approximated",
                     "first_call_guard": True})
