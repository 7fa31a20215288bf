"""Tiny / medium random-weight FLUX.2 pipelines built offline: ``Flux2Pipeline`` (Mistral3 text encoder) and
``Flux2KleinPipeline`` (Qwen3 text encoder), both over ``Flux2Transformer2DModel`` and ``AutoencoderKLFlux2``.

The text encoders are the real classes at a few layers of width 16. The pipelines stack the hidden states of
three text-encoder layers (``text_encoder_out_layers``, (10, 20, 30) / (9, 18, 27) on the real encoders); the tiny
encoders have three layers, so the models' ``default_generation`` passes ``text_encoder_out_layers=(1, 2, 3)``.

Flux2Pipeline's real ``tokenizer`` is a ``PixtralProcessor``; in transformers 5.24 that class cannot be built
without torchvision, which this environment lacks (and the PyPI torchvision wheel does not load against torch
2.13+cpu: "operator torchvision::nms does not exist"). The pipeline uses the component only through
``apply_chat_template`` on text (images reach the model through the VAE), which the Mistral tokenizer inside the
processor does itself, so the tiny model ships that tokenizer (a byte-level BPE with Mistral's control tokens
and a chat template) as ``tokenizer``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TypedDict

from omni.sdk import tiny

SEED = 0
VERSION = 1
OUT_LAYERS = (1, 2, 3)  # hidden states of the tiny text encoders' three layers

# Mistral's control tokens; "[IMG]"... are the Pixtral image tokens Mistral3's config points at
MISTRAL_SPECIALS = ("<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                    "[IMG]", "[IMG_BREAK]", "[IMG_END]")
# Mistral-Small-3 instruct layout: [SYSTEM_PROMPT]...[/SYSTEM_PROMPT][INST]...[/INST]; content is a string or a
# list of {"type": "text" | "image", ...} parts (Flux2Pipeline's format_input writes the list form)
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}[SYSTEM_PROMPT]{% else %}[INST]{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% else %}[IMG]{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'system' %}[/SYSTEM_PROMPT]{% else %}[/INST]{% endif %}{% endfor %}"
)


class VaeSize(TypedDict):
    latent_channels: int
    channels: tuple[int, ...]
    sample_size: int


# transformer (double / single blocks, heads x head_dim) and VAE (4 blocks: 8x downsampling, as in FLUX.2) per size;
# medium: ~60 M transformer parameters, 4 double + 8 single blocks of inner dim 512
SIZES: dict[str, tuple[dict[str, int], VaeSize]] = {
    "tiny": ({"double": 1, "single": 1, "heads": 2, "head_dim": 16, "time_channels": 32},
             {"latent_channels": 4, "channels": (8, 16, 16, 16), "sample_size": 64}),
    "medium": ({"double": 4, "single": 8, "heads": 8, "head_dim": 64, "time_channels": 256},
               {"latent_channels": 16, "channels": (16, 32, 32, 32), "sample_size": 256}),
}


def mistral_tokenizer():
    """A fast byte-level BPE tokenizer with Mistral's control tokens and instruct chat template."""
    from transformers import PreTrainedTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        path = tiny.byte_bpe(tmp, MISTRAL_SPECIALS, list(tiny.CORPUS) + ["[SYSTEM_PROMPT]", "[INST]"])
        tok = PreTrainedTokenizerFast(tokenizer_file=path, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                      unk_token="<unk>", model_max_length=1024)
    tok.chat_template = MISTRAL_CHAT_TEMPLATE
    return tok


def _mistral3(tok):
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    ids = {name: tok.convert_tokens_to_ids(name) for name in ("<s>", "</s>", "<pad>", "[IMG]")}
    return Mistral3ForConditionalGeneration(Mistral3Config(
        text_config={"model_type": "mistral", "vocab_size": len(tok), "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": len(OUT_LAYERS), "num_attention_heads": 2, "num_key_value_heads": 1,
                     "head_dim": 8, "max_position_embeddings": 1024, "bos_token_id": ids["<s>"],
                     "eos_token_id": ids["</s>"], "pad_token_id": ids["<pad>"]},
        vision_config={"model_type": "pixtral", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "head_dim": 8, "image_size": 64, "patch_size": 16},
        image_token_index=ids["[IMG]"], spatial_merge_size=1))


def _qwen3(tok):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    return Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=len(OUT_LAYERS),
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
        tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos))


def make_pipeline(size: str = "tiny", klein: bool = False, seed: int = SEED):
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Pipeline,
        Flux2Transformer2DModel,
    )

    tok = tiny.qwen2_tokenizer(chat_template=tiny.QWEN_CHAT_TEMPLATE) if klein else mistral_tokenizer()
    tiny.seeded(seed)
    text_encoder = _qwen3(tok) if klein else _mistral3(tok)
    joint = 16 * len(OUT_LAYERS)  # the stacked hidden states of the three layers
    t, v = SIZES[size]
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=4 * v["latent_channels"], num_layers=t["double"], num_single_layers=t["single"],
        attention_head_dim=t["head_dim"], num_attention_heads=t["heads"], joint_attention_dim=joint,
        timestep_guidance_channels=t["time_channels"], axes_dims_rope=(t["head_dim"] // 4,) * 4,
        guidance_embeds=not klein)
    vae = AutoencoderKLFlux2(
        in_channels=3, out_channels=3, latent_channels=v["latent_channels"], block_out_channels=v["channels"],
        norm_num_groups=8, layers_per_block=1, use_quant_conv=False, use_post_quant_conv=False,
        sample_size=v["sample_size"])
    parts = {"scheduler": FlowMatchEulerDiscreteScheduler(), "vae": vae, "text_encoder": text_encoder,
             "tokenizer": tok, "transformer": transformer}
    # Klein base (is_distilled=False) runs CFG as two calls: the path a guidance-distilled pipeline never takes
    pipe = Flux2KleinPipeline(**parts, is_distilled=False) if klein else Flux2Pipeline(**parts)
    for module in (text_encoder, transformer, vae):
        module.eval()
    return pipe


def _build(name: str, size: str, klein: bool) -> Path:
    return tiny.cached_build(name, {"size": size, "klein": klein, "seed": SEED, "v": VERSION},
                             lambda: make_pipeline(size, klein))


def build_tiny() -> Path:
    return _build("tiny-flux2", "tiny", klein=False)


def build_tiny_klein() -> Path:
    return _build("tiny-flux2-klein", "tiny", klein=True)


def build_medium() -> Path:
    return _build("medium-flux2", "medium", klein=False)


def build_medium_klein() -> Path:
    return _build("medium-flux2-klein", "medium", klein=True)
