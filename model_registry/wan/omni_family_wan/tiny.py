"""Tiny / medium random-weight WanPipelines built offline, and a tiny WanImageToVideoPipeline (Wan2.1-I2V's
layout: a transformer taking noise, frame mask and image latents plus CLIP image embeddings, a CLIP vision
encoder and its image processor)."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 2


def make_pipeline(size: str = "tiny", seed: int = SEED, task: str = "t2v"):
    from diffusers import (AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanPipeline,
                           WanTransformer3DModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    tok = tiny.t5_tokenizer()
    tiny.seeded(seed)
    text_dim = 32 if size == "tiny" else 64
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tok), d_model=text_dim, d_kv=16, d_ff=2 * text_dim, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    if size == "tiny" and task == "i2v":
        # in: 16 noise + 4 frame-mask + 16 image-latent channels; image_dim: the CLIP hidden size below
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36, out_channels=16,
            text_dim=text_dim, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=16, added_kv_proj_dim=24)
        image_encoder = CLIPVisionModel(CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=8)).eval()
        processor = CLIPImageProcessor(crop_size={"height": 32, "width": 32}, size={"shortest_edge": 32})
        pipe = WanImageToVideoPipeline(tokenizer=tok, text_encoder=text_encoder, transformer=transformer, vae=vae,
                                       scheduler=scheduler, image_encoder=image_encoder, image_processor=processor)
    else:
        if size == "tiny":
            transformer = WanTransformer3DModel(
                patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                text_dim=text_dim, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
        else:
            transformer = WanTransformer3DModel(
                patch_size=(1, 2, 2), num_attention_heads=8, attention_head_dim=64, in_channels=16, out_channels=16,
                text_dim=text_dim, freq_dim=256, ffn_dim=1536, num_layers=16, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", rope_max_seq_len=64)
        pipe = WanPipeline(tokenizer=tok, text_encoder=text_encoder, transformer=transformer, vae=vae,
                           scheduler=scheduler)
    for module in (text_encoder, transformer, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-wan", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_tiny_i2v() -> Path:
    return tiny.cached_build("tiny-wan-i2v", {"size": "tiny", "task": "i2v", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("tiny", task="i2v"))


def build_medium() -> Path:
    return tiny.cached_build("medium-wan", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
