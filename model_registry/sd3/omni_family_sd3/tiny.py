"""Tiny / medium random-weight StableDiffusion3Pipelines built offline. Configs are the smallest that still exercise every component (diffusers' own test configs as a start).

Same wiring as SD3: two ``CLIPTextModelWithProjection`` (hidden states concatenated, then zero-padded to
the T5 width; pooled projections concatenated) and a ``T5EncoderModel`` whose width is the
transformer's ``joint_attention_dim``. The same locally built CLIP tokenizer serves both CLIP encoders.
"""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    width = 32 if size == "tiny" else 64
    clip_tok = tiny.clip_tokenizer()
    t5_tok = tiny.t5_tokenizer()
    tiny.seeded(seed)

    def clip_config() -> CLIPTextConfig:
        return CLIPTextConfig(
            bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id,
            hidden_size=width, intermediate_size=2 * width, num_attention_heads=2, num_hidden_layers=2,
            vocab_size=len(clip_tok), projection_dim=width, hidden_act="gelu", max_position_embeddings=77)

    text_encoder = CLIPTextModelWithProjection(clip_config())
    text_encoder_2 = CLIPTextModelWithProjection(clip_config())
    joint_dim = 2 * width  # CLIP hidden states concatenated (2 * width) == T5 width, as in SD3 (768+1280 -> 4096 pad)
    # transformers' configs take extra keyword arguments (@strict(accept_kwargs=True)); the signature mypy sees
    # (dataclass fields) lists only the declared ones
    text_encoder_3 = T5EncoderModel(T5Config(  # type: ignore[call-arg]
        vocab_size=len(t5_tok), d_model=joint_dim, d_kv=16, d_ff=2 * joint_dim, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    if size == "tiny":
        transformer = SD3Transformer2DModel(
            sample_size=32, patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16,
            num_attention_heads=2, caption_projection_dim=32, joint_attention_dim=joint_dim,
            pooled_projection_dim=2 * width)
        latent_channels, vae_channels, vae_sample = 4, (8, 16, 16, 16), 32
    else:
        # SD3's layout (patch 2, 16 latent channels, 64-dim heads) with 7 joint blocks of 8 heads.
        transformer = SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=7, attention_head_dim=64,
            num_attention_heads=8, caption_projection_dim=512, joint_attention_dim=joint_dim,
            pooled_projection_dim=2 * width)
        latent_channels, vae_channels, vae_sample = 16, (16, 32, 32, 32), 64
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=vae_channels,
        norm_num_groups=8, layers_per_block=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
        scaling_factor=1.5305, sample_size=vae_sample,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=text_encoder, tokenizer=clip_tok, text_encoder_2=text_encoder_2, tokenizer_2=clip_tok,
        text_encoder_3=text_encoder_3, tokenizer_3=t5_tok)
    for module in (text_encoder, text_encoder_2, text_encoder_3, transformer, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-sd3", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-sd3", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
