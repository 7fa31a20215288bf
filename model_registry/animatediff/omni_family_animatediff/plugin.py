"""Declarations only: importing this module never imports torch or diffusers.

Two families, one distribution. ``AnimateDiffPipeline`` (SD 1.x components) and ``AnimateDiffSDXLPipeline``
(SDXL components) share the motion machinery (``MotionAdapter``, ``UNetMotionModel``, the chunked VAE decode) and
so the tiny-model builder and every optimization outcome below, but not what a family declares once for all
its pipelines: the text encoders (one CLIP vs two), the tasks (SD 1.x has a video-to-video sibling built from the
same components; SDXL has none, and ``from_pipe`` from SDXL components into ``AnimateDiffVideoToVideoPipeline``
would be wrong), ``task_pipelines`` (one class per task) and the default sizes (512 vs 1024) — the same split
as the ``sd15`` / ``sdxl`` families whose components they run on.

Facts checked against diffusers 0.42.1 (``pipelines/animatediff/pipeline_animatediff.py``,
``pipeline_animatediff_video2video.py``, ``pipeline_animatediff_sdxl.py``, ``models/unets/unet_motion_model.py``):

* ``__init__`` turns a ``UNet2DConditionModel`` into a ``UNetMotionModel`` (``UNetMotionModel.from_unet2d(unet,
  motion_adapter)``); a saved pipeline holds the ``UNetMotionModel`` as ``unet`` and the adapter as
  ``motion_adapter`` (which the denoising loop never calls). ``model_cpu_offload_seq`` is
  ``"text_encoder->image_encoder->unet->vae"`` (SDXL: ``"text_encoder->text_encoder_2->image_encoder->unet->vae"``).
* guidance: one batched call per step (``torch.cat([latents] * 2)``); no ``cache_context``;
  ``scheduler.step`` once per step.
* ``UNetMotionModel`` sets no ``_repeated_blocks``; its transformer and motion blocks are nested in
  ``down_blocks`` / ``mid_block`` / ``up_blocks`` (no top-level block list); it has ``fuse_qkv_projections``.
* the VAE is ``AutoencoderKL`` (``enable_tiling`` / ``enable_slicing``); ``decode_latents`` decodes
  ``decode_chunk_size`` frames per ``vae.decode`` call.
* sizes: latents are ``height // vae_scale_factor`` (8), so sizes are multiples of 8 (the UNet forwards
  up-sampling sizes). ``num_frames`` is bounded by the adapter's ``motion_max_seq_length`` (its sinusoidal
  position table; a longer video fails with a shape mismatch), a per-checkpoint value that a family-wide
  ``Limits`` cannot state; the tiny and medium models, whose adapters have 32, declare it.

No hub patterns: AnimateDiff checkpoints are published as ``MotionAdapter`` weights, not as pipelines; a pipeline
is assembled from an image model and an adapter (and, once saved, recognised by its ``model_index.json``).
"""

from dataclasses import replace

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, supported, unsupported

SD15_FACTS = FamilyFacts(
    denoiser="unet",
    denoiser_components=("unet",),
    block_attrs=(),  # transformer and motion blocks are nested in down/mid/up blocks
    repeated_blocks=False,
    modality="video",
    guidance="cfg",
    vae_tiling=True,
    vae_slicing=True,
    cache_context=False,
    qkv_fusion=True,
    conv_heavy=True,
    tasks=("t2v", "v2v"),
    text_encoders=("text_encoder",),
)
SDXL_FACTS = replace(SD15_FACTS, tasks=("t2v",), text_encoders=("text_encoder", "text_encoder_2"))

VERIFIED = supported("verified: omni verify --family animatediff / animatediff_sdxl (tiny-animatediff, "
                     "tiny-animatediff-sdxl)")

