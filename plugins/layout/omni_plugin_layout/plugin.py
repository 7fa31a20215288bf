"""Declarations only (no torch import).

* fuse_qkv: pipeline-level ``fuse_qkv_projections`` exists only on SD pipelines, so the plugin calls
  the denoiser's own method. QUANTIZE stage, order 10: before torchao (order 50), which cannot
  concatenate quantized weights.
* channels_last: PLACE stage, order 5: the layout is set before offloading hooks capture the weights
  (an offload would otherwise restore contiguous copies). DiT families lack the ``conv-heavy`` trait.

Verified cells and their measured drift: docs/verified-matrix.md.
"""

from omni.sdk import ConfigKey, OptimizationSpec, Stage, hookimpl, supported

CHANNELS_LAST_VERIFIED = ("sd15", "sdxl")
FUSE_QKV_VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="fuse_qkv",
        stage=Stage.QUANTIZE,
        summary="fuse the attention Q/K/V projections into one matmul (component fuse_qkv_projections()); "
                "runs before torchao, which cannot concatenate quantized weights",
        lossless=True,
        impl="omni_plugin_layout.impl:fuse_qkv",
        config_keys=(ConfigKey("fuse_qkv", enables=True),),
        requires_traits={"qkv-fusion"},
        claims={f: supported("verified: omni verify (bit-exact, CPU)") for f in FUSE_QKV_VERIFIED},
        conflicts_with={"gguf": "diffusers cannot fuse GGUF-quantized projections (RuntimeError: Only Tensors of "
                                "floating point and complex dtype can require gradients)"},
        order=10,
    )
    yield OptimizationSpec(
        name="channels_last",
        stage=Stage.PLACE,
        summary="store the conv-heavy denoiser and the VAE in channels_last memory format",
        lossless=True,
        impl="omni_plugin_layout.impl:channels_last",
        config_keys=(ConfigKey("channels_last", enables=True),),
        requires_traits={"conv-heavy"},
        claims={f: supported("verified: omni verify (CPU, max |Δ| < 4e-6)") for f in CHANNELS_LAST_VERIFIED},
        order=5,
    )
