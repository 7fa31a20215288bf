"""Tiny random-weight diffusers pipelines that no bundled family claims, built offline, for the generic family's
test (``test_family_generic.py``). Test fixtures, not product models: omni ships no named model for them.

Each entry of :data:`PIPELINES` builds one pipeline class (text encoders and tokenizers from ``omni.sdk.tiny``),
saves it once under omni's cache dir, and says how to call it small: ``call`` holds the generation arguments
(sizes, frames, steps) and the pipeline-specific ones a user passes as keyword arguments of ``omni.run``
(PixArt's ``use_resolution_binning=False``). Image and video, DiT and UNet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni.sdk import tiny

SEED = 0
VERSION = 4
TEXT_DIM = 32  # hidden size of every tiny text encoder


@dataclass(frozen=True)
class Tiny:
    name: str  # the pipeline class
    kind: str  # dit | unet
    modality: str  # image | video
    make: Callable[[], Any]
    call: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Path:
        return tiny.cached_build(f"generic-{self.name}", {"seed": SEED, "v": VERSION}, self._make)

    def _make(self) -> Any:
        tiny.seeded(SEED)  # every random weight of the pipeline, text encoders included, comes from SEED
        return self.make()


# ------------------------------------------------------------------------------------------- shared parts
def _t5(umt5: bool = False):
    """The tiny T5 tokenizer and a two-layer T5 (or UMT5) encoder."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    tok = tiny.t5_tokenizer()
    enc = model_cls(config_cls(vocab_size=len(tok), d_model=TEXT_DIM, d_kv=8, d_ff=2 * TEXT_DIM, num_layers=2,
                               num_heads=2, relative_attention_num_buckets=8, relative_attention_max_distance=16,
                               pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    return tok, enc.eval()


def _clip(width: int = TEXT_DIM):
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = tiny.clip_tokenizer()
    enc = CLIPTextModel(CLIPTextConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        hidden_size=width, intermediate_size=2 * width, num_attention_heads=2, num_hidden_layers=2,
        vocab_size=len(tok), projection_dim=width, hidden_act="gelu", max_position_embeddings=77))
    return tok, enc.eval()


def _vae(levels: int = 2):
    """AutoencoderKL with ``levels`` levels: spatial factor 2 ** (levels - 1)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,) * levels,
                         norm_num_groups=8, layers_per_block=1, sample_size=16,
                         down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels).eval()


def _unet2d(**extra: Any):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, cross_attention_dim=TEXT_DIM, attention_head_dim=8,
        norm_num_groups=8, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        **extra).eval()


def _sd_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


# PixArt's and Latte's transformers share their block layout
_ADA_SINGLE = {"sample_size": 8, "num_layers": 2, "patch_size": 2, "attention_head_dim": 8, "num_attention_heads": 2,
               "caption_channels": TEXT_DIM, "in_channels": 4, "cross_attention_dim": 16, "out_channels": 8,
               "attention_bias": True, "activation_fn": "gelu-approximate", "num_embeds_ada_norm": 1000,
               "norm_type": "ada_norm_single", "norm_elementwise_affine": False, "norm_eps": 1e-6}


def _gemma(config_cls: Any, model_cls: Any):
    """The character-level Gemma tokenizer and a two-layer Gemma-style encoder."""
    tok = _gemma_tokenizer()
    return tok, model_cls(config_cls(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, head_dim=8, pad_token_id=0,
                                eos_token_id=1, bos_token_id=2)).eval()


# ------------------------------------------------------------------------------------------- image DiT
def pixart_sigma():
    from diffusers import (
        DPMSolverMultistepScheduler,
        PixArtSigmaPipeline,
        PixArtTransformer2DModel,
    )

    tok, enc = _t5()
    transformer = PixArtTransformer2DModel(**_ADA_SINGLE).eval()
    return PixArtSigmaPipeline(tokenizer=tok, text_encoder=enc, vae=_vae(), transformer=transformer,
                               scheduler=DPMSolverMultistepScheduler())


def auraflow():
    from diffusers import (
        AuraFlowPipeline,
        AuraFlowTransformer2DModel,
        FlowMatchEulerDiscreteScheduler,
    )

    tok, enc = _t5(umt5=True)
    transformer = AuraFlowTransformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=2, num_single_dit_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=TEXT_DIM, caption_projection_dim=16, out_channels=4,
        pos_embed_max_size=64).eval()
    return AuraFlowPipeline(tokenizer=tok, text_encoder=enc, vae=_vae(), transformer=transformer,
                            scheduler=FlowMatchEulerDiscreteScheduler())


def cogview3plus():
    from diffusers import (
        CogVideoXDDIMScheduler,
        CogView3PlusPipeline,
        CogView3PlusTransformer2DModel,
    )

    tok, enc = _t5()
    transformer = CogView3PlusTransformer2DModel(
        patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2, out_channels=4,
        text_embed_dim=TEXT_DIM, time_embed_dim=8, condition_dim=2, pos_embed_max_size=8, sample_size=8).eval()
    return CogView3PlusPipeline(tokenizer=tok, text_encoder=enc, vae=_vae(), transformer=transformer,
                                scheduler=CogVideoXDDIMScheduler())


def hunyuan_dit():
    from diffusers import DDPMScheduler, HunyuanDiT2DModel, HunyuanDiTPipeline
    from transformers import BertConfig, BertModel

    bert_tok = _bert_tokenizer()
    t5_tok, t5 = _t5()
    bert = BertModel(BertConfig(vocab_size=len(bert_tok), hidden_size=TEXT_DIM, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=2 * TEXT_DIM, max_position_embeddings=128)).eval()
    transformer = HunyuanDiT2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        hidden_size=16, cross_attention_dim=TEXT_DIM, cross_attention_dim_t5=TEXT_DIM, pooled_projection_dim=16,
        text_len=77, text_len_t5=256).eval()
    return HunyuanDiTPipeline(vae=_vae(), text_encoder=bert, tokenizer=bert_tok, transformer=transformer,
                              scheduler=DDPMScheduler(), safety_checker=None, feature_extractor=None,
                              requires_safety_checker=False, text_encoder_2=t5, tokenizer_2=t5_tok)


def _bert_tokenizer():
    """A BertTokenizer over a word-piece vocabulary of the tiny corpus (written as vocab.txt)."""
    import tempfile

    from transformers import BertTokenizer

    words = sorted({w for line in tiny.CORPUS for w in line.lower().split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + [c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "vocab.txt")
        path.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
        return BertTokenizer(str(path), model_max_length=77)


def _gemma_tokenizer():
    """A GemmaTokenizer over single characters (its own BPE and pre-tokenizer, no merges) that prepends
    ``<bos>`` as Gemma's does (an empty negative prompt is then one token, not an all-masked row): it saves and
    loads back unchanged."""
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    chars = sorted(set("".join(tiny.CORPUS).lower().replace(" ", "")) | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    pieces = specials + ["\u2581"] + chars + [c.upper() for c in chars if c.isalpha()] + list(".,:;!?'\"-()<>/")
    return GemmaTokenizer(vocab={p: i for i, p in enumerate(dict.fromkeys(pieces))}, merges=[], add_bos_token=True,
                          model_max_length=512)


def sana():
    from diffusers import (
        AutoencoderDC,
        DPMSolverMultistepScheduler,
        SanaPipeline,
        SanaTransformer2DModel,
    )
    from transformers import Gemma2Config, Gemma2Model

    tok, enc = _gemma(Gemma2Config, Gemma2Model)
    transformer = SanaTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=2, num_attention_heads=2, attention_head_dim=4,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=16,
        sample_size=8).eval()
    vae = AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2, encoder_block_types=("ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "EfficientViTBlock"), encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8), encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
        encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1), downsample_block_type="conv",
        upsample_block_type="interpolate", decoder_norm_types="rms_norm", decoder_act_fns="silu",
        scaling_factor=0.41407).eval()
    return SanaPipeline(tokenizer=tok, text_encoder=enc, vae=vae, transformer=transformer,
                        scheduler=DPMSolverMultistepScheduler())


def lumina():
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        LuminaNextDiT2DModel,
        LuminaPipeline,
    )
    from transformers import GemmaConfig, GemmaModel

    tok, enc = _gemma(GemmaConfig, GemmaModel)
    transformer = LuminaNextDiT2DModel(
        sample_size=8, patch_size=2, in_channels=4, hidden_size=16, num_layers=2, num_attention_heads=2,
        num_kv_heads=2, multiple_of=16, norm_eps=1e-5, learn_sigma=True, qk_norm=True, cross_attention_dim=16,
        scaling_factor=1.0).eval()
    # LuminaPipeline assumes a VAE of spatial factor 8
    return LuminaPipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(levels=4),
                          text_encoder=enc, tokenizer=tok)


# ------------------------------------------------------------------------------------------- image UNet
def lcm():
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    tok, enc = _clip()
    return LatentConsistencyModelPipeline(
        vae=_vae(), text_encoder=enc, tokenizer=tok, unet=_unet2d(time_cond_proj_dim=8),
        scheduler=LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
        safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False)


def sd_pag():
    from diffusers import StableDiffusionPAGPipeline

    tok, enc = _clip()
    return StableDiffusionPAGPipeline(
        vae=_vae(), text_encoder=enc, tokenizer=tok, unet=_unet2d(), scheduler=_sd_scheduler(), safety_checker=None,
        feature_extractor=None, image_encoder=None, requires_safety_checker=False, pag_applied_layers=["mid"])


def sd_sag():
    from diffusers import StableDiffusionSAGPipeline

    tok, enc = _clip()
    return StableDiffusionSAGPipeline(
        vae=_vae(), text_encoder=enc, tokenizer=tok, unet=_unet2d(), scheduler=_sd_scheduler(), safety_checker=None,
        feature_extractor=None, image_encoder=None, requires_safety_checker=False)


# ------------------------------------------------------------------------------------------- video
def text_to_video_sd():
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

    tok, enc = _clip()
    unet = UNet3DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=TEXT_DIM, attention_head_dim=8, norm_num_groups=8).eval()
    return TextToVideoSDPipeline(vae=_vae(), text_encoder=enc, tokenizer=tok, unet=unet, scheduler=_sd_scheduler())


def cogvideox():
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    tok, enc = _t5()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=TEXT_DIM, num_layers=2, sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16).eval()
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4).eval()
    return CogVideoXPipeline(tokenizer=tok, text_encoder=enc, vae=vae, transformer=transformer,
                             scheduler=CogVideoXDDIMScheduler())


def latte():
    from diffusers import DDIMScheduler, LattePipeline, LatteTransformer3DModel

    tok, enc = _t5()
    transformer = LatteTransformer3DModel(**_ADA_SINGLE, video_length=2).eval()
    return LattePipeline(tokenizer=tok, text_encoder=enc, vae=_vae(), transformer=transformer, scheduler=DDIMScheduler())


def mochi():
    from diffusers import (
        AutoencoderKLMochi,
        FlowMatchEulerDiscreteScheduler,
        MochiPipeline,
        MochiTransformer3DModel,
    )

    tok, enc = _t5()
    transformer = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2, pooled_projection_dim=16,
        in_channels=12, out_channels=None, qk_norm="rms_norm", text_embed_dim=TEXT_DIM, time_embed_dim=4,
        activation_fn="swiglu", max_sequence_length=16).eval()
    vae = AutoencoderKLMochi(
        latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1)).eval()
    return MochiPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=enc, tokenizer=tok,
                         transformer=transformer)


_IMAGE = {"height": 16, "width": 16, "num_inference_steps": 2}
_VIDEO = {"height": 16, "width": 16, "num_inference_steps": 2}

PIPELINES = (
    Tiny("PixArtSigmaPipeline", "dit", "image", pixart_sigma, {**_IMAGE, "use_resolution_binning": False}),
    Tiny("AuraFlowPipeline", "dit", "image", auraflow, dict(_IMAGE)),
    Tiny("CogView3PlusPipeline", "dit", "image", cogview3plus, dict(_IMAGE)),
    Tiny("HunyuanDiTPipeline", "dit", "image", hunyuan_dit, {**_IMAGE, "use_resolution_binning": False}),
    Tiny("SanaPipeline", "dit", "image", sana, {**_IMAGE, "height": 32, "width": 32, "use_resolution_binning": False}),
    Tiny("LuminaPipeline", "dit", "image", lumina, {**_IMAGE, "height": 32, "width": 32}),
    Tiny("LatentConsistencyModelPipeline", "unet", "image", lcm, dict(_IMAGE)),
    Tiny("StableDiffusionPAGPipeline", "unet", "image", sd_pag, dict(_IMAGE)),
    Tiny("StableDiffusionSAGPipeline", "unet", "image", sd_sag, dict(_IMAGE)),
    Tiny("TextToVideoSDPipeline", "unet", "video", text_to_video_sd, {**_VIDEO, "num_frames": 2}),
    Tiny("CogVideoXPipeline", "dit", "video", cogvideox, {**_VIDEO, "num_frames": 9, "max_sequence_length": 16}),
    Tiny("LattePipeline", "dit", "video", latte, {**_VIDEO, "video_length": 2}),
    Tiny("MochiPipeline", "dit", "video", mochi, {**_VIDEO, "num_frames": 7, "max_sequence_length": 16}),
)
