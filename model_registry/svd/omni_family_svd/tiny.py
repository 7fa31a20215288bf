"""Tiny / medium random-weight StableVideoDiffusionPipelines built offline.

SVD's shape at small sizes: a ``UNetSpatioTemporalConditionModel`` that takes the noisy latents
concatenated with the conditioning image's latents (8 input channels), the CLIP image embedding as
cross-attention context and 3 "added time ids" (fps, motion bucket, noise augmentation); a
``CLIPVisionModelWithProjection`` image encoder at 224x224 (the pipeline resizes every PIL image to
224 before encoding); an ``AutoencoderKLTemporalDecoder`` with four levels, so the VAE scale factor is
8 as in the real model (its group norms use 32 groups, hence 32-channel levels); the real model's
Karras-sigma v-prediction ``EulerDiscreteScheduler``. No text encoder and no tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    tiny.seeded(seed)
    embed = 32 if size == "tiny" else 64
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=embed, projection_dim=embed, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * embed, image_size=224, patch_size=32))
    time_dim = 8 if size == "tiny" else 32
    if size == "tiny":
        unet = UNetSpatioTemporalConditionModel(
            sample_size=4, num_frames=4, in_channels=8, out_channels=4, block_out_channels=(32, 64),
            layers_per_block=1, down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            num_attention_heads=(2, 4), transformer_layers_per_block=1, cross_attention_dim=embed,
            addition_time_embed_dim=time_dim, projection_class_embeddings_input_dim=3 * time_dim)
        vae_channels = (32, 32, 32, 32)
    else:
        # SVD's layout (three cross-attention levels + one plain, 2 layers per block) at 64/128/256/256 channels.
        unet = UNetSpatioTemporalConditionModel(
            sample_size=16, num_frames=14, in_channels=8, out_channels=4, block_out_channels=(64, 128, 256, 256),
            layers_per_block=2, down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
            up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
            num_attention_heads=(2, 4, 8, 8), transformer_layers_per_block=1, cross_attention_dim=embed,
            addition_time_embed_dim=time_dim, projection_class_embeddings_input_dim=3 * time_dim)
        vae_channels = (32, 64, 64, 64)
    vae = AutoencoderKLTemporalDecoder(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=vae_channels, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, sample_size=8 * unet.config.sample_size)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type="v_prediction",
        interpolation_type="linear", sigma_max=700.0, sigma_min=0.002, steps_offset=1, timestep_spacing="leading",
        timestep_type="continuous", use_karras_sigmas=True)
    feature_extractor = CLIPImageProcessor(crop_size={"height": 224, "width": 224}, size={"shortest_edge": 224})
    pipe = StableVideoDiffusionPipeline(vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=feature_extractor)
    for module in (image_encoder, unet, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-svd", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-svd", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
