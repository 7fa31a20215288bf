"""The trait vocabulary. Traits are derived from :class:`omni.specs.FamilyFacts`; optimizations
require them (``OptimizationSpec.requires_traits``) so that a third-party family with the right
traits gets ``untested`` cells instead of silence.

| trait | meaning |
|---|---|
| ``denoiser:unet`` / ``denoiser:dit`` | denoiser architecture |
| ``modality:image`` / ``modality:video`` | output modality |
| ``guidance:cfg`` / ``guidance:true-cfg`` / ``guidance:distilled`` / ``guidance:none`` | guidance style |
| ``blocks:list`` | the denoiser exposes repeated block lists (``block_attrs``) |
| ``blocks:repeated`` | the denoiser class sets ``_repeated_blocks`` (regional compile) |
| ``vae:tiling`` / ``vae:slicing`` | the VAE implements ``enable_tiling`` / ``enable_slicing`` |
| ``cache-context`` | the pipeline wraps denoiser calls in ``cache_context`` |
| ``qkv-fusion`` | the denoiser implements ``fuse_qkv_projections`` |
| ``conv-heavy`` | the denoiser is convolution-heavy (channels_last helps) |
| ``teacache:coefficients`` | published TeaCache coefficients exist |
| ``teacache:probe`` | a TeaCache probe point is declared |
| ``denoiser:multi`` | more than one denoiser component (e.g. Wan2.2 MoE) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omni.specs import FamilyFacts

DENOISER_UNET = "denoiser:unet"
DENOISER_DIT = "denoiser:dit"
DENOISER_MULTI = "denoiser:multi"
MODALITY_IMAGE = "modality:image"
MODALITY_VIDEO = "modality:video"
BLOCKS_LIST = "blocks:list"
BLOCKS_REPEATED = "blocks:repeated"
VAE_TILING = "vae:tiling"
VAE_SLICING = "vae:slicing"
CACHE_CONTEXT = "cache-context"
QKV_FUSION = "qkv-fusion"
CONV_HEAVY = "conv-heavy"
TEACACHE_COEFFICIENTS = "teacache:coefficients"
TEACACHE_PROBE = "teacache:probe"

VOCABULARY = frozenset(
    {
        DENOISER_UNET, DENOISER_DIT, DENOISER_MULTI, MODALITY_IMAGE, MODALITY_VIDEO, BLOCKS_LIST,
        BLOCKS_REPEATED, VAE_TILING, VAE_SLICING, CACHE_CONTEXT, QKV_FUSION, CONV_HEAVY,
        TEACACHE_COEFFICIENTS, TEACACHE_PROBE,
        "guidance:cfg", "guidance:true-cfg", "guidance:distilled", "guidance:none",
    }
)


def derive_traits(facts: "FamilyFacts") -> frozenset[str]:
    traits = {f"denoiser:{facts.denoiser}", f"modality:{facts.modality}", f"guidance:{facts.guidance}"}
    if len(facts.denoiser_components) > 1:
        traits.add(DENOISER_MULTI)
    if facts.block_attrs:
        traits.add(BLOCKS_LIST)
    if facts.repeated_blocks:
        traits.add(BLOCKS_REPEATED)
    if facts.vae_tiling:
        traits.add(VAE_TILING)
    if facts.vae_slicing:
        traits.add(VAE_SLICING)
    if facts.cache_context:
        traits.add(CACHE_CONTEXT)
    if facts.qkv_fusion:
        traits.add(QKV_FUSION)
    if facts.conv_heavy:
        traits.add(CONV_HEAVY)
    if facts.teacache is not None:
        traits.add(TEACACHE_PROBE)
        if facts.teacache.coefficients:
            traits.add(TEACACHE_COEFFICIENTS)
    return frozenset(traits)
