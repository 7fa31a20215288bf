"""TeaCache declaration (no torch import). The cells proven by ``omni verify`` with the families'
published coefficients are claimed ``supported``; a calibration never adds a claim (its cells stay
``untested``, provable with ``omni verify --include-untested``)."""

from omni.sdk import ConfigKey, OptimizationSpec, Option, Stage, hookimpl, supported

from omni_plugin_teacache.facts import TRAITS

# Cells proven by `omni verify` on the tiny models (published coefficients).
VERIFIED = ("flux", "wan", "ltx", "qwenimage")


@hookimpl
def omni_register_optimizations():
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
                   max=10.0, per_request=True, faster="higher"),
            Option("interval", "int", 0, "force a full compute at least every N denoiser calls (0: never forced)",
                   min=0, per_request=True),
            Option("force_last", "bool", True, "always compute the last denoising step", per_request=True),
            Option("coefficients", "floats", None, "override the rescale polynomial (5 values, highest power first)"),
            Option("calibration", "path", None, "a calibration file from omni calibrate teacache (used even when "
                   "it was fitted on another model's random weights)"),
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
        trait_hints={"teacache:coefficients": "no TeaCache coefficients for this family: fit them with "
                                              "`omni calibrate teacache MODEL`"},
        traits=TRAITS,
        family_traits="omni_plugin_teacache.facts:family_traits",
        claims={f: supported("verified: omni verify (published coefficients)") for f in VERIFIED},
        exclusive_group="cache",
        order=10,
        verify_overrides={"rel_l1_thresh": 0.3},
        verify_generation={"num_inference_steps": 20},
    )


@hookimpl
def omni_register_commands(app):
    from omni_plugin_teacache.cli import register

    register(app)
