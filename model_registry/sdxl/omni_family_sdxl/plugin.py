"""Declarations only: importing this module never imports torch or diffusers.

Facts checked against diffusers 0.42.1: ``StableDiffusionXLPipeline.model_cpu_offload_seq`` (same on the
Img2Img / Inpaint siblings), two text encoders (``CLIPTextModel`` + ``CLIPTextModelWithProjection``), a
``UNet2DConditionModel`` with ``addition_embed_type="text_time"`` whose ``_repeated_blocks`` is
``["BasicTransformerBlock"]`` and which has ``fuse_qkv_projections``, ``AutoencoderKL`` (tiling/slicing),
and no file under ``diffusers/pipelines/stable_diffusion_xl/`` calls ``cache_context``.
"""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, unsupported

FACTS = FamilyFacts(
    denoiser="unet",
    denoiser_components=("unet",),
    # no top-level transformer block list: BasicTransformerBlocks are nested in down/mid/up blocks.
    block_attrs=(),
    repeated_blocks=True,  # _repeated_blocks = ["BasicTransformerBlock"] (compile_repeated_blocks)
    modality="image",
    tasks=("t2i", "i2i", "inpaint"),
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder", "text_encoder_2"),
    cache_context=False,
    qkv_fusion=True,
    conv_heavy=True,
)

# Reproduced on tiny-sdxl (diffusers 0.42.1).
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

TINY_GENERATION = {"height": 64, "width": 64, "num_inference_steps": 4, "guidance_scale": 5.0}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="sdxl",
        summary="Stable Diffusion XL latent UNet with two CLIP text encoders (base, refiner, turbo)",
        pipelines=("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"),
        hub_patterns=("stabilityai/stable-diffusion-xl-*", "stabilityai/sdxl-*"),
        facts=FACTS,
        limits=Limits(size_multiple=8),
        claims=UNET_CLAIMS,
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 50, "guidance_scale": 5.0},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-sdxl",
        family="sdxl",
        summary="random-weight tiny StableDiffusionXLPipeline (~1.4 M UNet), built offline; for tests",
        build="omni_family_sdxl.tiny:build_tiny",
        size="tiny",
        default_generation=TINY_GENERATION,
    )
    yield ModelSpec(
        name="medium-sdxl",
        family="sdxl",
        summary="random-weight ~74 M-parameter StableDiffusionXLPipeline (SDXL UNet layout), built offline; "
                "for benchmarks",
        build="omni_family_sdxl.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "guidance_scale": 5.0},
    )
