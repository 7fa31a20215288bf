"""Declarations only (no torch import)."""

import omni
from omni.specs import ConfigKey, OptimizationSpec, Option, Stage, supported

VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")


@omni.hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="layerwise_casting",
        stage=Stage.QUANTIZE,
        summary="store the denoiser's Linear/Conv weights in a low-precision dtype (fp8) and upcast each layer "
                "just before it computes (diffusers enable_layerwise_casting); cannot be undone",
        lossless=False,
        tolerance_psnr=35.0,  # measured on the tiny models and shapes: 40.5-59.7 dB
        impl="omni_plugin_layerwise_casting.impl:apply",
        options=(
            Option("storage_dtype", "dtype", "float8_e4m3fn", "dtype the weights are stored in"),
            Option("compute_dtype", "dtype", None, "dtype each layer computes in; default: the run's dtype"),
        ),
        config_keys=(
            ConfigKey("enable_layerwise_casting", enables=True),
            ConfigKey("layerwise_casting_storage_dtype", option="storage_dtype"),
            ConfigKey("layerwise_casting_compute_dtype", option="compute_dtype"),
        ),
        claims={f: supported("verified: omni verify (fp8 e4m3 storage, fp32 compute)") for f in VERIFIED},
        conflicts_with={"torchao": "layerwise casting re-casts the weights that torchao quantized; do not stack them"},
        reversible=False,
        order=80,
    )
