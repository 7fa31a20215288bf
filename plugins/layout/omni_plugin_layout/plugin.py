"""Declarations only (no torch import)."""

import omni
from omni.specs import ConfigKey, OptimizationSpec, Stage, supported

CHANNELS_LAST_VERIFIED = ("sd15", "sdxl")
FUSE_QKV_VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")


@omni.hookimpl
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
        claims={f: supported("verified: omni verify") for f in FUSE_QKV_VERIFIED},
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
        claims={f: supported("verified: omni verify") for f in CHANNELS_LAST_VERIFIED},
        order=50,
    )
