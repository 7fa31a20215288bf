"""The five caches' ``impl``s (the CACHE stage): each builds diffusers' config from the step options,
checks what it can before touching the pipeline, chooses its hit reader and says how per-request
options retune the installed hooks; :func:`.install.install` does the rest."""

from __future__ import annotations

import re

from omni.sdk import Applied, Skip, UsageError, denoisers

from omni_plugin_diffusers_cache.install import check_blocks, hook_names, install, timestep_source
from omni_plugin_diffusers_cache.watch import hooked, hooks_named


def _each_hook(ctx, hook_name: str):
    for _, module in denoisers(ctx):
        yield from hooks_named(module, hook_name)


def first_block_cache(ctx, step) -> Applied:
    from diffusers.hooks import FirstBlockCacheConfig

    opts = step.options
    names = hook_names("first_block_cache")

    def configure(name, module, watch):
        check_blocks(name, module)
        return FirstBlockCacheConfig(threshold=float(opts["threshold"])), {}

    def read(watch):
        watch.read_leader_state(names[0])
        return {"blocks": sum(len(hooked(watch.module, h)) for h in names)}

    def retune(options) -> None:
        for hook in _each_hook(ctx, names[0]):
            hook.threshold = float(options["threshold"])

    return install(ctx, step, "first_block_cache", configure, read,
                   {"threshold": float(opts["threshold"]), "hits": "leader block state (should_compute)"}, retune)


def _mag_ratios(ctx, opts) -> tuple[list[float], str]:
    """The ratios to use: the option, else what the family declares in ``extras["mag_cache"]``."""
    if opts.get("mag_ratios"):
        return [float(r) for r in opts["mag_ratios"]], "option mag_ratios"
    family = ctx.family.name
    declared = ctx.family.extras.get("mag_cache", {}).get("ratios")
    if declared is None:
        raise Skip(f"no MagCache magnitude ratios for {family}: the family declares none (extras['mag_cache']); "
                   "run once with mag_cache.calibrate=true and pass the reported ratios as mag_cache.mag_ratios")
    if isinstance(declared, str):
        from diffusers.hooks import mag_cache

        value = getattr(mag_cache, declared, None)
        if value is None:
            raise Skip(f"{family} declares MagCache ratios {declared}, which diffusers.hooks.mag_cache does not define")
        values = value.tolist() if hasattr(value, "tolist") else list(value)
        return [float(r) for r in values], f"diffusers.hooks.mag_cache.{declared} (declared by {family})"
    return [float(r) for r in declared], f"declared by {family}"


