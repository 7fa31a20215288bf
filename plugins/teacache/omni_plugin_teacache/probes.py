"""Probe points: the cheap tensor TeaCache compares between steps, computed from the first block's
inputs (the tensors the TeaCache originals and vLLM-Omni's extractors compare). Each probe is
``probe(block, hidden_states, kwargs) -> Tensor`` where ``kwargs`` are the block's named forward
arguments. Their names are listed without torch in :data:`omni_plugin_teacache.facts.PROBE_NAMES`."""

from __future__ import annotations

import torch

from omni_plugin_teacache.facts import PROBE_NAMES


def flux_norm1(block, hidden_states, kw):
    """FLUX (TeaCache4FLUX): the AdaLayerNormZero output of block 0, ``norm1(x, emb=temb)[0]``."""
    return block.norm1(hidden_states, emb=kw["temb"])[0]


def wan_time_modulation(block, hidden_states, kw):
    """Wan2.1 (TeaCache4Wan2.1): the time-modulation vector the blocks receive (``e0``)."""
    return kw["temb"]


def ltx_norm1(block, hidden_states, kw):
    """LTX-Video: block 0's ``norm1(x) * (1 + scale_msa) + shift_msa``."""
    temb = kw["temb"]
    batch = hidden_states.size(0)
    n = block.scale_shift_table.shape[0]
    ada = block.scale_shift_table[None, None].to(temb.device) + temb.reshape(batch, temb.size(1), n, -1)
    shift_msa, scale_msa = ada.unbind(dim=2)[:2]
    return block.norm1(hidden_states) * (1 + scale_msa) + shift_msa


def qwen_img_mod(block, hidden_states, kw):
    """Qwen-Image (vLLM-Omni extractor): image stream, ``img_norm1`` modulated by the first half of ``img_mod(temb)``."""
    temb = kw["temb"]
    img_mod1 = block.img_mod(temb).chunk(2, dim=-1)[0]
    modulated, _ = block._modulate(block.img_norm1(hidden_states), img_mod1)
    return modulated


def block0_input(block, hidden_states, kw):
    """Generic probe for calibrated third-party DiTs: the hidden states entering block 0."""
    return hidden_states


PROBES = {
    "flux-norm1": flux_norm1,
    "wan-time-modulation": wan_time_modulation,
    "ltx-norm1": ltx_norm1,
    "qwen-img-mod": qwen_img_mod,
    "block0-input": block0_input,
}
assert tuple(PROBES) == PROBE_NAMES, "facts.PROBE_NAMES must list the probes of this module"


def rel_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """Relative L1 change ``mean|x_t - x_{t-1}| / mean|x_{t-1}|`` (float64 on the host)."""
    return ((current - previous).abs().mean() / (previous.abs().mean() + 1e-8)).item()
