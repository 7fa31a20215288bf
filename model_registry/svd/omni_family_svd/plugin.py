"""Declarations only: importing this module never imports torch or diffusers.

Facts checked against diffusers 0.42.1 (``pipelines/stable_video_diffusion/pipeline_stable_video_diffusion.py``,
``models/unets/unet_spatio_temporal_condition.py``, ``models/autoencoders/autoencoder_kl_temporal_decoder.py``):

* components: ``vae`` (``AutoencoderKLTemporalDecoder``), ``image_encoder`` (``CLIPVisionModelWithProjection``),
  ``unet`` (``UNetSpatioTemporalConditionModel``), ``scheduler``, ``feature_extractor``;
  ``model_cpu_offload_seq = "image_encoder->unet->vae"``. There is no text encoder, no tokenizer and no
  ``encode_prompt``: the pipeline takes an ``image`` and no ``prompt``.
* guidance: one batched call per step (``torch.cat([latents] * 2)``, unconditional image embedding and latents
  zeroed) with a per-frame guidance scale rising linearly from ``min_guidance_scale`` to ``max_guidance_scale``.
* the denoiser is called without ``cache_context``; ``scheduler.step`` is called once per step.
* ``UNetSpatioTemporalConditionModel`` sets no ``_repeated_blocks``; its transformer blocks are nested in
  ``down_blocks`` / ``mid_block`` / ``up_blocks`` (no top-level block list); it inherits
  ``AttentionMixin.fuse_qkv_projections``.
* ``AutoencoderKLTemporalDecoder`` inherits ``AutoencoderMixin`` but has no ``use_tiling`` / ``use_slicing``, so
  ``enable_tiling`` / ``enable_slicing`` raise ``NotImplementedError``; the pipeline's own ``decode_chunk_size``
  decodes frames in chunks instead.
* ``check_inputs`` refuses a height or width that is not a multiple of 8 (the VAE scale factor; the UNet
  forwards up-sampling sizes, so no further multiple is needed); ``num_frames`` has no rule (default: the
  UNet's ``num_frames``, 14 for img2vid, 25 for img2vid-xt).
"""

from omni.sdk import FamilyFacts, FamilySpec, hookimpl, Limits, ModelSpec, supported, unsupported

FACTS = FamilyFacts(
    denoiser="unet",
    denoiser_components=("unet",),
    block_attrs=(),  # transformer blocks are nested in down/mid/up blocks
    repeated_blocks=False,
    modality="video",
    tasks=("i2v",),
    guidance="cfg",
    vae_tiling=False,
    vae_slicing=False,
    text_encoders=(),
    cache_context=False,
    qkv_fusion=True,
    conv_heavy=True,
)

VERIFIED = supported("verified: omni verify --family svd (tiny-svd, image-to-video from a synthetic image)")

# Failures reproduced on tiny-svd (diffusers 0.42.1): with omni verify, or by calling diffusers' hook directly
# where the cell is already unsupported by traits. Not claimed either way: layerwise_casting (fp8 storage drifts
# to PSNR 32.8 dB on tiny-svd's random weights, under its 35 dB floor) and compile (the regional default skips:
# no _repeated_blocks, no block list).
CLAIMS = {
    **{name: VERIFIED for name in ("fuse_qkv", "torchao", "torchao_load", "disk_offload",
                                   "pyramid_attention_broadcast", "taylorseer_cache")},
    "gguf": unsupported(
        "UNetSpatioTemporalConditionModel cannot be loaded from a single file in diffusers (no from_single_file "
        "mapping), so no GGUF file can replace its weights"),
    "channels_last": unsupported(
        "converting UNetSpatioTemporalConditionModel fails with 'RuntimeError: required rank 4 tensor to use "
        "channels_last format': its temporal ResNet blocks hold 5-D Conv3d weights"),
    "first_block_cache": unsupported(
        "apply_first_block_cache on UNetSpatioTemporalConditionModel fails with 'IndexError: pop from empty list' "
        "(diffusers hooks/first_block_cache.py:235): the UNet has no top-level transformer block list"),
    "faster_cache": unsupported(
        "apply_faster_cache on UNetSpatioTemporalConditionModel fails at the first step with 'RuntimeError: chunk "
        "expects at least a 1-dimensional tensor' (diffusers hooks/faster_cache.py:258): it splits every tensor "
        "argument into unconditional/conditional halves, the 0-d timestep included"),
    "mag_cache": unsupported(
        "apply_mag_cache on UNetSpatioTemporalConditionModel hooks nothing ('MagCache: No transformer blocks found "
        "to apply hooks.'): the UNet has no top-level transformer block list, so no step is ever skipped"),
    "cache_dit": unsupported("cache-dit has no StableVideoDiffusionPipeline support: it is not in "
                             "cache_dit.supported_pipelines()"),
}


@hookimpl
def omni_register_families():
    yield FamilySpec(
        name="svd",
        summary="Stable Video Diffusion image-to-video spatio-temporal UNet (img2vid, img2vid-xt) by Stability AI",
        pipelines=("StableVideoDiffusionPipeline",),
        hub_patterns=("stabilityai/stable-video-diffusion-img2vid*",),
        facts=FACTS,
        task_pipelines={"i2v": "StableVideoDiffusionPipeline"},
        limits=Limits(size_multiple=8),
        claims=CLAIMS,
        default_generation={"height": 576, "width": 1024, "num_inference_steps": 25},
    )


@hookimpl
def omni_register_models():
    yield ModelSpec(
        name="tiny-svd",
        family="svd",
        summary="random-weight tiny StableVideoDiffusionPipeline (~1.3 M UNet, 4 frames of 32x32), built offline; "
                "for tests",
        build="omni_family_svd.tiny:build_tiny",
        size="tiny",
        default_generation={"height": 32, "width": 32, "num_frames": 4, "num_inference_steps": 4},
    )
    yield ModelSpec(
        name="medium-svd",
        family="svd",
        summary="random-weight ~60 M-parameter StableVideoDiffusionPipeline (SVD UNet layout), built offline; "
                "for benchmarks",
        build="omni_family_svd.tiny:build_medium",
        size="medium",
        default_generation={"height": 128, "width": 128, "num_frames": 14, "num_inference_steps": 20},
    )
