"""Declarations of diffusers' five step caches (no torch import). All are in exclusive group
``cache`` with TeaCache and cache-dit: one cache per pipeline (diffusers' own ``enable_cache``
refuses a second one, and two caches would fight over the same blocks).

Family-specific failures (FBC on SD3 and UNets, FasterCache on Wan/LTX) are declared by the
families themselves; the cells below are the ones ``omni verify`` proved on the tiny models.
"""

from omni.sdk import ConfigKey, OptimizationSpec, Option, Stage, hookimpl, supported

from omni_plugin_diffusers_cache.facts import MAG_TRAITS

# Cells proven by `omni verify` on the tiny models (docs/verified-matrix.md).
VERIFIED = {
    "first_block_cache": ("flux", "wan", "ltx", "qwenimage"),
    "taylorseer_cache": ("flux", "wan", "ltx", "qwenimage", "sd3", "sd15", "sdxl"),
    "mag_cache": ("flux",),
    "pyramid_attention_broadcast": ("flux", "wan", "ltx", "qwenimage", "sd3", "sd15", "sdxl"),
    "faster_cache": ("flux", "sd3", "qwenimage"),
}
_VERIFY = {"num_inference_steps": 20}


def _claims(name: str) -> dict:
    return {f: supported("verified: omni verify") for f in VERIFIED[name]}


