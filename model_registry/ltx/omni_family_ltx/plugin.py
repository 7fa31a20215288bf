"""Declarations only: importing this module never imports torch or diffusers."""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, unsupported

# TeaCache4LTX-Video (ali-vilab/TeaCache); probe: block 0's
# norm1(x) * (1 + scale_msa) + shift_msa.
LTX_TEACACHE = {
    "probe": "ltx-norm1",
    "coefficients": (2.14700694e01, -1.28016453e01, 2.31279151e00, 7.92487521e-01, 9.69274326e-03),
    "source": "TeaCache4LTX-Video (ali-vilab/TeaCache)",
}

# Verified against diffusers 0.42.1: LTXPipeline, LTXImageToVideoPipeline and LTXConditionPipeline share
# model_cpu_offload_seq "text_encoder->transformer->vae" and run CFG batched (batch 2) inside
# transformer.cache_context("cond_uncond"); LTXVideoTransformer3DModel: transformer_blocks =
# ModuleList[LTXVideoTransformerBlock], _repeated_blocks = ["LTXVideoTransformerBlock"], fuse_qkv_projections
# (AttentionMixin); AutoencoderKLLTXVideo has enable_tiling / enable_slicing.
# Tasks: LTXImageToVideoPipeline takes the LTXPipeline components as they are (the first latent frame is the
# image's, held by a conditioning mask), so a text-to-video checkpoint runs image-to-video. No video-to-video:
# LTXConditionPipeline's `video` is a condition held at `strength` (1.0: the given frames are kept) and its
# img2img-like knob is `denoise_strength`, so omni's `strength` (how much to change the input) would mean the
# opposite there.

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
    text_encoders=("text_encoder",),
    cache_context=True,
    qkv_fusion=True,
)


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="ltx",
        summary="LTX-Video text/image-to-video (and condition) DiT by Lightricks (T5 text encoder, causal video VAE)",
        pipelines=("LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline"),
        task_pipelines={"t2v": "LTXPipeline", "i2v": "LTXImageToVideoPipeline"},
        hub_patterns=("Lightricks/LTX-Video*",),
        facts=FACTS,
        limits=Limits(size_multiple=32, frames_multiple=8, frames_offset=1),
        extras={"teacache": LTX_TEACACHE},
        claims={
            # cache-dit patches the loaded pipeline's class; the i2v pipeline built from the same components is not
            # patched, creates no cache context and reuses nothing
            "cache_dit@i2v": unsupported(
                "the task's pipeline is built from the loaded one's components and is not patched by cache-dit: no "
                "cache context, nothing reused (omni verify on tiny-ltx i2v)"),
            "faster_cache": unsupported(
                "LTX's transformer takes packed latents (batch, tokens, channels), which no FasterCache "
                "tensor_format describes; the unconditional-branch approximation fails with 'RuntimeError: "
                "permute(sparse_coo): number of dimensions in the tensor input does not match the length of the "
                "desired ordering of dimensions i.e. input.dim() = 3 is not equal to len(dims) = 5' (diffusers "
                "hooks/faster_cache.py:342; reproduced on tiny-ltx)"),
        },
        default_generation={"height": 480, "width": 704, "num_frames": 161, "num_inference_steps": 50,
                            "guidance_scale": 3.0},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-ltx",
        family="ltx",
        summary="random-weight tiny LTXPipeline (9 frames of 32x32), built offline; for tests",
        build="omni_family_ltx.tiny:build_tiny",
        size="tiny",
        default_generation={"height": 32, "width": 32, "num_frames": 9, "num_inference_steps": 4,
                            "guidance_scale": 3.0, "max_sequence_length": 32},
    )
    yield ModelSpec(
        name="medium-ltx",
        family="ltx",
        summary="random-weight ~50 M-parameter LTXPipeline, built offline; for benchmarks",
        build="omni_family_ltx.tiny:build_medium",
        size="medium",
        default_generation={"height": 64, "width": 64, "num_frames": 9, "num_inference_steps": 20,
                            "guidance_scale": 3.0, "max_sequence_length": 32},
    )