def mag_cache(ctx, step) -> Applied:
    import torch
    from diffusers.hooks import MagCacheConfig

    opts = step.options
    calibrate = bool(opts.get("calibrate"))
    if calibrate:
        ratios, source = None, "calibrating (no step is skipped)"
    else:
        ratios, source = _mag_ratios(ctx, opts)
    steps = opts.get("num_inference_steps") or ctx.generation.get("num_inference_steps")
    if not steps:
        raise Skip("MagCache interpolates its ratios to the step count, which is unknown here: "
                   "set mag_cache.num_inference_steps")
    # calibrating: one step more than the run, so diffusers' end-of-schedule branch (which prints the
    # ratios to stdout and clears them) never fires; omni reads them after every call instead
    config = MagCacheConfig(threshold=float(opts["threshold"]), max_skip_steps=int(opts["max_skip_steps"]),
                            retention_ratio=float(opts["retention_ratio"]),
                            num_inference_steps=int(steps) + (1 if calibrate else 0),
                            mag_ratios=None if calibrate else torch.tensor(ratios), calibrate=calibrate)
    leader = hook_names("mag_cache")[0]
    recorded: dict[str, list[float]] = {}

    def configure(name, module, watch):
        check_blocks(name, module)
        return config, {}

    def read(watch):
        watch.read_leader_state(leader)
        if calibrate:
            state_manager = hooks_named(watch.module, leader)[0].state_manager

            def record() -> None:
                name = state_manager._context.name if state_manager._context else "inference"
                recorded[name] = [round(float(r), 5) for r in state_manager.get_state().calibration_ratios]

            watch.after.append(record)

    def retune(options) -> None:  # the hooks read their config on every call
        config.threshold = float(options["threshold"])
        config.max_skip_steps = int(options["max_skip_steps"])
        config.retention_ratio = float(options["retention_ratio"])

    details = {"mag_ratios": source, "num_inference_steps": int(steps)}
    if calibrate:
        details["calibrated_mag_ratios"] = recorded  # filled during the run (per cache context)
    return install(ctx, step, "mag_cache", configure, read, details, retune)


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
    from diffusers.hooks import TaylorSeerCacheConfig

    opts = step.options
    hook = hook_names("taylorseer_cache")[0]

    def configure(name, module, watch):
        patterns = list(opts.get("cache_identifiers") or default_taylorseer_identifiers(ctx, module))
        if not opts["use_lite_mode"]:
            matched = [n for n, _ in module.named_modules() if any(re.fullmatch(p, n) for p in patterns)]
            if not matched:
                raise Skip(f"TaylorSeer identifiers {patterns} match no module of {name} "
                           f"({type(module).__name__}): pass taylorseer_cache.cache_identifiers")
        config = TaylorSeerCacheConfig(
            cache_interval=int(opts["cache_interval"]), disable_cache_before_step=int(opts["disable_cache_before_step"]),
            disable_cache_after_step=opts.get("disable_cache_after_step"), max_order=int(opts["max_order"]),
            taylor_factors_dtype=next(module.parameters()).dtype, use_lite_mode=bool(opts["use_lite_mode"]),
            cache_identifiers=None if opts["use_lite_mode"] else patterns)
        return config, {"identifiers": patterns}

    def read(watch):
        return {"hooked_modules": watch.count_executions(hook)}

    def retune(options) -> None:
        for h in _each_hook(ctx, hook):
            h.cache_interval = int(options["cache_interval"])
            h.disable_cache_before_step = int(options["disable_cache_before_step"])
            h.disable_cache_after_step = options.get("disable_cache_after_step")

    return install(ctx, step, "taylorseer_cache", configure, read,
                   {"hits": "a call is reused when any hooked module was predicted"}, retune)


def _window(options) -> tuple[int, int]:
    window = (int(options["timestep_skip_start"]), int(options["timestep_skip_end"]))
    if window[0] >= window[1]:
        raise UsageError(f"pyramid_attention_broadcast: empty timestep window {window}")
    return window


def pyramid_attention_broadcast(ctx, step) -> Applied:
    from diffusers.hooks import PyramidAttentionBroadcastConfig
    from diffusers.hooks._common import _ATTENTION_CLASSES

    opts = step.options
    hook = hook_names("pyramid_attention_broadcast")[0]
    try:
        window = _window(opts)
    except UsageError as exc:
        raise Skip(str(exc)) from None

    def configure(name, module, watch):
        ids = tuple(opts.get("spatial_attention_block_identifiers") or (
            ("attentions",) if _unet_attention(module) else tuple(ctx.family.facts.block_attrs or ("blocks",))))
        # the modules diffusers will hook as spatial self-attention (its own rule, checked before any change)
        matched = [n for n, m in module.named_modules() if isinstance(m, _ATTENTION_CLASSES)
                   and not getattr(m, "is_cross_attention", False) and any(re.search(i, n) for i in ids)]
        if not matched:
            raise Skip(f"PAB identifiers {list(ids)} match no attention module of {name}")
        return PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=int(opts["spatial_attention_block_skip_range"]),
            spatial_attention_timestep_skip_range=window, spatial_attention_block_identifiers=ids,
            current_timestep_callback=timestep_source(ctx, watch)), {"identifiers": list(ids)}

    def read(watch):
        count = watch.count_executions(hook)
        watch.per_context(hooks_named(watch.module, hook))
        return {"hooked_modules": count}

    def retune(options) -> None:
        new = _window(options)
        for h in _each_hook(ctx, hook):
            h.block_skip_range = int(options["spatial_attention_block_skip_range"])
            h.timestep_skip_range = new

    return install(ctx, step, "pyramid_attention_broadcast", configure, read,
                   {"timestep_window": list(window), "hits": "a call is reused when any attention module reused"},
                   retune)