def _when(*values: str) -> ConfigKey:
    return ConfigKey("cache", when=values)


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="first_block_cache",
        stage=Stage.CACHE,
        summary="diffusers FirstBlockCache: run the first block, skip the rest of the stack while its residual "
                "barely changes (reusing the stack's cached residual)",
        lossless=False,
        impl="omni_plugin_diffusers_cache.impl:first_block_cache",
        options=(Option("threshold", "float", 0.05, "relative change of the first block's residual under which "
                        "the other blocks are skipped", min=0.0, max=10.0, per_request=True, faster="higher"),),
        config_keys=(_when("first_block_cache", "fbc"), ConfigKey("enable_first_block_cache", enables=True),
                     ConfigKey("cache_backend", when=("first_block_cache", "fbc")),
                     ConfigKey("cache_config.fbc_threshold", option="threshold",
                               requires={"cache_backend": ("first_block_cache", "fbc")})),
        requires_traits={"denoiser:dit", "blocks:list"},
        claims=_claims("first_block_cache"),
        exclusive_group="cache",
        order=10,
        tolerance_psnr=25.0,
        verify_overrides={"threshold": 0.4},
        verify_generation=_VERIFY,
    )
    yield OptimizationSpec(
        name="taylorseer_cache",
        stage=Stage.CACHE,
        summary="diffusers TaylorSeer: compute the attention modules every few steps, predict them in between "
                "from a Taylor expansion of their past outputs",
        lossless=False,
        impl="omni_plugin_diffusers_cache.impl:taylorseer_cache",
        options=(
            Option("cache_interval", "int", 5, "compute every N steps after the warm-up", min=1, per_request=True,
                   faster="higher"),
            Option("disable_cache_before_step", "int", 3, "always compute the first N steps", min=0,
                   per_request=True),
            Option("disable_cache_after_step", "int", None, "always compute from this step on (none: never)",
                   min=0, per_request=True),
            Option("max_order", "int", 1, "order of the Taylor expansion", min=0, max=4),
            Option("use_lite_mode", "bool", False, "predict only proj_out (diffusers' lite variant)"),
            Option("cache_identifiers", "strs", None, "module-name regexes (re.fullmatch) to hook; default: the "
                   "attention modules of the family's block lists"),
        ),
        config_keys=(_when("taylorseer_cache", "taylorseer"), ConfigKey("enable_taylorseer_cache", enables=True),
                     ConfigKey("cache_backend", when=("taylorseer_cache", "taylorseer"))),
        claims=_claims("taylorseer_cache"),
        exclusive_group="cache",
        order=10,
        tolerance_psnr=25.0,
        verify_overrides={"cache_interval": 2, "disable_cache_before_step": 2},
        verify_generation=_VERIFY,
    )
    yield OptimizationSpec(
        name="mag_cache",
        stage=Stage.CACHE,
        summary="diffusers MagCache: skip the block stack while the accumulated residual-magnitude ratio error "
                "stays under a budget (needs per-model magnitude ratios: declared by the family, passed, or "
                "calibrated)",
        lossless=False,
        impl="omni_plugin_diffusers_cache.impl:mag_cache",
        options=(
            Option("threshold", "float", 0.06, "accumulated error budget", min=0.0, max=10.0, per_request=True,
                   faster="higher"),
            Option("max_skip_steps", "int", 3, "most consecutive skipped steps", min=1, per_request=True),
            Option("retention_ratio", "float", 0.2, "fraction of the first steps never skipped", min=0.0, max=1.0,
                   per_request=True),
            Option("mag_ratios", "floats", None, "magnitude ratios of this model (default: the ratios the family "
                   "declares in extras['mag_cache'])"),
            Option("num_inference_steps", "int", None, "step count the ratios are interpolated to (default: the "
                   "run's num_inference_steps)", min=1),
            Option("calibrate", "bool", False, "skip nothing and record this model's magnitude ratios in the report "
                   "(details.calibrated_mag_ratios), to pass back as mag_ratios"),
        ),
        config_keys=(_when("mag_cache", "magcache"), ConfigKey("enable_mag_cache", enables=True),
                     ConfigKey("cache_backend", when=("mag_cache",)),
                     ConfigKey("cache_config.mag_threshold", option="threshold",
                               requires={"cache_backend": ("mag_cache",)}),
                     ConfigKey("cache_config.mag_max_skip_steps", option="max_skip_steps",
                               requires={"cache_backend": ("mag_cache",)}),
                     ConfigKey("cache_config.mag_retention_ratio", option="retention_ratio",
                               requires={"cache_backend": ("mag_cache",)}),
                     ConfigKey("cache_config.mag_ratios", option="mag_ratios",
                               requires={"cache_backend": ("mag_cache",)}),
                     ConfigKey("cache_config.mag_calibrate", option="calibrate",
                               requires={"cache_backend": ("mag_cache",)})),
        requires_traits={"denoiser:dit", "blocks:list"},
        traits=MAG_TRAITS,
        family_traits="omni_plugin_diffusers_cache.facts:mag_cache_traits",
        claims=_claims("mag_cache"),
        exclusive_group="cache",
        order=10,
        tolerance_psnr=25.0,
        verify_overrides={"threshold": 0.5, "retention_ratio": 0.1},
        verify_generation=_VERIFY,
    )
    yield OptimizationSpec(
        name="pyramid_attention_broadcast",
        stage=Stage.CACHE,
        summary="diffusers Pyramid Attention Broadcast: inside a timestep window, reuse each attention module's "
                "previous output for N-1 of every N calls",
        lossless=False,
        impl="omni_plugin_diffusers_cache.impl:pyramid_attention_broadcast",
        options=(
            Option("spatial_attention_block_skip_range", "int", 2, "compute one call in N", min=1,
                   per_request=True, faster="higher"),
            Option("timestep_skip_start", "int", 100, "window start (timesteps on the 0-1000 scale)", min=-1,
                   per_request=True),
            Option("timestep_skip_end", "int", 800, "window end", min=0, per_request=True),
            Option("spatial_attention_block_identifiers", "strs", None, "module-name regexes (re.search); "
                   "default: the family's block lists (DiT) or 'attentions' (UNet)"),
        ),
        config_keys=(_when("pyramid_attention_broadcast", "pab"), ConfigKey("enable_pab", enables=True),
                     ConfigKey("cache_backend", when=("pyramid_attention_broadcast", "pab"))),
        claims=_claims("pyramid_attention_broadcast"),
        exclusive_group="cache",
        order=10,
        tolerance_psnr=20.0,
        verify_overrides={"timestep_skip_start": -1, "timestep_skip_end": 1001},
        verify_generation=_VERIFY,
    )
    yield OptimizationSpec(
        name="faster_cache",
        stage=Stage.CACHE,
        summary="diffusers FasterCache: approximate attention outputs from the last two computed ones and, with "
                "batched CFG, the unconditional branch from the conditional one (experimental upstream)",
        lossless=False,
        impl="omni_plugin_diffusers_cache.impl:faster_cache",
        options=(
            Option("spatial_attention_block_skip_range", "int", 2, "compute attention one call in N", min=1,
                   per_request=True, faster="higher"),
            Option("attention_timestep_skip_end", "int", 681, "approximate attention below this timestep", min=0,
                   per_request=True),
            Option("unconditional_batch_skip_range", "int", 5, "compute the unconditional branch one call in N",
                   min=1, per_request=True),
            Option("unconditional_timestep_skip_end", "int", 641, "approximate the unconditional branch below "
                   "this timestep", min=0, per_request=True),
            Option("attention_weight", "float", 0.3, "weight of the attention extrapolation", min=0.0, max=1.0,
                   per_request=True),
        ),
        config_keys=(_when("faster_cache", "fastercache"), ConfigKey("enable_faster_cache", enables=True),
                     ConfigKey("cache_backend", when=("faster_cache", "fastercache"))),
        requires_traits={"denoiser:dit", "blocks:list"},
        claims=_claims("faster_cache"),
        exclusive_group="cache",
        order=10,
        tolerance_psnr=20.0,
        verify_overrides={"attention_timestep_skip_end": 1001, "unconditional_timestep_skip_end": 1001},
        verify_generation=_VERIFY,
    )
