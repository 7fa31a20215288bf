"""Tiny random-weight QwenImagePipeline built offline. The config is the smallest that still exercises every component."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import (AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline,
                           QwenImageTransformer2DModel)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tok = tiny.qwen2_tokenizer()
    tiny.seeded(seed)
    ids = {name: tok.convert_tokens_to_ids(name) for name in
           ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<|endoftext|>")}
    # transformers' configs take extra keyword arguments (@strict(accept_kwargs=True)); the signature mypy sees
    # (dataclass fields) lists only the declared ones
    config = Qwen2_5_VLConfig(  # type: ignore[call-arg]
        text_config=dict(hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default",
                                                              "type": "default"},
                         rope_theta=1e6, vocab_size=len(tok), bos_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=16),
        hidden_size=16, vocab_size=len(tok), vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"])
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)
    if size == "tiny":
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
            joint_attention_dim=16, axes_dims_rope=(8, 4, 4))
    else:  # 57.7 M parameters: 6 dual-stream blocks of inner dim 512
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=16, out_channels=4, num_layers=6, attention_head_dim=64, num_attention_heads=8,
            joint_attention_dim=16, axes_dims_rope=(16, 24, 24))
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    pipe = QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                             tokenizer=tok, transformer=transformer)
    for module in (text_encoder, transformer, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-qwenimage", {"seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-qwenimage", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
