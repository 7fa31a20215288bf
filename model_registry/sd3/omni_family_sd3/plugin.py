"""Declarations only: importing this module never imports torch or diffusers.

Facts checked against diffusers 0.42.1: ``StableDiffusion3Pipeline.model_cpu_offload_seq`` (same on the
Img2Img / Inpaint siblings), three text encoders (2x ``CLIPTextModelWithProjection`` + ``T5EncoderModel``),
``SD3Transformer2DModel`` with one ``transformer_blocks`` list of ``JointTransformerBlock`` and an empty
``_repeated_blocks`` (so regional compile must use the block list), ``fuse_qkv_projections`` on the
transformer, ``AutoencoderKL`` (tiling/slicing), and no file under
``diffusers/pipelines/stable_diffusion_3/`` calls ``cache_context``.
"""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, unsupported

FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks",),
    repeated_blocks=False,
    modality="image",
    tasks=("t2i", "i2i", "inpaint"),
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder", "text_encoder_2", "text_encoder_3"),
    cache_context=False,
    qkv_fusion=True,
)

# Reproduced on tiny-sd3 (diffusers 0.42.1).
CLAIMS = {
    "first_block_cache": unsupported(
        "apply_first_block_cache on SD3Transformer2DModel fails at the first step with 'TypeError: unsupported "
        "operand type(s) for -: 'NoneType' and 'Tensor'': the last JointTransformerBlock has context_pre_only=True "
        "and returns encoder_hidden_states=None"),
}

TINY_GENERATION = {"height": 64, "width": 64, "num_inference_steps": 4, "guidance_scale": 7.0,
                   "max_sequence_length": 32}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="sd3",
        summary="Stable Diffusion 3 / 3.5 rectified-flow MMDiT with two CLIP and one T5 text encoder",
        pipelines=("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline"),
        hub_patterns=("stabilityai/stable-diffusion-3*",),
        facts=FACTS,
        limits=Limits(size_multiple=16),
        claims=CLAIMS,
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 28, "guidance_scale": 7.0},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-sd3",
        family="sd3",
        summary="random-weight tiny StableDiffusion3Pipeline (~0.08 M transformer), built offline; for tests",
        build="omni_family_sd3.tiny:build_tiny",
        size="tiny",
        default_generation=TINY_GENERATION,
    )
    yield ModelSpec(
        name="medium-sd3",
        family="sd3",
        summary="random-weight ~64 M-parameter StableDiffusion3Pipeline, built offline; for benchmarks",
        build="omni_family_sd3.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "guidance_scale": 7.0,
                            "max_sequence_length": 32},
    )
