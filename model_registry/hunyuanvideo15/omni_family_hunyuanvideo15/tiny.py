"""Tiny / medium random-weight HunyuanVideo15Pipelines built offline: a Qwen2.5-VL text model (the real class at
two layers of width 16, Qwen chat template), a ByT5 encoder (``T5EncoderModel`` with transformers' byte-level
``ByT5Tokenizer``, which needs no vocabulary file), ``HunyuanVideo15Transformer3DModel``, the 3D causal
``AutoencoderKLHunyuanVideo15`` at the real 16x spatial / 4x temporal compression, and the CFG guider.

The pipeline pads every prompt to 1,000 Qwen tokens and 256 ByT5 tokens and adds 729 image-token slots
(``tokenizer_max_length``, ``tokenizer_2_max_length``, ``vision_num_semantic_tokens``: set in its ``__init__``,
not per call), so each transformer call attends over about 2,000 context tokens whatever the model's width; and
the ByT5 projection has a fixed 2,048-wide hidden layer. The tiny model is therefore slower per step than the other
tiny models (about half a second per denoiser call on one CPU thread)."""

from __future__ import annotations

from pathlib import Path

from omni.sdk import tiny

SEED = 0
VERSION = 1


def make_pipeline(size: str = "tiny", seed: int = SEED):
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        ClassifierFreeGuidance,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        T5Config,
        T5EncoderModel,
    )

    tok = tiny.qwen2_tokenizer(chat_template=tiny.QWEN_CHAT_TEMPLATE)
    tok_2 = ByT5Tokenizer()
    tiny.seeded(seed)
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    # the pipeline reads hidden_states[-3]: the embeddings' output of a two-layer model
    # transformers' configs take extra keyword arguments (@strict(accept_kwargs=True)); the signature mypy sees
    # (dataclass fields) lists only the declared ones
    text_encoder = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(  # type: ignore[call-arg]
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=2048, bos_token_id=eos, eos_token_id=eos,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}))
    # decoder_start_token_id: an extra keyword argument as well (see above)
    text_encoder_2 = T5EncoderModel(T5Config(  # type: ignore[call-arg]
        vocab_size=len(tok_2), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, feed_forward_proj="gated-gelu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    latent = 4 if size == "tiny" else 16
    if size == "tiny":
        transformer = HunyuanVideo15Transformer3DModel(
            in_channels=2 * latent + 1, out_channels=latent, num_attention_heads=2, attention_head_dim=8, num_layers=2,
            num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
            text_embed_2_dim=16, image_embed_dim=16, rope_axes_dim=(2, 2, 4), target_size=64, task_type="t2v")
    else:  # ~67 M transformer: 6 dual-stream blocks of inner dim 512
        transformer = HunyuanVideo15Transformer3DModel(
            in_channels=2 * latent + 1, out_channels=latent, num_attention_heads=8, attention_head_dim=64,
            num_layers=6, num_refiner_layers=1, mlp_ratio=4.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
            text_embed_2_dim=16, image_embed_dim=16, rope_axes_dim=(16, 24, 24), target_size=128, task_type="t2v")
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=latent, block_out_channels=(8, 8, 16, 16, 32),
        layers_per_block=1, spatial_compression_ratio=16, temporal_compression_ratio=4)
    pipe = HunyuanVideo15Pipeline(
        text_encoder=text_encoder, tokenizer=tok, transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0), text_encoder_2=text_encoder_2, tokenizer_2=tok_2,
        guider=ClassifierFreeGuidance(guidance_scale=6.0))
    for module in (text_encoder, text_encoder_2, transformer, vae):
        module.eval()
    return pipe


def build_tiny() -> Path:
    return tiny.cached_build("tiny-hunyuanvideo15", {"size": "tiny", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("tiny"))


def build_medium() -> Path:
    return tiny.cached_build("medium-hunyuanvideo15", {"size": "medium", "seed": SEED, "v": VERSION},
                             lambda: make_pipeline("medium"))