# Failures reproduced on tiny-animatediff and tiny-animatediff-sdxl (diffusers 0.42.1): with omni verify, or by
# calling diffusers' hook directly where the cell is already unsupported by traits. Not claimed: compile (the
# regional default skips: UNetMotionModel has no _repeated_blocks and no block list).
CLAIMS = {
    **{name: VERIFIED for name in ("fuse_qkv", "torchao", "torchao_load", "layerwise_casting", "channels_last",
                                   "disk_offload", "pyramid_attention_broadcast", "taylorseer_cache", "vae_slicing",
                                   "vae_tiling")},
    "gguf": unsupported(
        "UNetMotionModel cannot be loaded from a single file in diffusers (no from_single_file mapping), so no "
        "GGUF file can replace its weights"),
    "first_block_cache": unsupported(
        "apply_first_block_cache on UNetMotionModel fails with 'IndexError: pop from empty list' (diffusers "
        "hooks/first_block_cache.py:235): the UNet has no top-level transformer block list"),
    "faster_cache": unsupported(
        "FasterCache's denoiser hook assumes a transformer: on UNetMotionModel it fails at the first step "
        "(tiny-animatediff: 'UnboundLocalError: cannot access local variable 'hidden_states'', diffusers "
        "hooks/faster_cache.py:304, the UNet's output is a UNetMotionOutput; tiny-animatediff-sdxl: 'RuntimeError: "
        "chunk expects at least a 1-dimensional tensor', faster_cache.py:258, the 0-d timestep split in halves)"),
    "mag_cache": unsupported(
        "apply_mag_cache on UNetMotionModel hooks nothing ('MagCache: No transformer blocks found to apply "
        "hooks.'): the UNet has no top-level transformer block list, so no step is ever skipped"),
    "cache_dit": unsupported("cache-dit has no AnimateDiff support: neither AnimateDiff pipeline is in "
                             "cache_dit.supported_pipelines()"),
}

# The motion adapters of the tiny / medium models have motion_max_seq_length=32.
MODEL_LIMITS = Limits(size_multiple=8, max_frames=32)
# num_frames is a text-to-video argument: AnimateDiffVideoToVideoPipeline takes none (its video sets the length),
# so it is declared for t2v only (the pipelines' own default is 16).
TINY_GENERATION = {"height": 64, "width": 64, "num_inference_steps": 4}
TINY_TASK_GENERATION = {"t2v": {"num_frames": 4}}
MEDIUM_GENERATION = {"height": 128, "width": 128, "num_inference_steps": 20}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="animatediff",
        summary="AnimateDiff text-to-video: a motion adapter over a Stable Diffusion 1.x UNet",
        pipelines=("AnimateDiffPipeline", "AnimateDiffVideoToVideoPipeline"),
        facts=SD15_FACTS,
        claims=CLAIMS,
        task_pipelines={"t2v": "AnimateDiffPipeline", "v2v": "AnimateDiffVideoToVideoPipeline"},
        limits=Limits(size_multiple=8),
        default_generation={"height": 512, "width": 512, "num_inference_steps": 50, "guidance_scale": 7.5},
    )
    yield FamilySpec(
        name="animatediff_sdxl",
        summary="AnimateDiff-SDXL text-to-video: a motion adapter over a Stable Diffusion XL UNet",
        pipelines=("AnimateDiffSDXLPipeline",),
        facts=SDXL_FACTS,
        claims=CLAIMS,
        task_pipelines={"t2v": "AnimateDiffSDXLPipeline"},
        limits=Limits(size_multiple=8),
        default_generation={"height": 1024, "width": 1024, "num_inference_steps": 50, "guidance_scale": 5.0},
    )


@hookimpl
def omni_register_models():
    # family, build suffix, base model suffix, UNetMotionModel parameters (tiny, medium)
    for family, suffix, base, params in (("animatediff", "", "sd15", ("1.4 M", "117 M")),
                                         ("animatediff_sdxl", "_sdxl", "sdxl", ("1.8 M", "99 M"))):
        name = family.replace("_", "-")
        yield ModelSpec(
            name=f"tiny-{name}",
            family=family,
            summary=f"random-weight tiny-{base} plus a random motion adapter (~{params[0]} UNetMotionModel, 4 frames "
                    "of 64x64), built offline; for tests",
            build=f"omni_family_animatediff.tiny:build_tiny{suffix}",
            size="tiny",
            limits=MODEL_LIMITS,
            default_generation=TINY_GENERATION,
            task_generation=TINY_TASK_GENERATION,
        )
        yield ModelSpec(
            name=f"medium-{name}",
            family=family,
            summary=f"random-weight medium-{base} plus a random motion adapter (~{params[1]} UNetMotionModel), built "
                    "offline; for benchmarks",
            build=f"omni_family_animatediff.tiny:build_medium{suffix}",
            size="medium",
            limits=MODEL_LIMITS,
            default_generation=MEDIUM_GENERATION,
        )
