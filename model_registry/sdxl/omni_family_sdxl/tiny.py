"""Tiny / medium random-weight StableDiffusionXLPipelines built offline.

Same shape as SDXL: two CLIP text encoders (``CLIPTextModel`` + ``CLIPTextModelWithProjection``) whose
hidden states are concatenated into the UNet's cross-attention, and a UNet with
``addition_embed_type="text_time"`` (pooled text embedding + 6 size/crop time ids). Sizes follow
the SD 1.5 family's tiny UNet and VAE and diffusers' own SDXL test config.
"""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    width = 32 if size == "tiny" else 64
    clip_tok = tiny.clip_tokenizer()
    tiny.seeded(seed)

    def clip_config() -> CLIPTextConfig:
        return CLIPTextConfig(
            bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id,
            hidden_size=width, intermediate_size=2 * width, num_attention_heads=2, num_hidden_layers=2,
            vocab_size=len(clip_tok), projection_dim=width, hidden_act="gelu", max_position_embeddings=77)

    text_encoder = CLIPTextModel(clip_config())
    text_encoder_2 = CLIPTextModelWithProjection(clip_config())
    # cross-attention sees both encoders' hidden states concatenated; the "text_time" embedding sees the
    # second encoder's pooled projection plus 6 time ids (original size, crop, target size).
    cross_attention_dim = 2 * width
    if size == "tiny":
        time_dim = 8
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=time_dim, transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=6 * time_dim + width, cross_attention_dim=cross_attention_dim,
            norm_num_groups=8)
        vae_channels, vae_sample = (8, 16, 16, 16), 32
    else:
        # SDXL's layout (plain level + 2 cross-attention levels, deeper transformers lower down) at 96/192/384.
        time_dim = 32
        unet = UNet2DConditionModel(
            block_out_channels=(96, 192, 384), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(3, 6, 12), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=time_dim, transformer_layers_per_block=(1, 2, 2),
            projection_class_embeddings_input_dim=6 * time_dim + width, cross_attention_dim=cross_attention_dim,
            norm_num_groups=32)
        vae_channels, vae_sample = (16, 32, 32, 32), 64
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=vae_channels, norm_num_groups=8,
        layers_per_block=1, sample_size=vae_sample, scaling_factor=0.13025,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=clip_tok, tokenizer_2=clip_tok,
        unet=unet, scheduler=scheduler, image_encoder=None, feature_extractor=None,
        force_zeros_for_empty_prompt=True, add_watermarker=False)
    for module in (text_encoder, text_encoder_2, unet, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-sdxl", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-sdxl", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
