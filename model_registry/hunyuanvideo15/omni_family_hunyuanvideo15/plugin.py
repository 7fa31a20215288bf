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
# * HunyuanVideo15Pipeline (t2v) and HunyuanVideo15ImageToVideoPipeline (i2v) share text_encoder
#   (Qwen2_5_VLTextModel), tokenizer, text_encoder_2 (ByT5, T5EncoderModel), tokenizer_2, transformer, vae, scheduler
#   and guider; the i2v pipeline adds image_encoder (SiglipVisionModel) and feature_extractor, which a t2v checkpoint
#   does not have. Guidance comes from the guider component (ClassifierFreeGuidance): one batch-1 transformer call
#   per condition inside transformer.cache_context("pred_cond") / ("pred_uncond").
# * HunyuanVideo15Transformer3DModel: transformer_blocks = ModuleList[HunyuanVideo15TransformerBlock],
#   _repeated_blocks = [HunyuanVideo15TransformerBlock, HunyuanVideo15PatchEmbed, HunyuanVideo15TokenRefiner],
#   CacheMixin. It is an AttentionMixin, but its attention modules are attention_processor.Attention, which
#   AttentionMixin.fuse_qkv_projections skips (it fuses AttentionModuleMixin modules only): measured, 0 modules
#   fused, and HunyuanVideo15AttnProcessor2_0 reads to_q / to_k / to_v anyway. So no QKV fusion.
# * AutoencoderKLHunyuanVideo15 has enable_tiling / enable_slicing; 16x spatial and 4x temporal compression with
#   patch size 1: sizes are multiples of 16, and num_frames = 4k + 1 ((num_frames - 1) // 4 + 1 latent frames:
#   other counts are silently cut).
# TeaCache: no coefficients are published for HunyuanVideo 1.5 (TeaCache4HunyuanVideo's are for HunyuanVideo's
# transformer).
FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer",),
    block_attrs=("transformer_blocks",),
    repeated_blocks=True,
    modality="video",
    tasks=("t2v", "i2v"),
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder", "text_encoder_2"),
    cache_context=True,
    qkv_fusion=False,
)

# Claims: every cell `omni verify --family hunyuanvideo15 --include-untested` passed on tiny-hunyuanvideo15 (t2v).
# Not claimed although they pass: compile (minutes of cold inductor compilation on CPU) and vae_tiling (omni's
# tile_size sets tile_sample_min_*, but this VAE decodes in tiles only above tile_latent_min_* (256 // 16 = 16
# latents by default), so the verification's 64x64 decode is not tiled and proves nothing). Untested: mag_cache
# (no published magnitude ratios).
PROVEN = ("torchao_load", "torchao", "layerwise_casting", "disk_offload", "cache_dit", "faster_cache",
          "pyramid_attention_broadcast", "taylorseer_cache", "vae_slicing")
# The i2v task runs HunyuanVideo15ImageToVideoPipeline, whose image_encoder and feature_extractor a text-to-video
# checkpoint does not have: from a t2v checkpoint (tiny-hunyuanvideo15 is one) the task cannot be built at all (a
# request says so in one line; omni verify reports those cells unavailable), and no tiny image-to-video model is
# built here, so the i2v cells are not proven.
CLAIMS = {
    **{name: supported("verified: omni verify") for name in PROVEN},
    "first_block_cache": unsupported(
        "FBC needs to know which output of a block is the hidden state; 'block class HunyuanVideo15TransformerBlock "
        "is not in diffusers' TransformerBlockRegistry (its output layout is unknown)' (reproduced on "
        "tiny-hunyuanvideo15)"),
    "gguf": unsupported(
        "GGUF weights load through from_single_file: 'HunyuanVideo15Transformer3DModel cannot be loaded from a "
        "single file in diffusers (no from_single_file mapping)' (diffusers 0.42.1; reproduced on "
        "tiny-hunyuanvideo15)"),
}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="hunyuanvideo15",
        summary="HunyuanVideo 1.5 text/image-to-video DiT by Tencent (Qwen2.5-VL + ByT5 text encoders, 3D causal VAE)",
        pipelines=("HunyuanVideo15Pipeline", "HunyuanVideo15ImageToVideoPipeline"),
        hub_patterns=("hunyuanvideo-community/HunyuanVideo-1.5-*",),
        facts=FACTS,
        claims=CLAIMS,
        task_pipelines={"t2v": "HunyuanVideo15Pipeline", "i2v": "HunyuanVideo15ImageToVideoPipeline"},
        limits=Limits(size_multiple=16, frames_multiple=4, frames_offset=1),
        # 480p at the pipeline's default 16:9 aspect, HunyuanVideo15Pipeline.__call__'s 121 frames and 50 steps
        default_generation={"height": 480, "width": 848, "num_frames": 121, "num_inference_steps": 50},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-hunyuanvideo15",
        family="hunyuanvideo15",
        summary="random-weight tiny HunyuanVideo15Pipeline (5 frames of 32x32, CFG guider; 4.3 M transformer, 4.2 M "
                "of it the fixed 2,048-wide ByT5 projection), built offline; for tests",
        build="omni_family_hunyuanvideo15.tiny:build_tiny",
        size="tiny",
        default_generation={"height": 32, "width": 32, "num_frames": 5, "num_inference_steps": 4},
    )
    yield ModelSpec(
        name="medium-hunyuanvideo15",
        family="hunyuanvideo15",
        summary="random-weight ~67 M-parameter HunyuanVideo15Pipeline, built offline; for benchmarks",
        build="omni_family_hunyuanvideo15.tiny:build_medium",
        size="medium",
        default_generation={"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 20},
    )
