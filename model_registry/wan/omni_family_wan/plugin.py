"""Declarations only: importing this module never imports torch or diffusers."""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, unsupported

# TeaCache4Wan2.1, T2V 1.3B, the non-"ret" set (use_ret_steps=False) of ali-vilab/TeaCache
#; probe: the time-modulation vector the blocks receive (e0).
WAN_TEACACHE = {
    "probe": "wan-time-modulation",
    "coefficients": (2.39676752e03, -1.31110545e03, 2.01331979e02, -8.29855975e00, 1.37887774e-01),
    "source": "TeaCache4Wan2.1 T2V 1.3B, use_ret_steps=False (ali-vilab/TeaCache)",
}

# Verified against diffusers 0.42.1:
# * WanPipeline / WanImageToVideoPipeline wrap each denoiser call in cache_context("cond") / ("uncond") (CFG as two
#   batch-1 calls); WanVideoToVideoPipeline calls the transformer without cache_context (a per-family fact cannot
#   say so; caches then run under one context for both CFG calls).
# * transformer_2 (Wan2.2 A14B low-noise expert) is optional: with transformer_2=None / boundary_ratio=None the
#   pipeline uses transformer for every step (Wan2.1, Wan2.2 TI2V-5B); omni skips absent denoiser components.
# * WanTransformer3DModel: blocks = ModuleList[WanTransformerBlock], _repeated_blocks = ["WanTransformerBlock"],
#   fuse_qkv_projections (AttentionMixin); AutoencoderKLWan has enable_tiling / enable_slicing.
# * WanImageToVideoPipeline and WanVideoToVideoPipeline clean prompts with ftfy unguarded (a dependency here).
# Tasks: WanVideoToVideoPipeline takes the WanPipeline components as they are. WanImageToVideoPipeline needs a
# transformer that takes the image condition (an I2V checkpoint, or Wan2.2 TI2V's expand_timesteps): the task
# check (omni_family_wan.tasks) refuses i2v on a text-to-video transformer, and t2v / v2v on an I2V one.
# cache-dit patches the loaded pipeline's class; the v2v pipeline built from the same components is not patched,
# creates no cache context and reuses nothing (omni verify on tiny-wan v2v: "applied but reused no denoiser call";
# cache-dit logs "Cache context not exist ... skip cache"). On tiny-wan-i2v the i2v pipeline is the loaded one.
CACHE_DIT_FROM_PIPE = ("the task's pipeline is built from the loaded one's components and is not patched by "
                       "cache-dit: no cache context, nothing reused (omni verify on tiny-wan v2v)")

FACTS = FamilyFacts(
    denoiser="dit",
    denoiser_components=("transformer", "transformer_2"),  # transformer_2: Wan2.2 MoE low-noise expert
    block_attrs=("blocks",),
    repeated_blocks=True,
    modality="video",
    tasks=("t2v", "i2v", "v2v"),
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    text_encoders=("text_encoder",),
    cache_context=True,
    qkv_fusion=True,
)


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="wan",
        summary="Wan2.1 / Wan2.2 text/image/video-to-video DiT (UMT5 text encoder, 3D causal VAE)",
        pipelines=("WanPipeline", "WanImageToVideoPipeline", "WanVideoToVideoPipeline"),
        task_pipelines={"t2v": "WanPipeline", "i2v": "WanImageToVideoPipeline", "v2v": "WanVideoToVideoPipeline"},
        task_check="omni_family_wan.tasks:task_check",
        # not Wan2.1-VACE-* (WanVACEPipeline / WanVACETransformer3DModel, with an extra vace_blocks list)
        hub_patterns=("Wan-AI/Wan2.1-T2V-*", "Wan-AI/Wan2.1-I2V-*", "Wan-AI/Wan2.1-FLF2V-*", "Wan-AI/Wan2.2-*"),
        facts=FACTS,
        limits=Limits(size_multiple=16, frames_multiple=4, frames_offset=1),
        extras={"teacache": WAN_TEACACHE},
        claims={
            "cache_dit@v2v": unsupported(CACHE_DIT_FROM_PIPE),
            "faster_cache": unsupported(
                "Wan runs CFG as two batch-1 calls; FasterCache's unconditional-batch split fails with "
                "'IndexError: tuple index out of range' (diffusers hooks/faster_cache.py:464, "
                "cache_output.chunk(2, dim=0)[1]; reproduced on tiny-wan)"),
        },
        default_generation={"height": 480, "width": 832, "num_frames": 81, "num_inference_steps": 50,
                            "guidance_scale": 5.0},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-wan",
        family="wan",
        summary="random-weight tiny WanPipeline (9 frames of 32x32), built offline; for tests",
        build="omni_family_wan.tiny:build_tiny",
        size="tiny",
        default_generation={"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 4,
                            "guidance_scale": 5.0, "max_sequence_length": 32},
    )
    yield ModelSpec(
        name="tiny-wan-i2v",
        family="wan",
        summary="random-weight tiny WanImageToVideoPipeline (Wan2.1-I2V layout: 36-channel transformer, tiny CLIP "
                "image encoder; 9 frames of 32x32), built offline; for tests",
        build="omni_family_wan.tiny:build_tiny_i2v",
        size="tiny",
        task="i2v",
        default_generation={"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 4,
                            "guidance_scale": 5.0, "max_sequence_length": 32},
    )
    yield ModelSpec(
        name="medium-wan",
        family="wan",
        summary="random-weight ~60 M-parameter WanPipeline, built offline; for benchmarks",
        build="omni_family_wan.tiny:build_medium",
        size="medium",
        default_generation={"height": 128, "width": 128, "num_frames": 17, "num_inference_steps": 20,
                            "guidance_scale": 5.0, "max_sequence_length": 32},
    )
