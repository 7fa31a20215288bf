"""Tiny / medium random-weight ZImagePipelines built offline: a Qwen3 text encoder (the real class at two layers of
width 16, Qwen chat template), ``ZImageTransformer2DModel`` and a FLUX.1-style ``AutoencoderKL`` (four blocks, 8x
downsampling, as in the real checkpoints)."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1

# transformer and VAE per size; medium: ~58 M transformer parameters, 12 main + 2 x 2 refiner blocks of width 512
SIZES = {
    "tiny": ({"dim": 32, "layers": 2, "refiners": 1, "heads": 2, "axes_dims": [4, 6, 6], "axes_lens": [512, 64, 64]},
             {"latent_channels": 4, "channels": (8, 16, 16, 16), "sample_size": 64}),
    "medium": ({"dim": 512, "layers": 12, "refiners": 2, "heads": 8, "axes_dims": [16, 24, 24],
                "axes_lens": [512, 128, 128]},
               {"latent_channels": 16, "channels": (16, 32, 32, 32), "sample_size": 256}),
}


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    tok = tiny.qwen2_tokenizer(chat_template=tiny.QWEN_CHAT_TEMPLATE)
    tiny.seeded(seed)
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    # the pipeline reads hidden_states[-2]: the output of the first of two layers
    text_encoder = Qwen3Model(Qwen3Config(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=1024, bos_token_id=eos, eos_token_id=eos,
        pad_token_id=eos))
    t, v = SIZES[size]
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=v["latent_channels"], dim=t["dim"],
        n_layers=t["layers"], n_refiner_layers=t["refiners"], n_heads=t["heads"], n_kv_heads=t["heads"],
        cap_feat_dim=16, axes_dims=t["axes_dims"], axes_lens=t["axes_lens"])
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=v["latent_channels"], block_out_channels=v["channels"],
        norm_num_groups=8, layers_per_block=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159,
        scaling_factor=0.3611, sample_size=v["sample_size"],
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                          tokenizer=tok, transformer=transformer)
    for module in (text_encoder, transformer, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-zimage", {"size": "tiny", "seed": SEED, "v": VERSION}, lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-zimage", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
