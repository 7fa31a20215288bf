"""Tiny / medium random-weight FluxPipelines built offline. Configs are the smallest that still exercise every component (diffusers' own test configs as a start)."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    width = 32 if size == "tiny" else 64
    clip_tok = tiny.clip_tokenizer()
    t5_tok = tiny.t5_tokenizer()
    tiny.seeded(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id,
        hidden_size=width, intermediate_size=2 * width, num_attention_heads=2, num_hidden_layers=2,
        vocab_size=len(clip_tok), projection_dim=width, hidden_act="gelu", max_position_embeddings=77))
    # transformers' configs take extra keyword arguments (@strict(accept_kwargs=True)); the signature mypy sees
    # (dataclass fields) lists only the declared ones
    text_encoder_2 = T5EncoderModel(T5Config(  # type: ignore[call-arg]
        vocab_size=len(t5_tok), d_model=width, d_kv=16, d_ff=2 * width, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    if size == "tiny":
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=width, pooled_projection_dim=width, axes_dims_rope=(4, 4, 8),
            guidance_embeds=False)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16, 16), norm_num_groups=8,
            layers_per_block=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
            scaling_factor=1.5035, sample_size=32,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    else:
        # deep: FLUX.1's depth (19 double + 38 single blocks) at a small width, so that compile time
        # scales with depth as on the real model (benchmarks/compile.py)
        deep = size == "deep"
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=19 if deep else 4, num_single_layers=38 if deep else 8,
            attention_head_dim=32 if deep else 64, num_attention_heads=4 if deep else 8, joint_attention_dim=width,
            pooled_projection_dim=width, axes_dims_rope=(8, 12, 12) if deep else (16, 24, 24), guidance_embeds=False)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(16, 32, 32, 32), norm_num_groups=8,
            layers_per_block=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
            scaling_factor=1.5035, sample_size=64,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                        tokenizer=clip_tok, text_encoder_2=text_encoder_2, tokenizer_2=t5_tok, transformer=transformer)
    for module in (text_encoder, text_encoder_2, transformer, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-flux", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_deep() -> Path:
    return tiny.cached_build("deep-flux", {"size": "deep", "seed": SEED, "v": VERSION}, lambda: make_pipeline("deep"))


def build_medium() -> Path:
    return tiny.cached_build("medium-flux", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
