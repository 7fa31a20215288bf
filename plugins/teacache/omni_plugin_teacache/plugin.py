"""TeaCache declaration (no torch import). Calibrated families (``omni calibrate teacache``) get an
explicit supported claim that cites the calibration file."""

import omni
from omni.specs import ConfigKey, OptimizationSpec, Option, Stage, supported

from omni_plugin_teacache import store

# Cells proven by `omni verify` on the tiny models (published coefficients).
VERIFIED = ("flux", "wan", "ltx", "qwenimage")

PROBES = ("flux-norm1", "wan-time-modulation", "ltx-norm1", "qwen-img-mod", "block0-input")


@omni.hookimpl
def omni_register_optimizations():
    claims = {f: supported("verified: omni verify (published coefficients)") for f in VERIFIED}
    for family, data in store.calibrated().items():
        claims[family] = supported(f"calibrated by omni calibrate teacache ({data['path']})")
    yield OptimizationSpec(
        name="teacache",
        stage=Stage.CACHE,
        summary="skip the whole block stack while the rescaled change of the first block's modulated input "
                "stays under a budget, reusing the cached residual (TeaCache)",
        lossless=False,
        tolerance_psnr=25.0,
        impl="omni_plugin_teacache.impl:apply",
        options=(
            Option("rel_l1_thresh", "float", 0.2, "error budget on the accumulated rescaled probe change", min=0.0,
                   max=10.0),
            Option("interval", "int", 0, "force a full compute at least every N denoiser calls (0: never forced)",
                   min=0),
            Option("force_last", "bool", True, "always compute the last denoising step"),
            Option("coefficients", "floats", None, "override the rescale polynomial (5 values, highest power first)"),
            Option("calibration", "path", None, "a calibration file from omni calibrate teacache"),
        ),
        config_keys=(
            ConfigKey("cache", when=("tea_cache", "teacache")),
            ConfigKey("enable_tea_cache", enables=True),
            ConfigKey("tea_cache_ratio", option="rel_l1_thresh"),
            ConfigKey("tea_cache_interval", option="interval"),
            ConfigKey("cache_backend", when=("tea_cache", "teacache")),
            ConfigKey("cache_config.rel_l1_thresh", option="rel_l1_thresh",
                      requires={"cache_backend": ("tea_cache", "teacache")}),
        ),
        requires_traits={"denoiser:dit", "blocks:list", "teacache:coefficients"},
        trait_hints={"teacache:coefficients": "no published TeaCache coefficients for this family; "
                                              "run `omni calibrate teacache MODEL` to fit them"},
        claims=claims,
        exclusive_group="cache",
        order=10,
        verify_overrides={"rel_l1_thresh": 0.3},
        verify_generation={"num_inference_steps": 20},
    )


@omni.hookimpl
def omni_register_commands(app):
    from omni_plugin_teacache.cli import register

    register(app)
