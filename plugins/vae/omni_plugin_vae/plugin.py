"""Declarations only (no torch import)."""

from omni.sdk import ConfigKey, OptimizationSpec, Option, Stage, hookimpl, supported

VERIFIED = ("flux", "sd15", "sdxl", "sd3", "wan", "ltx", "qwenimage")


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(
        name="vae_slicing",
        stage=Stage.DECODE,
        summary="decode a batch one sample at a time (lower peak memory for batches)",
        lossless=True,
        impl="omni_plugin_vae.impl:slicing",
        config_keys=(ConfigKey("enable_vae_slicing", enables=True), ConfigKey("vae_use_slicing", enables=True)),
        requires_traits={"vae:slicing"},
        claims={f: supported("verified: omni verify") for f in VERIFIED},
        order=10,
    )
    yield OptimizationSpec(
        name="vae_tiling",
        stage=Stage.DECODE,
        summary="decode the latent in overlapping tiles (lower peak memory at high resolution; seams are blended)",
        lossless=False,
        tolerance_psnr=10.0,
        impl="omni_plugin_vae.impl:tiling",
        options=(
            Option("tile_size", "int", 0, "tile edge in output pixels; 0 keeps the VAE's default", min=0),
        ),
        config_keys=(ConfigKey("enable_vae_tiling", enables=True), ConfigKey("vae_use_tiling", enables=True),
                     ConfigKey("vae_tile_size", option="tile_size")),
        requires_traits={"vae:tiling"},
        claims={f: supported("verified: omni verify") for f in VERIFIED},
        order=20,
        verify_overrides={"tile_size": 32},
        verify_generation={"height": 64, "width": 64},
    )
