"""Named presets. The first three are seed 000's (OmniRT's legacy optimization guide); ``lossless``
is computed from the matrix: every lossless optimization that is supported and available for the
model on this machine, except offloads (they trade speed for memory); conflicts are then resolved by
the plan as usual."""

from __future__ import annotations

from typing import Any

from omni.errors import ConfigError
from omni.names import did_you_mean

PRESETS: dict[str, dict[str, Any]] = {
    "vram-first": {
        "enable_model_cpu_offload": True,
        "enable_vae_slicing": True,
        "enable_vae_tiling": True,
    },
    "throughput-first": {
        "channels_last": True,
        "fuse_qkv": True,
    },
    "experimental-memory": {
        "quantization": "int8",
        "quantization_backend": "torchao",
        "enable_layerwise_casting": True,
        "layerwise_casting_compute_dtype": "bf16",
    },
}
DESCRIPTIONS = {
    "vram-first": "fit in less accelerator memory first: model CPU offload + VAE slicing + VAE tiling",
    "throughput-first": "layout tweaks for speed: channels_last + fused QKV projections",
    "experimental-memory": "torchao int8 + layerwise casting (bf16 compute); validate quality yourself",
    "lossless": "every lossless optimization supported and available for this model here",
}
NAMES = (*PRESETS, "lossless")


def expand_preset(name: str, registry, *, family: str | None, env) -> tuple[dict[str, Any], list[str], list[str]]:
    """-> (flat config keys, optimization names, notes)."""
    if name in PRESETS:
        return dict(PRESETS[name]), [], []
    if name != "lossless":
        raise ConfigError(f"unknown preset {name!r}{did_you_mean(name, NAMES)} (omni presets lists them)")
    if family is None:
        raise ConfigError("preset lossless needs a model (it depends on the family)")
    from omni.matrix import CompatMatrix
    from omni.specs import Support

    matrix = CompatMatrix(registry, env=env)
    names = []
    for declared in matrix.ordered_optimizations():
        spec = declared.spec
        if spec.places_pipeline:  # offloads trade speed for memory: never part of a "free" preset
            continue
        if spec.lossless and matrix.cell(family, spec.name).status is Support.SUPPORTED:
            names.append(declared.spec.name)
    return {}, names, [f"preset lossless expanded to: {', '.join(names) or 'nothing'}"]
