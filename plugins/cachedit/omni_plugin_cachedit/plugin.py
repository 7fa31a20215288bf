"""cache-dit declaration (no torch / diffusers / cache_dit import).

Defaults and the ``cache_config.*`` keys follow vLLM-Omni's cache-dit backend
(``cache_backend: cache_dit`` + ``cache_config: {Fn_compute_blocks: 1, ...}``); cache-dit's own
defaults differ (Fn 8, warmup 8).
"""

from omni.sdk import unsupported, ConfigKey, Needs, OptimizationSpec, Option, Stage, hookimpl, supported

# Cells proven by `omni verify --optimization cache_dit` on every tiny model of the family (tiny-flux and
# shapes, tiny-sd3, tiny-wan, tiny-ltx, tiny-qwenimage; 20 steps, residual_diff_threshold 0.5).
# UNet families (sd15, sdxl) lack the required traits and claim cache_dit unsupported themselves:
# cache-dit has no UNet adapter (StableDiffusion/StableDiffusionXL are not in supported_pipelines()).
VERIFIED = ("flux", "sd3", "wan", "ltx", "qwenimage")

MASK_POLICIES = ("none", "slow", "medium", "fast", "ultra")

_BACKEND = {"cache_backend": ("cache_dit",)}


def _vllm_key(name: str, option: str) -> ConfigKey:
    return ConfigKey(f"cache_config.{name}", option=option, requires=_BACKEND)


@hookimpl
def omni_register_optimizations():
    claims = {f: supported("verified: omni verify") for f in VERIFIED}
    # cache-dit patches the loaded pipeline's class; a pipeline another task builds from the same components
    # (omni's from_pipe) is not patched, creates no cache context ("Cache context not exist ... skip cache") and
    # reuses nothing (omni verify on tiny-flux i2i/inpaint/edit)
    claims.update({f"flux@{task}": unsupported(
        "the task's pipeline is built from the loaded one's components and is not patched by cache-dit: no cache "
        "context, nothing reused") for task in ("i2i", "inpaint", "edit")})
    yield OptimizationSpec(
        name="cache_dit",
        stage=Stage.CACHE,
        summary="cache-dit DBCache: run the first Fn blocks every step and reuse the cached residual of the "
                "rest while it barely changes (optional TaylorSeer calibration, SCM step masks)",
        lossless=False,
        tolerance_psnr=25.0,
        impl="omni_plugin_cachedit.impl:apply",
        options=(
            Option("fn_compute_blocks", "int", 1, "first blocks always computed; their residual decides reuse",
                   min=1),
            Option("bn_compute_blocks", "int", 0, "last blocks always computed (refine the reused residual)", min=0),
            Option("max_warmup_steps", "int", 4, "steps always computed at the start of the schedule", min=0,
                   per_request=True),
            Option("residual_diff_threshold", "float", 0.24,
                   "reuse while the relative change of the first blocks' residual stays under this", min=0.0,
                   max=10.0, per_request=True, faster="higher"),
            Option("max_cached_steps", "int", -1, "most reused steps per generation (-1: unlimited)", min=-1,
                   per_request=True),
            Option("max_continuous_cached_steps", "int", 3, "most consecutive reused steps (-1: unlimited)",
                   min=-1, per_request=True),
            Option("enable_taylorseer", "bool", False, "extrapolate reused residuals with a TaylorSeer calibrator"),
            Option("taylorseer_order", "int", 1, "TaylorSeer expansion order", min=1, max=4),
            Option("scm_steps_mask_policy", "choice", "none",
                   "SCM: predefined compute/cache step mask (slow/medium/fast/ultra = 18/15/11/8 of 28 computed)",
                   choices=MASK_POLICIES),
            Option("scm_steps_policy", "choice", "dynamic",
                   "SCM: dynamic (masked steps still check the residual) or static (masked steps always reuse)",
                   choices=("dynamic", "static")),
        ),
        config_keys=(
            ConfigKey("cache", when=("cache_dit",)),
            ConfigKey("cache_backend", when=("cache_dit",)),
            ConfigKey("enable_cache_dit", enables=True),
            _vllm_key("Fn_compute_blocks", "fn_compute_blocks"),
            _vllm_key("Bn_compute_blocks", "bn_compute_blocks"),
            _vllm_key("max_warmup_steps", "max_warmup_steps"),
            _vllm_key("residual_diff_threshold", "residual_diff_threshold"),
            _vllm_key("max_cached_steps", "max_cached_steps"),
            _vllm_key("max_continuous_cached_steps", "max_continuous_cached_steps"),
            _vllm_key("enable_taylorseer", "enable_taylorseer"),
            _vllm_key("taylorseer_order", "taylorseer_order"),
            _vllm_key("scm_steps_mask_policy", "scm_steps_mask_policy"),
            _vllm_key("scm_steps_policy", "scm_steps_policy"),
        ),
        requires_traits={"denoiser:dit", "blocks:list"},
        claims=claims,
        exclusive_group="cache",
        needs=Needs(packages=("cache-dit>=1.5",)),
        order=10,
        verify_overrides={"residual_diff_threshold": 0.5},
        verify_generation={"num_inference_steps": 20},
    )
