"""The core trait vocabulary, derived from :class:`omni.specs.FamilyFacts`. Optimizations require
traits (``OptimizationSpec.requires_traits``) so that a third-party family with the right traits gets
``untested`` cells instead of silence. Plugins add traits of their own (``OptimizationSpec.traits``,
derived from ``FamilySpec.extras`` by ``family_traits``); ``Registry.vocabulary`` is the union.

| trait | meaning |
|---|---|
| ``denoiser:unet`` / ``denoiser:dit`` | denoiser architecture |
| ``denoiser:multi`` | more than one denoiser component (e.g. Wan2.2 MoE) |
| ``modality:image`` / ``modality:video`` | output modality |
| ``guidance:cfg`` / ``guidance:true-cfg`` / ``guidance:distilled`` / ``guidance:none`` | guidance style |
| ``blocks:list`` | the denoiser exposes repeated block lists (``block_attrs``) |
| ``blocks:repeated`` | the denoiser class sets ``_repeated_blocks`` (regional compile) |
| ``vae:tiling`` / ``vae:slicing`` | the VAE implements ``enable_tiling`` / ``enable_slicing`` |
| ``cache-context`` | the pipeline wraps denoiser calls in ``cache_context`` |
| ``qkv-fusion`` | the denoiser implements ``fuse_qkv_projections`` |
| ``conv-heavy`` | the denoiser is convolution-heavy (channels_last helps) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omni.specs.family import FamilyFacts

MEANINGS = {
    "denoiser:unet": "the denoiser is a UNet",
    "denoiser:dit": "the denoiser is a diffusion transformer",
    "denoiser:multi": "more than one denoiser component (e.g. Wan2.2 MoE)",
    "modality:image": "the pipeline makes images",
    "modality:video": "the pipeline makes videos",
    "guidance:cfg": "classifier-free guidance",
    "guidance:true-cfg": "true CFG: conditional and unconditional calls run separately",
    "guidance:distilled": "guidance distilled into the model (no unconditional call)",
    "guidance:none": "no guidance",
    "blocks:list": "the denoiser exposes repeated block lists (block_attrs)",
    "blocks:repeated": "the denoiser class sets _repeated_blocks (regional compile)",
    "vae:tiling": "the VAE implements enable_tiling",
    "vae:slicing": "the VAE implements enable_slicing",
    "cache-context": "the pipeline wraps denoiser calls in cache_context",
    "qkv-fusion": "the denoiser implements fuse_qkv_projections",
    "conv-heavy": "the denoiser is convolution-heavy (channels_last helps)",
}
VOCABULARY = frozenset(MEANINGS)


def derive_traits(facts: FamilyFacts) -> frozenset[str]:
    traits = {f"denoiser:{facts.denoiser}", f"modality:{facts.modality}", f"guidance:{facts.guidance}"}
    flags = {
        "denoiser:multi": len(facts.denoiser_components) > 1,
        "blocks:list": bool(facts.block_attrs),
        "blocks:repeated": facts.repeated_blocks,
        "vae:tiling": facts.vae_tiling,
        "vae:slicing": facts.vae_slicing,
        "cache-context": facts.cache_context,
        "qkv-fusion": facts.qkv_fusion,
        "conv-heavy": facts.conv_heavy,
    }
    traits.update(name for name, present in flags.items() if present)
    return frozenset(traits)
