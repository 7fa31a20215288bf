"""Tiny / medium random-weight StableDiffusionPipelines built offline. Configs are the smallest that still exercise every component (diffusers' own test configs as a start)."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    width = 32 if size == "tiny" else 64
    clip_tok = tiny.clip_tokenizer()
    tiny.seeded(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id,
        hidden_size=width, intermediate_size=2 * width, num_attention_heads=2, num_hidden_layers=2,
        vocab_size=len(clip_tok), projection_dim=width, hidden_act="gelu", max_position_embeddings=77))
    if size == "tiny":
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=width, attention_head_dim=8,
            norm_num_groups=8, sample_size=8, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
        vae_channels, vae_sample = (8, 16, 16, 16), 32
    else:
        # SD1.5's layout (3 cross-attention levels + 1 plain, 2 layers per block, 8 heads) at 96/192/384/384 channels.
        unet = UNet2DConditionModel(
            block_out_channels=(96, 192, 384, 384), layers_per_block=2, cross_attention_dim=width, attention_head_dim=8,
            norm_num_groups=32, sample_size=32, in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
        vae_channels, vae_sample = (16, 32, 32, 32), 64
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=vae_channels, norm_num_groups=8,
        layers_per_block=1, sample_size=vae_sample, scaling_factor=0.18215,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=clip_tok, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, image_encoder=None,
                                   requires_safety_checker=False)
    for module in (text_encoder, unet, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-sd15", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-sd15", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
