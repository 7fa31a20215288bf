"""Declarations only: importing this module never imports torch or diffusers."""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec

# TeaCache4FLUX coefficients (ali-vilab/TeaCache, highest power first), also used by vLLM-Omni.
FLUX_TEACACHE = {
    "probe": "flux-norm1",
    "coefficients": (4.98651651e02, -2.83781631e02, 5.58554382e01, -3.82021401e00, 2.64230861e-01),
    "source": "TeaCache4FLUX (ali-vilab/TeaCache)",
}

FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks", "single_transformer_blocks"),
    repeated_blocks=True,
    modality="image",
    tasks=("t2i", "i2i", "inpaint", "edit"),
    guidance="distilled",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder", "text_encoder_2"),
    cache_context=True,
    qkv_fusion=True,
)

TINY_GENERATION = {"height": 64, "width": 64, "num_inference_steps": 4, "guidance_scale": 3.5,
                   "max_sequence_length": 32}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="flux",
        summary="FLUX.1 rectified-flow DiT (dev, schnell, Kontext siblings) by Black Forest Labs",
        pipelines=("FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline", "FluxKontextPipeline"),
        task_pipelines={"t2i": "FluxPipeline", "i2i": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline",
                        "edit": "FluxKontextPipeline"},
        hub_patterns=("black-forest-labs/FLUX.1-*",),
        facts=FACTS,
        limits=Limits(size_multiple=16),
        # data for the cache plugins that read it: TeaCache's coefficients, and diffusers' own MagCache
        # magnitude ratios for FLUX.1 (the name of a constant in diffusers.hooks.mag_cache)
        extras={"teacache": FLUX_TEACACHE, "mag_cache": {"ratios": "FLUX_MAG_RATIOS"}},
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 28, "guidance_scale": 3.5},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-flux",
        family="flux",
        summary="random-weight tiny FluxPipeline (~0.07 M transformer), built offline; for tests",
        build="omni_family_flux.tiny:build_tiny",
        size="tiny",
        default_generation=TINY_GENERATION,
        # Kontext rescales to about one megapixel (max_area) and snaps its input to preferred sizes unless told
        # not to: the tiny model edits at its own 64x64
        task_generation={"edit": {"_auto_resize": False, "max_area": 64 * 64}},
    )
    yield ModelSpec(
        name="deep-flux",
        family="flux",
        summary="random-weight FluxPipeline with FLUX.1's depth (19 double + 38 single blocks) at width 128 "
                "(~20 M transformer), built offline; for compile-time benchmarks",
        build="omni_family_flux.tiny:build_deep",
        size="medium",
        default_generation={"height": 128, "width": 128, "num_inference_steps": 8, "guidance_scale": 3.5,
                            "max_sequence_length": 32},
    )
    yield ModelSpec(
        name="medium-flux",
        family="flux",
        summary="random-weight ~70 M-parameter FluxPipeline, built offline; for benchmarks",
        build="omni_family_flux.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "guidance_scale": 3.5,
                            "max_sequence_length": 32},
    )
