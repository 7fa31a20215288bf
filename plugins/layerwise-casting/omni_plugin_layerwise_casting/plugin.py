"""Declarations only (no torch import).

fp8 storage is lossy by design; the PSNR floor sits about 5 dB under the worst cell measured by
``omni verify`` on the tiny models (docs/verified-matrix.md). Random-weight tiny models are not a
quality benchmark.
"""

from omni.sdk import ConfigKey, OptimizationSpec, Option, Stage, hookimpl, supported

VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")
_TORCHAO = "torchao-quantized weights must not be layerwise-cast (do not stack)"


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="layerwise_casting",
        stage=Stage.QUANTIZE,
        summary="store the denoiser's Linear/Conv weights in a low-precision dtype (fp8) and upcast each layer "
                "just before it computes (diffusers enable_layerwise_casting); cannot be undone",
        lossless=False,
        tolerance_psnr=35.0,
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
        conflicts_with={
            **{n: _TORCHAO for n in ("torchao", "torchao_load", "torchao_fp8_dynamic", "torchao_int4_weight_only")},
            "gguf": "GGUF weights are already stored quantized; layerwise casting would re-cast them",
        },
        order=80,
    )
