"""Declarations only: importing this module never imports torch or diffusers.

Facts checked against diffusers 0.42.1: ``StableDiffusionPipeline.model_cpu_offload_seq`` (same on the
Img2Img / Inpaint siblings), ``UNet2DConditionModel._repeated_blocks == ["BasicTransformerBlock"]``,
``UNet2DConditionModel.fuse_qkv_projections`` exists, ``AutoencoderKL`` implements ``enable_tiling`` /
``enable_slicing``, and no file under ``diffusers/pipelines/stable_diffusion/`` calls ``cache_context``.
"""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, unsupported

FACTS = FamilyFacts(
    denoiser="unet",
    denoiser_components=("unet",),
    # no top-level transformer block list: the UNet nests BasicTransformerBlocks inside
    # down_blocks / mid_block / up_blocks, which is what block-level caches cannot walk.
    block_attrs=(),
    repeated_blocks=True,  # _repeated_blocks = ["BasicTransformerBlock"] (compile_repeated_blocks)
    modality="image",
    tasks=("t2i", "i2i", "inpaint"),
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder",),
    cache_context=False,
    qkv_fusion=True,
    conv_heavy=True,
)

# Reproduced on tiny-sd15 (diffusers 0.42.1).
UNET_CLAIMS = {
    "first_block_cache": unsupported(
        "apply_first_block_cache on UNet2DConditionModel fails with 'IndexError: pop from empty list': "
        "the UNet has no top-level transformer block list (blocks are nested in down/mid/up blocks)"),
    "mag_cache": unsupported(
        "apply_mag_cache on UNet2DConditionModel hooks nothing ('MagCache: No transformer blocks found to "
        "apply hooks.'): the UNet has no top-level transformer block list, so no step is ever skipped"),
    "cache_dit": unsupported(
        "cache-dit has no UNet support: StableDiffusion/StableDiffusionXL are not in cache_dit.supported_pipelines()"),
}

TINY_GENERATION = {"height": 64, "width": 64, "num_inference_steps": 4, "guidance_scale": 7.5}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="sd15",
        summary="Stable Diffusion 1.x latent UNet with CLIP text encoder (SD 1.4 / 1.5 and fine-tunes)",
        pipelines=("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"),
        hub_patterns=("stable-diffusion-v1-5/*", "runwayml/stable-diffusion-v1-5", "runwayml/stable-diffusion-inpainting",
                      "CompVis/stable-diffusion-v1-*"),
        facts=FACTS,
        limits=Limits(size_multiple=8),
        claims=UNET_CLAIMS,
        default_generation={"height": 512, "width": 512, "num_inference_steps": 50, "guidance_scale": 7.5},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-sd15",
        family="sd15",
        summary="random-weight tiny StableDiffusionPipeline (~1 M UNet), built offline; for tests",
        build="omni_family_sd15.tiny:build_tiny",
        size="tiny",
        default_generation=TINY_GENERATION,
    )
    yield ModelSpec(
        name="medium-sd15",
        family="sd15",
        summary="random-weight ~76 M-parameter StableDiffusionPipeline (SD1.5 UNet layout), built offline; for benchmarks",
        build="omni_family_sd15.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "guidance_scale": 7.5},
    )
