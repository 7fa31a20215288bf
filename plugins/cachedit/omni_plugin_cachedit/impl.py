"""CACHE stage: omni delegates to ``cache_dit.enable_cache(pipe, cache_config=DBCacheConfig(...))``.

The pipeline object (not the transformer) is passed: cache-dit's adapters are registered per
pipeline class (``enable_cache(SD3Transformer2DModel)`` alone is refused, the
``StableDiffusion3Pipeline`` works), and in pipeline mode cache-dit itself resets its cache
contexts at the start of every pipeline call, so two calls with the same seed give the same output
and the same hit pattern. See :mod:`.session` for how the class-level patch is contained and
refreshed per call, and :mod:`.counters` for the hit flags.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from omni.sdk import Applied, Skip, denoisers


def _quiet_logging() -> None:
    """cache-dit logs several INFO lines per enable (adapter, patch functor, context config) to
    stdout; keep WARNING and above. The env default only matters before cache_dit is imported."""
    os.environ.setdefault("CACHE_DIT_LOG_LEVEL", "warning")
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("cache_dit", "CACHE_DIT")):
            logging.getLogger(name).setLevel(max(logging.getLogger(name).level, logging.WARNING))


@contextlib.contextmanager
def _silenced():
    """cache-dit warns on expected events (``disable_cache`` always logs a WARNING, the pattern check
    is skipped when diffusers hooks are present); silence it around omni's own enable/disable."""
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
               if n.startswith(("cache_dit", "CACHE_DIT"))]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _mask_fn(cache_dit, policy: str):
    """``steps -> mask`` for an SCM policy (``None`` when SCM is off); cache-dit asserts on step
    counts it has no predefined mask for (e.g. 5 or 7), which becomes a ValueError here."""
    if policy in (None, "none"):  # vLLM-Omni writes scm_steps_mask_policy: None for "off"
        return lambda steps: None

    def mask(steps: int) -> list[int]:
        try:
            return cache_dit.steps_mask(mask_policy=policy, total_steps=steps)
        except (AssertionError, ValueError) as exc:
            raise ValueError(f"cache-dit SCM policy {policy!r} has no step mask for {steps} steps: {exc}") from None

    return mask


def build_configs(cache_dit, opts: dict[str, Any], steps: int | None):
    """(DBCacheConfig, calibrator config or None, mask function) from the step options."""
    mask = _mask_fn(cache_dit, opts["scm_steps_mask_policy"])
    cache_config = cache_dit.DBCacheConfig(
        Fn_compute_blocks=int(opts["fn_compute_blocks"]),
        Bn_compute_blocks=int(opts["bn_compute_blocks"]),
        max_warmup_steps=int(opts["max_warmup_steps"]),
        residual_diff_threshold=float(opts["residual_diff_threshold"]),
        max_cached_steps=int(opts["max_cached_steps"]),
        max_continuous_cached_steps=int(opts["max_continuous_cached_steps"]),
        num_inference_steps=steps,
        steps_computation_mask=mask(steps) if steps is not None else None,
        steps_computation_policy=opts["scm_steps_policy"],
    )
    calibrator = None
    if opts["enable_taylorseer"]:
        calibrator = cache_dit.TaylorSeerCalibratorConfig(taylorseer_order=int(opts["taylorseer_order"]))
    return cache_config, calibrator, mask


# options the per-context configs carry into every pipeline call (cache-dit rebuilds its contexts from
# them at the start of each call), so a request can change them without a reload
PER_REQUEST = {"residual_diff_threshold": float, "max_warmup_steps": int, "max_cached_steps": int,
               "max_continuous_cached_steps": int}


def apply(ctx, step) -> Applied:
    opts = step.options
    targets = denoisers(ctx)
    steps = ctx.generation.get("num_inference_steps")
    steps = int(steps) if steps is not None else None
    if opts["scm_steps_mask_policy"] not in (None, "none") and steps is None:
        raise Skip("cache-dit SCM (scm_steps_mask_policy) needs the step count, which is unknown before the "
                   "pipeline call here (omni.optimize on a user pipeline); use omni.run or drop the SCM policy")
    _quiet_logging()
    import cache_dit

    _quiet_logging()
    if not cache_dit.BlockAdapterRegister.is_supported(ctx.pipe):
        raise Skip(f"cache-dit {cache_dit.__version__} has no adapter for {type(ctx.pipe).__name__}")
    try:
        cache_config, calibrator, mask = build_configs(cache_dit, opts, steps)
    except ValueError as exc:
        raise Skip(str(exc)) from None

    from omni_plugin_cachedit.counters import HitReader
    from omni_plugin_cachedit.session import context_configs, install_call_refresh, isolate_class, snapshot_modules

    modules = [m for _, m in targets]
    step.on_undo(snapshot_modules(modules))
    step.on_undo(isolate_class(ctx.pipe))

    def disable() -> None:
        with _silenced():
            cache_dit.disable_cache(ctx.pipe)

    with _silenced():
        cache_dit.enable_cache(ctx.pipe, cache_config=cache_config, calibrator_config=calibrator)
    step.on_undo(disable)
    configs = context_configs(ctx.pipe, modules)
    install_call_refresh(ctx.pipe, configs, mask)
    reader = HitReader(ctx.pipe, modules)

    def reconfigure(options: dict[str, Any]) -> None:
        for config in configs:
            for name, kind in PER_REQUEST.items():
                setattr(config, name, kind(options[name]))

    details = {
        "backend": f"cache-dit {cache_dit.__version__}",
        "config": cache_config.strify(),
        "calibrator": (f"TaylorSeer order {calibrator.taylorseer_order} ({calibrator.strify()})"
                       if calibrator is not None else None),
        "steps_computation_mask": cache_config.steps_computation_mask,
        "denoisers": [name for name, _ in targets],
        "block_lists": [n.rsplit("_", 1)[0] for m in modules for n in (getattr(m, "_context_names", None) or [])],
    }
    return Applied(details=details, stats=reader, reset=reader.reset, reconfigure=reconfigure)