def faster_cache(ctx, step) -> Applied:
    import math

    from diffusers.hooks import FasterCacheConfig
    from diffusers.hooks.faster_cache import _UNCOND_COND_INPUT_KWARGS_IDENTIFIERS as _UNCOND_KWARGS

    opts = step.options
    guidance = ctx.family.facts.guidance
    cfg_scale = float(ctx.generation.get("guidance_scale", 0.0) or 0.0)
    batched_cfg = guidance == "cfg" and cfg_scale > 1.0
    names = hook_names("faster_cache")
    weight = {"value": float(opts["attention_weight"])}  # read by diffusers on every call

    def configure(name, module, watch):
        timestep = timestep_source(ctx, watch)

        def guarded() -> float:
            # FasterCache reuses an empty cache (TypeError) when the first call is already inside the
            # window; the first call of every context is therefore reported as outside it
            if module._diffusers_hook.hooks[names[0]].state.iteration == 0:
                return math.inf
            return timestep()

        config = FasterCacheConfig(
            spatial_attention_block_skip_range=int(opts["spatial_attention_block_skip_range"]),
            spatial_attention_timestep_skip_range=(-1, int(opts["attention_timestep_skip_end"])),
            unconditional_batch_skip_range=int(opts["unconditional_batch_skip_range"]),
            unconditional_batch_timestep_skip_range=(-1, int(opts["unconditional_timestep_skip_end"])),
            spatial_attention_block_identifiers=tuple(rf"{re.escape(a)}\.\d+\.attn" for a in
                                                      (ctx.family.facts.block_attrs or ("blocks",))),
            tensor_format="BCFHW" if ctx.family.facts.modality == "video" else "BCHW",
            is_guidance_distilled=not batched_cfg,
            current_timestep_callback=guarded,
            attention_weight_callback=lambda _module: weight["value"],
            # SD3 also passes the pooled text embedding per branch; diffusers' list misses it
            _unconditional_conditional_input_kwargs_identifiers=[*_UNCOND_KWARGS, "pooled_projections"])
        return config, {"unconditional_branch_approximated": batched_cfg}

    def read(watch):
        if names[0] not in watch.module._diffusers_hook.hooks:
            raise RuntimeError("FasterCache installed no denoiser hook")
        watch.count_executions(names[1])
        attention_ran = watch.decide
        hook = watch.module._diffusers_hook.hooks[names[0]]
        watch.per_context([hook, *hooks_named(watch.module, names[1])])
        skipped_uncond = [False]

        def before() -> None:  # diffusers' own rule (hooks/faster_cache.py), evaluated before the call
            lo, hi = hook.unconditional_batch_timestep_skip_range
            it = hook.state.iteration
            skipped_uncond[0] = (it > 0 and not hook.is_guidance_distilled
                                 and lo < hook.current_timestep_callback() < hi
                                 and it % hook.unconditional_batch_skip_range != 0)

        watch.before.append(before)
        watch.decide = lambda: attention_ran() and not skipped_uncond[0]
        return {"hooked_modules": len(hooked(watch.module, names[1]))}

    def retune(options) -> None:
        for h in _each_hook(ctx, names[1]):
            h.block_skip_range = int(options["spatial_attention_block_skip_range"])
            h.timestep_skip_range = (-1, int(options["attention_timestep_skip_end"]))
        for h in _each_hook(ctx, names[0]):
            h.unconditional_batch_skip_range = int(options["unconditional_batch_skip_range"])
            h.unconditional_batch_timestep_skip_range = (-1, int(options["unconditional_timestep_skip_end"]))
        weight["value"] = float(options["attention_weight"])

    return install(ctx, step, "faster_cache", configure, read,
                   {"hits": "a call is reused when any attention module was approximated",
                    "first_call_guard": True}, retune)
