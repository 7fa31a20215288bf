"""Declarations only: importing this module never imports torch or diffusers."""

from omni.sdk import (
    FamilyFacts,
    FamilySpec,
    Limits,
    ModelSpec,
    hookimpl,
    supported,
    unsupported,
)

# Verified against diffusers 0.42.1:
# * ZImagePipeline, ZImageImg2ImgPipeline and ZImageInpaintPipeline share the components (scheduler, vae,
#   text_encoder, tokenizer, transformer) and model_cpu_offload_seq "text_encoder->transformer->vae"; with
#   guidance_scale > 0 they run CFG batched: one transformer call on the list [cond..., uncond...], without
#   cache_context (Z-Image-Turbo runs guidance_scale=0.0: one unguided call per step).
# * ZImageTransformer2DModel takes a *list* of latents; blocks: noise_refiner (image tokens) and context_refiner
#   (caption tokens) refine each stream, then layers = ModuleList[ZImageTransformerBlock] runs the joint sequence;
#   _repeated_blocks = ["ZImageTransformerBlock"]. It is neither a CacheMixin nor an AttentionMixin: no
#   enable_cache, no fuse_qkv_projections.
# * The VAE is an AutoencoderKL (enable_tiling / enable_slicing), 8x downsampling, and the transformer's patch size
#   is 2: height and width must be multiples of 16 (the pipeline raises otherwise).
# * Left out: ZImageOmniPipeline (SigLIP image conditioning, nested latent lists) and the ControlNet pipelines (an
#   extra controlnet component).
# TeaCache: no coefficients for ZImageTransformer2DModel are published with a probe omni's TeaCache implements
# (vLLM-Omni's entry is a copy of Qwen-Image's, marked "need to be tuned").
FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("layers",),
    repeated_blocks=True,
    modality="image",
    tasks=("t2i", "i2i", "inpaint"),
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder",),
    cache_context=False,
    qkv_fusion=False,
)

# Claims: every cell `omni verify --family zimage --include-untested` passed on tiny-zimage for t2i, i2i and inpaint.
# Not claimed although it passes: compile (minutes of cold inductor compilation on CPU). Not claimed, untested:
# taylorseer_cache (the diffusers-cache plugin's default identifiers, "layers.N.attn*", miss Z-Image's
# "layers.N.attention" modules; with taylorseer_cache.cache_identifiers=["layers\\.\\d+\\.attention"] it applies,
# reuses 9 of 20 calls, 41 dB), cache_dit (applies, but at omni verify's residual_diff_threshold 0.5 the tiny
# model's random residuals never fall below the threshold), mag_cache (no published Z-Image magnitude ratios).
CLAIMS = {
    **{name: supported("verified: omni verify") for name in (
        "gguf", "torchao_load", "torchao", "layerwise_casting", "disk_offload", "pyramid_attention_broadcast",
        "vae_slicing", "vae_tiling")},
    "first_block_cache": unsupported(
        "ZImageTransformerBlock takes its input as 'x', and FBC reads the block's 'hidden_states': 'ValueError: "
        "Parameter 'hidden_states' not found in function signature but was requested.' (diffusers "
        "hooks/first_block_cache.py:79; reproduced on tiny-zimage)"),
    "faster_cache": unsupported(
        "ZImageTransformer2DModel takes a list of latents, which FasterCache's hook reads as a tensor: "
        "'AttributeError: 'list' object has no attribute 'size'' (diffusers hooks/faster_cache.py:304; reproduced "
        "on tiny-zimage)"),
}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="zimage",
        summary="Z-Image single-stream DiT by Tongyi-MAI (Qwen3 text encoder) and its img2img / inpaint siblings",
        pipelines=("ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline"),
        hub_patterns=("Tongyi-MAI/Z-Image", "Tongyi-MAI/Z-Image-Turbo"),
        facts=FACTS,
        claims=CLAIMS,
        task_pipelines={"t2i": "ZImagePipeline", "i2i": "ZImageImg2ImgPipeline", "inpaint": "ZImageInpaintPipeline"},
        limits=Limits(size_multiple=16),
        # Z-Image-Turbo as ZImagePipeline's docstring runs it
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 8, "guidance_scale": 0.0},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-zimage",
        family="zimage",
        summary="random-weight tiny ZImagePipeline (2-layer Qwen3 text encoder, batched CFG, 0.36 M transformer), "
                "built offline; for tests",
        build="omni_family_zimage.tiny:build_tiny",
        size="tiny",
        default_generation={"height": 64, "width": 64, "num_inference_steps": 4, "guidance_scale": 5.0,
                            "max_sequence_length": 32},
    )
    yield ModelSpec(
        name="medium-zimage",
        family="zimage",
        summary="random-weight ~58 M-parameter ZImagePipeline, built offline; for benchmarks",
        build="omni_family_zimage.tiny:build_medium",
        size="medium",
        default_generation={"height": 256, "width": 256, "num_inference_steps": 20, "guidance_scale": 5.0,
                            "max_sequence_length": 32},
    )
